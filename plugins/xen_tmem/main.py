"""xen_tmem_init and the declaration of ``tmem``, the Xen transcendent memory shim (drivers/xen/tmem.c).

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
``xen_selfballoon_init``. Linux cannot unload it; on the ``3.10-unload``
profile (beyond Linux, docs/unloading.md) ``xen_tmem_unload_exit`` lets go.

On a kernel that is not a Xen guest the Xen symbols do not exist: the module
does not load (``Unknown symbol``), the built-in one stays silent.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from kmodemu.tmem import KERN_ERR, KERN_INFO, BootParam, ModuleContext, ModuleDecl, ParamSpec

from .shim import Hypercalls, TmemCleancacheOps, TmemFrontswapOps

XEN_REQUIRES = ("xen_domain", "HYPERVISOR_tmem_op", "xen_selfballoon_init")
FRONTEND_REQUIRES = ("cleancache_register_ops", "frontswap_register_ops")


@dataclass
class ShimState:
    """tmem.c's file-static variables, one set per kernel (``ctx.private(ShimState)``)."""

    tmem_enabled: bool = False          # the ``tmem`` boot flag (a module: always true)
    disable_cleancache: bool = False
    disable_frontswap: bool = False
    selfballooning: bool = False        # xen-selfballoon.c's boot flags
    noselfballooning: bool = False
    noselfshrink: bool = False
    hypercalls: Hypercalls | None = None
    cleancache_ops: TmemCleancacheOps | None = None
    frontswap_ops: TmemFrontswapOps | None = None


def _flag(attr: str):
    def handler(rest: str, ctx: ModuleContext) -> int:
        if rest:   # __setup matches a prefix; "tmemfoo" is not "tmem"
            return 0
        setattr(ctx.private(ShimState), attr, True)
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


def xen_tmem_init(ctx: ModuleContext) -> int:
    xen_domain = ctx.symbol_value("xen_domain")
    if xen_domain is None or not xen_domain():
        return 0
    st = ctx.private(ShimState)
    if ctx.builtin:
        enabled, no_cc, no_fs = st.tmem_enabled, st.disable_cleancache, st.disable_frontswap
        use_sb, use_ss = True, True   # the V2 shim's !disable_* (always false built in)
    else:
        if not (ctx.frontswap_has_lazy_init and ctx.cleancache_has_lazy_init):
            ctx.printk("xen tmem module requires cleancache and frontswap lazy init", KERN_ERR)
            return -errno.EINVAL
        p = ctx.params
        enabled = True                # tmem_enabled is the constant true in a module
        no_cc, no_fs = p.disable_cleancache, p.disable_frontswap
        use_sb, use_ss = not p.disable_selfballooning, not p.disable_frontswap_selfshrinking
    hc = st.hypercalls = Hypercalls(ctx.symbol_value("HYPERVISOR_tmem_op"))
    if enabled and not no_fs:
        fs_ops = st.frontswap_ops = TmemFrontswapOps(hc)
        old: Any = ctx.frontswap_register_ops(fs_ops)
        if isinstance(old, BaseException):
            return -getattr(old, "errno", errno.EINVAL)
        s = " (WARNING: frontswap_ops overridden)" if old is not None else ""
        ctx.printk(f"frontswap enabled, RAM provided by Xen Transcendent Memory{s}", KERN_INFO)
    if enabled and not no_cc:
        cc_ops = st.cleancache_ops = TmemCleancacheOps(hc)
        s = " (WARNING: cleancache_ops overridden)" if ctx.cleancache_register_ops(cc_ops) else ""
        ctx.printk(f"cleancache enabled, RAM provided by Xen Transcendent Memory{s}", KERN_INFO)
    selfballoon_init = ctx.symbol_value("xen_selfballoon_init")
    if selfballoon_init is not None:
        if ctx.builtin and not ctx.cleancache_has_lazy_init:
            # 3.9: xen-selfballoon.c's own initcall reads its boot flags
            use_sb = (not no_fs or st.selfballooning) and not st.noselfballooning
            use_ss = not st.noselfshrink
        selfballoon_init(use_sb, use_ss, enabled)
    return 0


def xen_tmem_unload_exit(ctx: ModuleContext) -> int:
    """The shim's exit on a kernel that can unload tmem backends (3.10-unload, beyond Linux).

    Frontswap first: its persistent pages are fetched back from the hypervisor
    and written to their swap slots before the persistent pool is destroyed
    (-EBUSY and nothing changed when no frame can be had for that). Then
    cleancache, whose ephemeral pools the hypervisor simply drops. Last, the
    self-balloon worker is re-initialised with tmem off, so it stops at its
    next tick: without tmem underneath, ballooning down would only push the
    guest into swap. The worker itself is the kernel's, not the module's.
    """
    st = ctx.private(ShimState)
    hc = st.hypercalls
    if hc is None:  # not a Xen guest: init did nothing, so neither does the exit
        return 0
    fs_ops, cc_ops = st.frontswap_ops, st.cleancache_ops
    if fs_ops is not None:
        ret = ctx.frontswap_unregister_ops(fs_ops)
        if ret == -errno.EBUSY:
            ctx.printk("xen tmem: frontswap pages cannot be written back now: not unloading",
                       KERN_ERR)
            return ret
        if ret < 0 and ret != -errno.EINVAL:  # EINVAL: another backend overrode ours
            return ret
        if fs_ops.poolid >= 0:
            hc.destroy_pool(fs_ops.poolid)
            fs_ops.poolid = -1
        st.frontswap_ops = None
    if cc_ops is not None:
        ctx.cleancache_unregister_ops(cc_ops)  # destroys each filesystem's pool
        st.cleancache_ops = None
    selfballoon_init = ctx.symbol_value("xen_selfballoon_init")
    if selfballoon_init is not None:
        selfballoon_init(False, False, False)  # -ENODEV, silently: nothing to balloon for
    st.hypercalls = None
    ctx.printk("xen tmem: unloaded: cleancache and frontswap are free for another backend",
               KERN_INFO)
    return 0


MODULE = ModuleDecl(
    name="tmem",
    description="Shim to Xen transcendent memory",
    license="GPL",
    author="Dan Magenheimer <dan.magenheimer@oracle.com>",
    params=PARAMS,
    requires=FRONTEND_REQUIRES + XEN_REQUIRES,
    init=xen_tmem_init,
    exit=None,  # module unload is not supported in Linux: permanent
    unload_exit=xen_tmem_unload_exit,  # linked only into 3.10-unload kernels (beyond Linux)
    boot_params=BOOT_PARAMS,
    initcall="device",   # module_init of a built-in
    size=16384,
    extra={"builtin_params": False, "path": "kernel/drivers/xen/tmem.ko"},
)
