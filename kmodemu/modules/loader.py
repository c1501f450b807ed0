"""The module loader: what ``init_module``/``delete_module`` do in the kernel.

Order follows Linux's ``load_module``: blacklist check, modinfo checks and
taints, "already loaded?", symbol resolution (usage links and references),
parameters, sysfs, then init. A failing step undoes every earlier one, so a
failed load leaves the kernel as it was (apart from the log and taints, which
Linux keeps too).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from kmodemu.errors import KernelError
from kmodemu.kernel.printk import KERN_ERR, KERN_INFO, KERN_WARNING
from kmodemu.kernel.taint import Taint
from kmodemu.modules.context import ModuleContext
from kmodemu.modules.declaration import ModuleDecl, UnloadExitFn
from kmodemu.modules.elf import read_module

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel
    from kmodemu.kernel.params import Param

MODULE_NAME_LEN = 56
GPL_COMPATIBLE = {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
                  "Dual MIT/GPL", "Dual MPL/GPL"}
STATE_TEXT = {"coming": "Loading", "live": "Live", "going": "Unloading"}


def module_name(name: str) -> str:
    """kbuild's module name: ``-`` becomes ``_``."""
    return name.replace("-", "_")


@dataclass
class Module:
    """A module in the kernel's list (or a built-in's runtime record)."""

    decl: ModuleDecl
    name: str
    builtin: bool = False
    state: str = "coming"
    params: dict[str, "Param"] = field(default_factory=dict)
    holders: list[str] = field(default_factory=list)   # modules using our symbols
    uses: list[str] = field(default_factory=list)      # modules whose symbols we use
    refs: int = 0                                       # try_module_get and symbol_get references
    taint: Taint = field(default_factory=Taint)
    symbols: dict[str, Any] = field(default_factory=dict)
    ctx: "ModuleContext | None" = None
    #: the declaration's ``unload_exit``, linked in when the kernel's profile allows unloading
    unload_exit: "UnloadExitFn | None" = None

    @property
    def refcnt(self) -> int:
        """The user-visible reference count (the kernel's count minus one)."""
        return len(self.holders) + self.refs + (1 if self.state == "coming" else 0)

    @property
    def size(self) -> int:
        return self.decl.size

    @property
    def permanent(self) -> bool:
        return self.decl.permanent and self.unload_exit is None


