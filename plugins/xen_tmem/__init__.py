"""tmem: the Xen transcendent memory shim (``drivers/xen/tmem.c``, Linux 3.10, the V2 patchset).

The module ``tmem`` puts cleancache and frontswap pages in the hypervisor's
tmem through hypercall 38 (the data path is ``shim.py``). Built in, it takes
Linux's boot flags: ``tmem`` (enable), ``nocleancache``, ``nofrontswap``, and
xen-selfballoon.c's ``selfballooning``/``noselfballooning``/``noselfshrink``.
As a module (the patchset's form, 3.10 only) it is always enabled and reads
four read-only parameters ``disable_cleancache``, ``disable_frontswap``,
``disable_selfballooning``, ``disable_frontswap_selfshrinking`` (3.11 renamed
them ``tmem.cleancache`` etc.; docs/xen.md). Init is ``xen_tmem_init``:
nothing unless ``xen_domain()``, then frontswap (the core replays swap types
already on), cleancache (it replays mounted filesystems), then
``xen_selfballoon_init``. Unloading is not supported.

On a kernel that is not a Xen guest the Xen symbols do not exist: the module
does not load (``Unknown symbol``), the built-in one stays silent.
"""

from __future__ import annotations

import errno
from typing import Any

from kmodemu.hookspecs import hookimpl
from kmodemu.kernel.params import ParamSpec
from kmodemu.kernel.printk import KERN_ERR, KERN_INFO
from kmodemu.modules.declaration import BootParam, ModuleDecl

from .shim import Hypercalls, TmemCleancacheOps, TmemFrontswapOps

XEN_REQUIRES = ("xen_domain", "HYPERVISOR_tmem_op", "xen_selfballoon_init")
FRONTEND_REQUIRES = ("cleancache_register_ops", "frontswap_register_ops")


def _flag(attr: str):
    def handler(rest: str, ctx: Any) -> int:
        if rest:   # __setup matches a prefix; "tmemfoo" is not "tmem"
            return 0
        setattr(ctx.state, attr, True)
        return 1
    return handler


BOOT_PARAMS = (
    BootParam("tmem", _flag("tmem_enabled")),
    BootParam("nocleancache", _flag("disable_cleancache"), module_param="disable_cleancache=1"),
    BootParam("nofrontswap", _flag("disable_frontswap"), module_param="disable_frontswap=1"),
    # xen-selfballoon.c's flags: honoured by the 3.9 kernel's own initcall; on 3.10 the
    # shim passes its disable_* values instead, so they change nothing (docs/xen.md)
    BootParam("selfballooning", _flag("selfballooning")),
    BootParam("noselfballooning", _flag("noselfballooning"),
              module_param="disable_selfballooning=1"),
    BootParam("noselfshrink", _flag("noselfshrink"),
              module_param="disable_frontswap_selfshrinking=1"),
)

PARAMS = (
    ParamSpec("disable_cleancache", "bool", 0o444, "", False),
    ParamSpec("disable_selfballooning", "bool", 0o444, "", False),
    ParamSpec("disable_frontswap", "bool", 0o444, "", False),
    ParamSpec("disable_frontswap_selfshrinking", "bool", 0o444, "", False),
)


def _symbol(ctx: Any, name: str) -> Any:
    """A vmlinux symbol's value, or None when this kernel has none (bare metal)."""
    try:
        return ctx.kernel.modules.core_symbols.get(name)
    except AttributeError:  # pragma: no cover - a kernel without a symbol table
        return None


def xen_tmem_init(ctx: Any) -> int:
    k = ctx.kernel
    xen_domain = _symbol(ctx, "xen_domain")
    if xen_domain is None or not xen_domain():
        return 0
    st = ctx.state
    if ctx.builtin:
        enabled = getattr(st, "tmem_enabled", False)
        no_cc = getattr(st, "disable_cleancache", False)
        no_fs = getattr(st, "disable_frontswap", False)
        use_sb, use_ss = True, True   # the V2 shim's !disable_* (always false built in)
    else:
        if not k.lazy_init:
            k.printk("xen tmem module requires cleancache and frontswap lazy init", KERN_ERR)
            return -errno.EINVAL
        p = ctx.params
        enabled = True                # tmem_enabled is the constant true in a module
        no_cc, no_fs = p.disable_cleancache, p.disable_frontswap
        use_sb, use_ss = not p.disable_selfballooning, not p.disable_frontswap_selfshrinking
    hc = Hypercalls(_symbol(ctx, "HYPERVISOR_tmem_op"))
    st.hypercalls = hc
    if enabled and not no_fs:
        fs_ops = TmemFrontswapOps(hc)
        st.frontswap_ops = fs_ops
        old = _symbol(ctx, "frontswap_register_ops")(fs_ops)
        s = ""
        if isinstance(old, BaseException):
            return -getattr(old, "errno", errno.EINVAL)
        if old is not None:
            s = " (WARNING: frontswap_ops overridden)"
        k.printk(f"frontswap enabled, RAM provided by Xen Transcendent Memory{s}", KERN_INFO)
    if enabled and not no_cc:
        cc_ops = TmemCleancacheOps(hc)
        st.cleancache_ops = cc_ops
        old = _symbol(ctx, "cleancache_register_ops")(cc_ops)
        s = " (WARNING: cleancache_ops overridden)" if old is not None else ""
        k.printk(f"cleancache enabled, RAM provided by Xen Transcendent Memory{s}", KERN_INFO)
    selfballoon_init = _symbol(ctx, "xen_selfballoon_init")
    if selfballoon_init is not None:
        if ctx.builtin and not k.lazy_init:
            # 3.9: xen-selfballoon.c's own initcall reads its boot flags
            default_sb = not no_fs
            use_sb = (default_sb or getattr(st, "selfballooning", False)) and \
                not getattr(st, "noselfballooning", False)
            use_ss = not getattr(st, "noselfshrink", False)
        selfballoon_init(use_sb, use_ss, enabled)
    return 0


MODULE = ModuleDecl(
    name="tmem",
    description="Shim to Xen transcendent memory",
    license="GPL",
    author="Dan Magenheimer <dan.magenheimer@oracle.com>",
    params=PARAMS,
    requires=FRONTEND_REQUIRES + XEN_REQUIRES,
    init=xen_tmem_init,
    exit=None,  # module unload is not supported: permanent
    boot_params=BOOT_PARAMS,
    initcall="device",   # module_init of a built-in
    size=16384,
    extra={"builtin_params": False, "path": "kernel/drivers/xen/tmem.ko"},
)


@hookimpl
def kmodemu_modules() -> list[ModuleDecl]:
    return [MODULE]
