"""tmem_ram: a toy tmem backend the scenario library uses to *see* the frontends.

It keeps pages uncompressed in dictionaries and logs every pool it creates and
every swap device it is told about, so a scenario can watch lazy init replay
(or not replay) in dmesg. Unlike zcache it never checks for lazy init: it loads
as a module on 3.9 too, which shows what the pre-patch kernel does with
filesystems mounted before a backend. It ignores memory accounting (a toy).

Parameters: ``max_pools`` makes ``init_fs`` fail once that many pools exist
(the way zcache's 17th pool fails); ``frontswap=0`` registers cleancache only.
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


class RamTmem:
    """Both ops tables in one object: the calls a frontend makes, logged where useful."""

    def __init__(self, ctx: ModuleContext, max_pools: int):
        self.ctx, self.max_pools = ctx, max_pools
        self.pools: dict[int, dict] = {}
        self.swap: dict[int, dict] = {}
        self.stats = {"pools": 0, "puts": 0, "gets": 0, "hits": 0, "stores": 0, "loads": 0}

    # -- cleancache -----------------------------------------------------------
    def init_fs(self, pagesize: int) -> int:
        if 0 < self.max_pools <= len(self.pools):
            self.ctx.printk(f"tmem_ram: init_fs: no pool left (max_pools={self.max_pools})",
                            KERN_WARNING)
            return -1
        pool = next(i for i in range(len(self.pools) + 1) if i not in self.pools)
        self.pools[pool] = {}
        self.stats["pools"] += 1
        self.ctx.printk(f"tmem_ram: init_fs: pool {pool}", KERN_INFO)
        return pool

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        self.ctx.printk(f"tmem_ram: init_shared_fs uuid {uuid.hex()}", KERN_INFO)
        return self.init_fs(pagesize)

    def get_page(self, pool: int, key: bytes, index: int, page) -> int:
        self.stats["gets"] += 1
        data = self.pools.get(pool, {}).pop((key, index), None)   # ephemeral: exclusive
        if data is None:
            return -1
        page.data = data
        self.stats["hits"] += 1
        return 0

    def put_page(self, pool: int, key: bytes, index: int, page) -> None:
        if pool in self.pools:
            self.pools[pool][(key, index)] = bytes(page.data)
            self.stats["puts"] += 1

    def invalidate_page(self, pool: int, key: bytes, index: int) -> None:
        self.pools.get(pool, {}).pop((key, index), None)

    def invalidate_inode(self, pool: int, key: bytes) -> None:
        entries = self.pools.get(pool, {})
        for k in [k for k in entries if k[0] == key]:
            del entries[k]

    def invalidate_fs(self, pool: int) -> None:
        if self.pools.pop(pool, None) is None:
            self.ctx.printk(f"tmem_ram: invalidate_fs: no pool {pool}, ignored", KERN_INFO)
        else:
            self.ctx.printk(f"tmem_ram: invalidate_fs: pool {pool} destroyed", KERN_INFO)

    # -- frontswap ------------------------------------------------------------
    def init(self, type: int) -> None:
        self.swap[type] = {}
        self.ctx.printk(f"tmem_ram: frontswap init: swap type {type}", KERN_INFO)

    def store(self, type: int, offset: int, page) -> int:
        if type not in self.swap:
            return -1
        self.swap[type][offset] = bytes(page.data)
        self.stats["stores"] += 1
        return 0

    def load(self, type: int, offset: int, page) -> int:
        data = self.swap.get(type, {}).get(offset)
        if data is None:
            return -1
        page.data = data
        self.stats["loads"] += 1
        return 0

    def invalidate_page_swap(self, type: int, offset: int) -> None:
        self.swap.get(type, {}).pop(offset, None)

    def invalidate_area(self, type: int) -> None:
        self.swap.pop(type, None)
        self.ctx.printk(f"tmem_ram: frontswap invalidate_area: swap type {type}", KERN_INFO)


class _FrontswapOps:
    """frontswap's ``invalidate_page`` has another signature than cleancache's."""

    def __init__(self, tmem: RamTmem):
        self.init, self.store, self.load = tmem.init, tmem.store, tmem.load
        self.invalidate_page, self.invalidate_area = tmem.invalidate_page_swap, tmem.invalidate_area


def tmem_ram_init(ctx: ModuleContext) -> int:
    tmem = RamTmem(ctx, ctx.params.max_pools)
    ctx.state.tmem = tmem
    ctx.debugfs("tmem_ram", lambda: tmem.stats)
    old = ctx.cleancache_register_ops(tmem)
    ctx.printk("tmem_ram: cleancache enabled", KERN_INFO)
    if old is not None:
        ctx.printk("tmem_ram: cleancache_ops overridden", KERN_WARNING)
    if ctx.params.frontswap:
        fold = ctx.frontswap_register_ops(_FrontswapOps(tmem))
        ctx.printk("tmem_ram: frontswap enabled", KERN_INFO)
        if fold is not None and not isinstance(fold, KernelError):
            ctx.printk("tmem_ram: frontswap_ops overridden", KERN_WARNING)
    return 0


MODULE = ModuleDecl(
    name="tmem_ram",
    description="Toy tmem backend: uncompressed pages in RAM, every pool logged",
    license="GPL",
    author="kmodemu scenario library",
    params=(ParamSpec("max_pools", "int", 0o444, "fail init_fs beyond this many pools (0: no limit)", 0),
            ParamSpec("frontswap", "bool", 0o444, "also register with frontswap", True)),
    requires=("cleancache_register_ops", "frontswap_register_ops"),
    out_of_tree=True,
    init=tmem_ram_init,
    exit=None,  # tmem backends cannot be unregistered
    extra={"path": "extra/tmem_ram.ko"},
)


@hookimpl
def kmodemu_modules():
    return [MODULE]