class ModuleLoader:
    """The kernel's module list, symbol table and load/unload paths."""

    def __init__(self, kernel: "Kernel"):
        self.kernel = kernel
        self._modules: list[Module] = []          # newest first, like the kernel's list
        self.builtin: dict[str, Module] = {}
        self._symbols: dict[str, str] = {}        # symbol -> owning module name ("" = vmlinux)
        self.core_symbols: dict[str, Any] = {}
        self.blacklist: set[str] = set()
        self.modules_disabled = False
        #: when a list, every load/unload attempt is appended (the machine journals
        #: what modprobe did, not what it was asked, so replay never re-reads config)
        self.oplog: list | None = None
        #: CONFIG_MODULE_FORCE_UNLOAD: off, as in distribution kernels, so ``rmmod -f``
        #: cannot pull a permanent tmem backend out from under the frontends
        self.force_unload = False

    # -- queries ----------------------------------------------------------------
    def get(self, name: str) -> Module | None:
        name = module_name(name)
        for m in self._modules:
            if m.name == name:
                return m
        return None

    def loaded(self) -> list[Module]:
        return list(self._modules)

    def is_builtin(self, name: str) -> bool:
        return module_name(name) in self.builtin

    def owner_of(self, symbol: str) -> str | None:
        return self._symbols.get(symbol)

    def export_core(self, symbol: str, value: Any) -> None:
        """A symbol vmlinux exports (frontend registration functions and the like)."""
        self._symbols[symbol] = ""
        self.core_symbols[symbol] = value

    def symbol_value(self, symbol: str) -> Any:
        owner = self._symbols.get(symbol)
        if owner is None:
            return None
        if owner == "":
            return self.core_symbols.get(symbol)
        mod = self.get(owner) or self.builtin.get(owner)
        return mod.symbols.get(symbol) if mod else None

    def symbol_get(self, symbol: str) -> Any:
        owner = self._symbols.get(symbol)
        if owner is None:
            return None
        mod = self.get(owner) if owner else None
        if mod is not None:
            if mod.state != "live":
                return None
            mod.refs += 1
        return self.symbol_value(symbol)

    def symbol_put(self, symbol: str) -> None:
        owner = self._symbols.get(symbol)
        mod = self.get(owner) if owner else None
        if mod is not None and mod.refs > 0:
            mod.refs -= 1

    # -- sysfs ------------------------------------------------------------------
    def _sysfs_params(self, mod: Module) -> None:
        base = f"/sys/module/{mod.name}/parameters"
        for name, param in mod.params.items():
            perm = param.spec.perm
            if not perm:
                continue

            def write(text: str, _p=param) -> None:
                _p.write_sysfs(text, lambda m: self.kernel.printk(m, KERN_ERR),
                               lambda: self.kernel.taint.add("U"))
                if mod.ctx is not None:
                    setattr(mod.ctx.params, _p.spec.name, _p.value)

            self.kernel.vfs.add_file(f"{base}/{name}", param.get,
                                     write if perm & 0o222 else None, perm)

    def _sysfs_module(self, mod: Module) -> None:
        vfs, base = self.kernel.vfs, f"/sys/module/{mod.name}"
        vfs.mkdir(f"{base}/holders")
        vfs.add_file(f"{base}/initstate", lambda: mod.state + "\n")
        vfs.add_file(f"{base}/refcnt", lambda: f"{mod.refcnt}\n")
        vfs.add_file(f"{base}/coresize", lambda: f"{mod.size}\n")
        vfs.add_file(f"{base}/taint", lambda: mod.taint.letters() + "\n")
        if mod.decl.version:
            vfs.add_value(f"{base}/version", mod.decl.version)

    # -- load -------------------------------------------------------------------
    def _check_modinfo(self, mod: Module) -> None:
        k, decl = self.kernel, mod.decl
        if decl.out_of_tree and mod.taint.add("O") and k.taint.add("O"):
            k.printk(f"{mod.name}: loading out-of-tree module taints kernel.", KERN_WARNING)
        elif decl.out_of_tree:
            k.taint.add("O")
        if decl.staging:
            mod.taint.add("C")
            k.taint.add("C")
            k.printk(f"{mod.name}: module is from the staging directory, "
                     "the quality is unknown, you have been warned.", KERN_WARNING)
        if decl.license not in GPL_COMPATIBLE:
            mod.taint.add("P")
            if k.taint.add("P"):
                k.printk(f"{mod.name}: module license '{decl.license or 'unspecified'}' taints kernel.",
                         KERN_WARNING)
                k.printk("Disabling lock debugging due to kernel taint", KERN_WARNING)

    def _resolve(self, mod: Module) -> None:
        missing = [s for s in mod.decl.requires if s not in self._symbols]
        if missing:
            for s in missing:
                self.kernel.printk(f"{mod.name}: Unknown symbol {s} (err -2)", KERN_WARNING)
            raise KernelError(errno.ENOENT)
        for s in mod.decl.requires:
            owner_name = self._symbols[s]
            if not owner_name:
                continue
            owner = self.get(owner_name)
            if owner is None or owner_name in mod.uses:
                continue
            mod.uses.append(owner_name)
            owner.holders.insert(0, mod.name)
            self.kernel.vfs.add_value(f"/sys/module/{owner_name}/holders/{mod.name}", "")

    def _drop_usage(self, mod: Module) -> None:
        for owner_name in mod.uses:
            owner = self.get(owner_name)
            if owner and mod.name in owner.holders:
                owner.holders.remove(mod.name)
                self.kernel.vfs.remove(f"/sys/module/{owner_name}/holders/{mod.name}")
        mod.uses.clear()

    def _make_params(self, decl: ModuleDecl, prefix: str = "") -> dict[str, "Param"]:
        """Live parameters; built-ins name theirs ``mod.param`` as the kernel's messages do."""
        from kmodemu.kernel.params import Param
        return {p.name: Param(p, name=f"{prefix}{p.name}" if prefix else None) for p in decl.params}

    def load(self, decl: ModuleDecl, args: str = "") -> Module:
        """``init_module``: raise ``KernelError`` with the errno the syscall would return."""
        k = self.kernel
        if self.oplog is not None:
            ref = {"plugin": decl.plugin} if decl.plugin else {"path": decl.origin}
            self.oplog.append(["load", ref, args])
        if self.modules_disabled:
            raise KernelError(errno.EPERM)
        if decl.plugin and k.registry is not None:
            plugin_decl = k.registry.get(decl.plugin)
            if plugin_decl is not None:
                decl = plugin_decl
        name = module_name(decl.name)
        if len(name) >= MODULE_NAME_LEN:
            raise KernelError(errno.ENAMETOOLONG)
        if name in self.blacklist:
            k.printk(f"Module {name} is blacklisted", KERN_ERR)
            raise KernelError(errno.EPERM)
        existing = self.get(name)
        if existing is not None:
            raise KernelError(errno.EEXIST if existing.state == "live" else errno.EBUSY)
        if name in self.builtin:
            # Linux would fail later on the duplicate exports; kmodemu says it at once.
            raise KernelError(errno.EEXIST)
        dup = [s for s in decl.exports if s in self._symbols]
        if dup:
            k.printk(f"{name}: exports duplicate symbol {dup[0]} (owned by "
                     f"{self._symbols[dup[0]] or 'kernel'})", KERN_ERR)
            raise KernelError(errno.ENOEXEC)

        mod = Module(decl=decl, name=name, params=self._make_params(decl))
        if k.profile.unload:
            mod.unload_exit = decl.unload_exit
        self._check_modinfo(mod)
        self._modules.insert(0, mod)
        try:
            self._resolve(mod)
            self._apply_args(mod, args)
            self._sysfs_module(mod)
            self._sysfs_params(mod)
            for s in decl.exports:
                self._symbols[s] = name
            k.clock.advance_us(500)
            self._run_init(mod)
        except BaseException:
            self._discard(mod)
            raise
        mod.state = "live"
        k.hook.kmodemu_module_loaded(kernel=k, module=mod)
        return mod

    def _apply_args(self, mod: Module, args: str) -> None:
        from kmodemu.kernel.params import parse_args
        k = self.kernel

        def unknown(pname: str, value: str | None) -> int:
            k.printk(f"{mod.name}: unknown parameter '{pname}' ignored", KERN_WARNING)
            return 0

        def taint_user() -> None:  # add_taint(TAINT_USER): an unsafe parameter was set
            k.taint.add("U")

        err, rest = parse_args(mod.name, args, mod.params, unknown=unknown,
                               printk=lambda m: k.printk(m, KERN_ERR), taint=taint_user)
        if rest:
            k.printk(f"{mod.name}: parameters '{rest}' after `--' ignored", KERN_WARNING)
        if err:
            raise KernelError(-err)

    def _run_init(self, mod: Module) -> None:
        ctx = ModuleContext(self.kernel, mod)
        mod.ctx = ctx
        if mod.decl.init is None:
            return
        try:
            ret = mod.decl.init(ctx) or 0
        except KernelError as e:
            ret = -e.errno
        except Exception as e:  # a bug in the module's code: the kernel would oops
            ret = self.oops(mod.name, "init", e)
        if not isinstance(ret, int):
            self.kernel.printk(f"{mod.name}: init returned {ret!r}, not an int", KERN_ERR)
            ret = -errno.EINVAL
        if ret == 0 and self.kernel.faults.should_fail("fail_module_init"):
            ret = self.kernel.faults.fail_module_init.retval  # failed after its work: unwound below
        if ret < 0:
            ctx.run_cleanups()
            raise KernelError(-ret)
        if ret > 0:
            self.kernel.printk(f"{mod.name}: init suspiciously returned {ret}, "
                               "it should follow 0/-E convention", KERN_WARNING)

    def oops(self, name: str, where: str, exc: BaseException) -> int:
        """A module's Python code raised: log it like an oops, taint D, fail with EFAULT.

        Linux would kill the loading process and leave the module half-made;
        kmodemu unwinds instead, so the machine stays usable (docs say so).
        """
        k = self.kernel
        k.printk(f"BUG: {name}: exception in {where}: {type(exc).__name__}: {exc}", KERN_ERR)
        k.printk(f"Modules linked in: {' '.join(m.name for m in self._modules) or '(none)'}", KERN_ERR)
        k.taint.add("D")
        return -errno.EFAULT

    def _discard(self, mod: Module) -> None:
        mod.state = "going"
        self._drop_usage(mod)
        for s in mod.decl.exports:
            if self._symbols.get(s) == mod.name:
                del self._symbols[s]
        if mod in self._modules:
            self._modules.remove(mod)
        self.kernel.vfs.remove(f"/sys/module/{mod.name}")

    # -- unload -----------------------------------------------------------------
    def unload(self, name: str, *, force: bool = False) -> None:
        """``delete_module``: the kernel's checks, in its order."""
        if self.modules_disabled:
            raise KernelError(errno.EPERM)
        if self.oplog is not None:
            self.oplog.append(["unload", name, force])
        force = force and self.force_unload
        mod = self.get(name)
        if mod is None:
            raise KernelError(errno.ENOENT)
        if mod.holders:
            raise KernelError(errno.EWOULDBLOCK)
        if mod.state != "live":
            raise KernelError(errno.EBUSY)
        if mod.permanent and not force:
            raise KernelError(errno.EBUSY)
        if mod.refs and not force:
            raise KernelError(errno.EWOULDBLOCK)
        if mod.unload_exit is not None and mod.ctx is not None:
            ret = self._run_unload_exit(mod)
            if ret < 0:  # the backend could not let go: it stays, nothing changed
                raise KernelError(-ret)
        if force:
            self.kernel.taint.add("R")
        mod.state = "going"
        if mod.decl.exit is not None and mod.ctx is not None:
            try:
                mod.decl.exit(mod.ctx)
            except Exception as e:  # the module goes anyway, as after an oops in exit
                self.oops(mod.name, "exit", e)
        if mod.ctx is not None:
            mod.ctx.run_cleanups()
        self._discard(mod)
        self.kernel.clock.advance_us(200)
        self.kernel.hook.kmodemu_module_unloaded(kernel=self.kernel, name=mod.name)

    def _run_unload_exit(self, mod: Module) -> int:
        """A backend's exit on a kernel that can unload one (beyond Linux): 0 or -errno."""
        assert mod.ctx is not None and mod.unload_exit is not None
        mod.state = "going"
        try:
            ret = mod.unload_exit(mod.ctx) or 0
        except KernelError as e:
            ret = -e.errno
        except Exception as e:  # a bug in the exit: refuse, as the module may be half-gone
            ret = self.oops(mod.name, "exit", e)
        if not isinstance(ret, int):
            self.kernel.printk(f"{mod.name}: exit returned {ret!r}, not an int", KERN_ERR)
            ret = -errno.EINVAL
        if ret < 0:
            mod.state = "live"
        return ret

    def replay(self, op: list) -> None:
        """Redo one recorded load/unload attempt (its errors happen again, silently)."""
        try:
            if op[0] == "load":
                ref, args = op[1], op[2]
                registry = self.kernel.registry
                decl = registry.get(ref["plugin"]) if "plugin" in ref and registry is not None else None
                if decl is None:
                    decl = read_module(ref.get("path") or "")
                self.load(decl, args)
            elif op[0] == "unload":
                self.unload(op[1], force=op[2])
        except (KernelError, OSError):
            pass

    # -- built-in ---------------------------------------------------------------
    def add_builtin(self, decl: ModuleDecl) -> Module:
        """Record a built-in module: its params live under /sys/module if visible."""
        name = module_name(decl.name)
        mod = Module(decl=decl, name=name, builtin=True, state="live",
                     params=self._make_params(decl, f"{name}.")
                     if decl.extra.get("builtin_params", True) else {})
        mod.ctx = ModuleContext(self.kernel, mod)
        self.builtin[name] = mod
        for s in decl.exports:
            self._symbols[s] = name
        if any(p.spec.perm for p in mod.params.values()) or decl.version:
            if decl.version:
                self.kernel.vfs.add_value(f"/sys/module/{name}/version", decl.version)
            self._sysfs_params(mod)
        return mod

    # -- /proc/modules ----------------------------------------------------------
    def proc_modules(self) -> str:
        lines = []
        for m in self._modules:
            users = "".join(f"{h}," for h in m.holders)
            if m.permanent:
                users += "[permanent],"
            taints = m.taint.letters()
            if taints and m.state != "live":
                taints += "+" if m.state == "coming" else "-"
            tail = f" ({taints})" if taints else ""
            lines.append(f"{m.name} {m.size} {m.refcnt} {users or '-'} "
                         f"{STATE_TEXT[m.state]} 0x0000000000000000{tail}\n")
        return "".join(lines)
