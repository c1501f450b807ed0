"""What a module *is*, independent of how it got here (Python plugin or ``.ko`` file).

A declaration carries exactly what ``modinfo`` shows plus the callables the
kernel runs. Plugins build one in Python; ``kmodemu.modules.elf`` builds one from a
``.ko`` file's ELF sections. The loader treats both alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.params import ParamSpec
    from kmodemu.modules.context import ModuleContext

InitFn = Callable[["ModuleContext"], "int | None"]
ExitFn = Callable[["ModuleContext"], None]
#: an exit that may refuse: 0, or a negative errno and nothing changed (beyond Linux)
UnloadExitFn = Callable[["ModuleContext"], "int | None"]


@dataclass(frozen=True)
class BootParam:
    """A boot-time handler of a built-in module: ``__setup`` or ``early_param``.

    ``__setup("str", fn)`` matches any command-line word that *starts with*
    ``name`` (dash/underscore-insensitive) and calls ``fn(rest, ctx)`` with the
    text after the prefix; returning 1 consumes the word. ``early_param``
    (``early=True``) matches the name exactly and gets the value (or None).
    ``handler=None`` is a ``__setup`` with no function: "obsolete, ignored".

    The last two fields are for people, not for the kernel: our CLI's hints
    (``kmodemu.hints``) say what to type when the word cannot work.
    ``module_param`` is what does the same at ``insmod`` time, a format string
    of the text after the prefix (``"zcache_comp_name={rest}"``), or None if no
    module parameter does; ``needs_builtin`` names the other modules that must
    be built in too for the handler to take the word.
    """

    name: str
    handler: Callable[[Any, "ModuleContext"], int] | None
    early: bool = False
    module_param: str | None = None
    needs_builtin: tuple[str, ...] = ()


@dataclass
class ModuleDecl:
    """A module's declaration: modinfo fields, parameters, symbols, init/exit.

    ``modinfo`` (when not empty) is the complete ordered ``.modinfo`` of a
    ``.ko`` file; for plugins it is generated from the fields below.
    ``exports`` are symbol names the module exports (its init binds the values
    with ``ctx.export``); ``requires`` are the symbols it uses from others.
    ``initcall`` is the level a built-in runs at (``late`` for zcache).
    ``unload_exit`` is an exit linked only into kernels whose profile allows
    unloading tmem backends (``3.10-unload``, beyond Linux): elsewhere the
    module stays permanent, as Linux's backends are. It may refuse (return
    ``-errno.EBUSY``) and must then have changed nothing (docs/unloading.md).
    """

    name: str
    description: str = ""
    license: str = "GPL"
    author: str = ""
    version: str = ""
    params: tuple["ParamSpec", ...] = ()
    aliases: tuple[str, ...] = ()
    softdeps: str = ""
    depends: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    staging: bool = False
    out_of_tree: bool = False
    init: InitFn | None = None
    exit: ExitFn | None = None
    unload_exit: UnloadExitFn | None = None
    boot_params: tuple[BootParam, ...] = ()
    initcall: str = "device"
    size: int = 16384
    modinfo: tuple[tuple[str, str], ...] = ()
    #: where the declaration came from: ``plugin:<name>`` or a ``.ko`` path
    origin: str = ""
    #: the Python plugin behind a module file (``None`` for a plain ``.ko``)
    plugin: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def permanent(self) -> bool:
        """Init but no exit: the kernel refuses to unload it (EBUSY)."""
        return self.init is not None and self.exit is None

    def modinfo_entries(self) -> list[tuple[str, str]]:
        """The ``.modinfo`` key/value pairs in the order the kernel build emits them."""
        if self.modinfo:
            return list(self.modinfo)
        out: list[tuple[str, str]] = []
        for alias in self.aliases:
            out.append(("alias", alias))
        if self.softdeps:
            out.append(("softdep", self.softdeps))
        if self.version:
            out.append(("version", self.version))
        if self.license:
            out.append(("license", self.license))
        if self.description:
            out.append(("description", self.description))
        if self.author:
            out.append(("author", self.author))
        for p in self.params:
            if p.desc:
                out.append(("parm", f"{p.name}:{p.desc}"))
            if p.modinfo_type:
                out.append(("parmtype", f"{p.name}:{p.modinfo_type}"))
        if self.staging:
            out.append(("staging", "Y"))
        out.append(("depends", ",".join(self.depends)))
        if not self.out_of_tree:
            out.append(("intree", "Y"))
        out.append(("name", self.name))
        return out
