"""tmem_dict: a second tmem backend for the edge-case and ordering tests.

Pages live uncompressed in dicts; every pool, swap-device init, fs and area
invalidation is logged, so a test sees in dmesg what the frontends asked of
it. Unlike zcache it never checks for lazy init, so it also loads as a module
on 3.9 — which is how a test shows a *late* registration on the pre-patch
kernel.

Parameters: ``max_pools`` (init_fs fails beyond that many pools, as zcache's
17th does), ``frontswap`` (also register with frontswap) and
``writethrough`` (call the exported ``frontswap_writethrough(true)``).
"""

from __future__ import annotations

from kmodemu.tmem import (
    KERN_INFO,
    KERN_WARNING,
    KernelError,
    ModuleContext,
    ModuleDecl,
    ParamSpec,
    hookimpl,
)


class DictCleancache:
    """``struct cleancache_ops``: ephemeral (a hit removes the page), every pool logged."""

    def __init__(self, ctx: ModuleContext, max_pools: int):
        self.ctx, self.max_pools = ctx, max_pools
        self.pools: dict[int, dict] = {}

    def _log(self, text: str, level: int = KERN_INFO) -> None:
        self.ctx.printk(f"tmem_dict: {text}", level)

    def init_fs(self, pagesize: int) -> int:
        # replay runs before publishing; a test backend may peek (ctx.kernel is not the contract)
        published = self.ctx.kernel.cleancache.ops is self
        if 0 < self.max_pools <= len(self.pools):
            self._log(f"init_fs: no pool left (max_pools={self.max_pools})", KERN_WARNING)
            return -1
        pool = next(i for i in range(len(self.pools) + 1) if i not in self.pools)
        self.pools[pool] = {}
        self._log(f"init_fs: pool {pool} (ops published: {'yes' if published else 'no'})")
        return pool

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        self._log(f"init_shared_fs: uuid {uuid.hex()}")
        return self.init_fs(pagesize)

    def get_page(self, pool: int, key: bytes, index: int, page) -> int:
        data = self.pools.get(pool, {}).pop((key, index), None)
        if data is None:
            return -1
        page.data = data
        return 0

    def put_page(self, pool: int, key: bytes, index: int, page) -> None:
        if pool in self.pools:
            self.pools[pool][(key, index)] = page.data

    def invalidate_page(self, pool: int, key: bytes, index: int) -> None:
        self.pools.get(pool, {}).pop((key, index), None)

    def invalidate_inode(self, pool: int, key: bytes) -> None:
        entries = self.pools.get(pool, {})
        for k in [k for k in entries if k[0] == key]:
            del entries[k]

    def invalidate_fs(self, pool: int) -> None:
        if self.pools.pop(pool, None) is None:
            self._log(f"invalidate_fs: pool {pool} unknown, ignored")
        else:
            self._log(f"invalidate_fs: pool {pool} destroyed")


class DictFrontswap:
    """``struct frontswap_ops``: a store to a type never init'ed is refused."""

    def __init__(self, ctx: ModuleContext):
        self.ctx = ctx
        self.types: dict[int, dict] = {}

    def init(self, type: int) -> None:
        self.types[type] = {}
        self.ctx.printk(f"tmem_dict: frontswap init: swap type {type}", KERN_INFO)

    def store(self, type: int, offset: int, page) -> int:
        pages = self.types.get(type)
        if pages is None:
            return -1
        pages[offset] = page.data
        return 0

    def load(self, type: int, offset: int, page) -> int:
        data = self.types.get(type, {}).get(offset)
        if data is None:
            return -1
        page.data = data
        return 0

    def invalidate_page(self, type: int, offset: int) -> None:
        self.types.get(type, {}).pop(offset, None)

    def invalidate_area(self, type: int) -> None:
        self.types.pop(type, None)
        self.ctx.printk(f"tmem_dict: frontswap invalidate_area: swap type {type}", KERN_INFO)


def tmem_dict_init(ctx: ModuleContext) -> int:
    p = ctx.params
    cc = DictCleancache(ctx, p.max_pools)
    ctx.state.cleancache = cc
    if ctx.cleancache_register_ops(cc) is not None:
        ctx.printk("tmem_dict: cleancache_ops overridden", KERN_WARNING)
    if p.frontswap:
        fs = DictFrontswap(ctx)
        ctx.state.frontswap = fs
        old = ctx.frontswap_register_ops(fs)
        if isinstance(old, KernelError):
            return -old.errno
        if old is not None:
            ctx.printk("tmem_dict: frontswap_ops overridden", KERN_WARNING)
        if p.writethrough:
            ctx.frontswap_writethrough(True)
    return 0


MODULE = ModuleDecl(
    name="tmem_dict",
    description="Test tmem backend: uncompressed pages in dicts, every pool logged",
    license="GPL",
    author="kmodemu tests",
    params=(ParamSpec("max_pools", "int", 0o444, "fail init_fs beyond this many pools (0: no limit)", 0),
            ParamSpec("frontswap", "bool", 0o444, "also register with frontswap", True),
            ParamSpec("writethrough", "bool", 0o444, "frontswap_writethrough(true)", False)),
    requires=("cleancache_register_ops", "frontswap_register_ops", "frontswap_writethrough"),
    out_of_tree=True,
    init=tmem_dict_init,
    exit=None,  # a tmem backend cannot unregister
    extra={"path": "extra/tmem_dict.ko"},
)


@hookimpl
def kmodemu_modules():
    return [MODULE]
