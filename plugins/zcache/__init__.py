"""zcache: compressed pages in RAM behind cleancache and frontswap (Linux 3.10 staging zcache2).

This file is the module: its declaration (what ``modinfo`` shows), the boot
parameters of the built-in path (deprecated, ``zcache`` on the command line),
the module parameters of the ``insmod zcache`` path, and ``zcache_init`` in
Linux's order (``zcache_init`` in drivers/staging/zcache/zcache-main.c): compressor, client, cleancache registration
(which replays the filesystems mounted so far), then frontswap registration
(which replays the swap devices enabled so far). The storage itself — tmem,
zbud, compressors — lives in the sibling modules and is reached through the
two plain ops objects of :class:`ZcacheHost`.
"""

from __future__ import annotations

import errno
from types import SimpleNamespace

from kmodemu.hookspecs import hookimpl
from kmodemu.kernel.params import ParamSpec
from kmodemu.kernel.printk import KERN_ERR, KERN_INFO, KERN_WARNING
from kmodemu.modules.declaration import BootParam, ModuleDecl

from .compress import get_compressor
from .counters import Counters
from .host import ZPOOLS, ZcacheHost

#: our default compressor; Linux 3.10 used "lzo" (see docs/zcache.md)
DEFAULT_COMPRESSOR = "zstd"
NAMESTR = "zcache"


# -- the built-in path: __setup handlers, in the order zcache-main.c defines them.
# Prefix matching means "zcache" also consumes "zcache=lz4" and "nofrontswap"
# consumes "nofrontswapexclusivegets", exactly as obsolete_checksetup does.

def _boot_flag(attr: str, value):
    def handler(rest: str, ctx) -> int:
        setattr(ctx.state, attr, value)
        return 1
    return handler


def _enable_ramster(rest: str, ctx) -> int:
    """``ramster``: exists only when RAMster is built in too (CONFIG_RAMSTER=y)."""
    if "ramster" not in ctx.kernel.builtin_names:
        return 0  # no such __setup: the word goes on to init, as on a kernel without RAMster
    ctx.state.zcache_enabled = True
    ctx.state.ramster_enabled = True
    return 1


def _enable_compressor(rest: str, ctx) -> int:
    ctx.state.zcache_comp_name = rest
    ctx.state.zcache_enabled = True
    return 1


BOOT_PARAMS = (
    BootParam("zcache", _boot_flag("zcache_enabled", True)),
    BootParam("ramster", _enable_ramster, module_param="ramster=1", needs_builtin=("ramster",)),
    BootParam("nocleancache", _boot_flag("disable_cleancache", True), module_param="disable_cleancache=1"),
    BootParam("nofrontswap", _boot_flag("disable_frontswap", True), module_param="disable_frontswap=1"),
    BootParam("nofrontswapexclusivegets", _boot_flag("frontswap_has_exclusive_gets", False),
              module_param="frontswap_has_exclusive_gets=0"),
    BootParam("nofrontswapignorenonactive", _boot_flag("disable_frontswap_ignore_nonactive", True),
              module_param="disable_frontswap_ignore_nonactive=1"),
    BootParam("nocleancacheignorenonactive", _boot_flag("disable_cleancache_ignore_nonactive", True)),
    BootParam("zcache=", _enable_compressor, module_param="zcache_comp_name={rest}"),
)

# -- the module path: module_param(…, S_IRUGO)
PARAMS = (
    ParamSpec("zcache_comp_name", "charp", 0o444, "compressor (zstd, lz4, lzo, deflate)",
              DEFAULT_COMPRESSOR),
    ParamSpec("disable_cleancache", "bool", 0o444, "do not register with cleancache", False),
    ParamSpec("disable_frontswap", "bool", 0o444, "do not register with frontswap", False),
    ParamSpec("frontswap_has_exclusive_gets", "bool", 0o444,
              "a frontswap load removes the page", True),
    ParamSpec("disable_frontswap_ignore_nonactive", "bool", 0o444,
              "store frontswap pages that were never active", False),
    ParamSpec("ramster", "bool", 0o444, "keep pages in a peer's RAM (needs the ramster module)",
              False),
    ParamSpec("disable_frontswap_selfshrink", "int", 0o444,
              "ramster: no frontswap self-shrinking", 0),
    ParamSpec("zpool", "charp", 0o444, "allocator: zbud (Linux) or zsmalloc (denser)", "zbud"),
    ParamSpec("same_filled", "bool", 0o444,
              "store pages of one repeated word as metadata only (beyond Linux)", True),
)


def _settings(ctx) -> SimpleNamespace:
    """One view of the knobs: module parameters, or what the boot handlers set."""
    if ctx.builtin:
        st = ctx.state
        return SimpleNamespace(
            enabled=getattr(st, "zcache_enabled", False),
            comp_name=getattr(st, "zcache_comp_name", ""),
            disable_cleancache=getattr(st, "disable_cleancache", False),
            disable_frontswap=getattr(st, "disable_frontswap", False),
            exclusive_gets=getattr(st, "frontswap_has_exclusive_gets", True),
            disable_frontswap_ignore_nonactive=getattr(st, "disable_frontswap_ignore_nonactive", False),
            disable_cleancache_ignore_nonactive=getattr(st, "disable_cleancache_ignore_nonactive", False),
            ramster=getattr(st, "ramster_enabled", False),
            zpool="zbud",
            same_filled=True,
        )
    p = ctx.params
    return SimpleNamespace(
        enabled=True, comp_name=p.zcache_comp_name, disable_cleancache=p.disable_cleancache,
        disable_frontswap=p.disable_frontswap, exclusive_gets=p.frontswap_has_exclusive_gets,
        disable_frontswap_ignore_nonactive=p.disable_frontswap_ignore_nonactive,
        # no module parameter for this one in Linux: stuck at false for modules
        disable_cleancache_ignore_nonactive=False,
        ramster=p.ramster, zpool=p.zpool or "zbud", same_filled=p.same_filled,
    )


def _comp_init(ctx, s: SimpleNamespace):
    """zcache_comp_init: the compressor, or None after logging why not."""
    k = ctx.kernel
    name = s.comp_name
    if not ctx.builtin:
        try:
            comp = get_compressor(name or "")
        except LookupError:
            k.printk(f"zcache: {name} not supported", KERN_INFO)
            return None
    else:
        comp = None
        if name:
            try:
                comp = get_compressor(name)
            except LookupError:
                k.printk(f"zcache: {name} not supported", KERN_INFO)
                if k.lazy_init:  # 3.10 built-in: no fallback
                    return None
        if comp is None:
            comp = get_compressor(DEFAULT_COMPRESSOR)
    k.printk(f"zcache: using {comp.name} compressor", KERN_INFO)
    return comp


def zcache_init(ctx) -> int:
    k = ctx.kernel
    s = _settings(ctx)
    if not ctx.builtin:
        if not k.frontswap.FRONTSWAP_HAS_LAZY_INIT and not s.disable_frontswap:
            k.printk("zcache module requires frontswap lazy init", KERN_ERR)
            return -errno.EINVAL
        if not k.cleancache.CLEANCACHE_HAS_LAZY_INIT and not s.disable_cleancache:
            k.printk("zcache module requires cleancache lazy init", KERN_ERR)
            return -errno.EINVAL
    if s.ramster:
        ret = _ramster(ctx)
        if ret:
            return ret

    counters = Counters()
    ctx.state.counters = counters
    ctx.debugfs("zcache", lambda: counters.zcache)   # created even when disabled
    if not s.enabled:
        ctx.debugfs("zbud", lambda: counters.zbud)
        return 0

    comp = _comp_init(ctx, s)
    if comp is None:
        k.printk("zcache: compressor initialization failed", KERN_ERR)
        return -1 if not ctx.builtin else -errno.EINVAL
    if s.zpool not in ZPOOLS:
        k.printk(f"zcache: zpool {s.zpool} not supported (zbud, zsmalloc)", KERN_ERR)
        return -errno.EINVAL
    host = ZcacheHost(
        k.mm.frames, comp, zpool=s.zpool, counters=counters,
        disable_cleancache_ignore_nonactive=s.disable_cleancache_ignore_nonactive,
        disable_frontswap_ignore_nonactive=s.disable_frontswap_ignore_nonactive,
        frontswap_has_exclusive_gets=s.exclusive_gets,
        same_filled=s.same_filled,
    )
    host.printk = lambda text: k.printk(text, KERN_INFO)
    ctx.state.host = host
    ctx.debugfs("zbud", lambda: counters.zbud)  # zbud_init
    allocator = "compression buddies" if s.zpool == "zbud" else "zsmalloc"

    if not s.disable_cleancache:
        k.mm.register_shrinker(_shrinker(k, host))
        old = k.cleancache.register_ops(host.cleancache_ops)
        k.printk(f"{NAMESTR}: cleancache enabled using kernel transcendent memory and {allocator}",
                 KERN_INFO)
        if old is not None:
            k.printk(f"{NAMESTR}: cleancache_ops overridden", KERN_WARNING)
    if not s.disable_frontswap:
        old = k.frontswap.register_ops(host.frontswap_ops)
        if s.exclusive_gets:
            k.frontswap.tmem_exclusive_gets(True)
        k.printk(f"{NAMESTR}: frontswap enabled using kernel transcendent memory and {allocator}",
                 KERN_INFO)
        if isinstance(old, BaseException):
            return -getattr(old, "errno", errno.EINVAL)
        if old is not None:
            k.printk(f"{NAMESTR}: frontswap_ops overridden", KERN_WARNING)
    return 0


def _ramster(ctx) -> int:
    """``ramster=1``: ramster's code lives in its own module; ask modprobe for it."""
    k = ctx.kernel
    if k.registry is None or k.registry.get("ramster") is None:
        k.printk("zcache: ramster requested, but this kernel has no ramster module", KERN_ERR)
        return -errno.ENODEV
    ret = ctx.request_module("ramster")
    if ret != 0 or k.modules.get("ramster") is None:
        k.printk(f"zcache: ramster requested, but loading module ramster failed ({ret})", KERN_ERR)
        return -errno.ENODEV
    return 0


def _shrinker(kernel, host: ZcacheHost):
    """The zcache shrinker: evict ephemeral frames down to the file LRU size."""
    def shrink(nr_to_scan: int) -> int:
        lru = kernel.mm.lru_sizes() if hasattr(kernel.mm, "lru_sizes") else None
        eph = host.counters.zcache.eph_pageframes
        keep = max(0, eph - nr_to_scan)
        if lru is not None:
            keep = max(keep, min(eph, lru[0] + lru[1]))
        return host.shrink(keep, lru)
    return shrink


MODULE = ModuleDecl(
    name="zcache",
    description="In-kernel transcendent memory compressed cache (zcache2)",
    license="GPL",
    author="Dan Magenheimer <dan.magenheimer@oracle.com>",
    version="",
    params=PARAMS,
    requires=("cleancache_register_ops", "frontswap_register_ops",
              "frontswap_tmem_exclusive_gets"),
    staging=True,
    init=zcache_init,
    exit=None,  # module unload is not supported: permanent
    boot_params=BOOT_PARAMS,
    initcall="late",
    size=122880,
    extra={"builtin_params": False, "path": "kernel/drivers/staging/zcache/zcache.ko"},
)


@hookimpl
def kmodemu_modules():
    return [MODULE]
