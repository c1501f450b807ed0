"""A dict-backed fake tmem backend and small stand-ins for superblocks, inodes and swap_info."""

from __future__ import annotations

from types import SimpleNamespace

from kmodemu.kernel.kernel import Kernel
from kmodemu.mm.cleancache import ino_filekey
from kmodemu.mm.frontswap import new_map
from kmodemu.mm.page import Page


class FakeBackend:
    """Both ops tables over plain dicts, logging every call (one object serves as both).

    Cleancache gets are exclusive (a hit removes the page, as tmem's
    ephemeral pools do). ``fail_init`` makes ``init_fs``/``init_shared_fs``
    return -1 for the listed call numbers (0-based); ``reject_stores``
    makes every frontswap store fail; ``fs_exclusive`` frees on load.
    """

    def __init__(self, name: str = "fake", *, fail_init=(), reject_stores=False):
        self.name = name
        self.log: list[tuple] = []
        self.pools: dict[int, dict] = {}
        self.next_pool = 0
        self.init_calls = 0
        self.fail_init = set(fail_init)
        self.swap: dict[tuple[int, int], bytes] = {}
        self.swap_types: set[int] = set()
        self.reject_stores = reject_stores
        self.fs_exclusive = False

    # cleancache
    def _new_pool(self) -> int:
        n = self.init_calls
        self.init_calls += 1
        if n in self.fail_init:
            return -1
        pid = 0
        while pid in self.pools:
            pid += 1
        self.pools[pid] = {}
        return pid

    def init_fs(self, pagesize):
        pid = self._new_pool()
        self.log.append(("init_fs", pagesize, pid))
        return pid

    def init_shared_fs(self, uuid, pagesize):
        pid = self._new_pool()
        self.log.append(("init_shared_fs", uuid, pagesize, pid))
        return pid

    def get_page(self, pool, key, index, page):
        self.log.append(("get_page", pool, key, index))
        data = self.pools.get(pool, {}).pop((key, index), None)
        if data is None:
            return -1
        page.data = data
        return 0

    def put_page(self, pool, key, index, page):
        self.log.append(("put_page", pool, key, index))
        if pool in self.pools:
            self.pools[pool][(key, index)] = page.data

    def invalidate_page(self, *args):
        """Both tables name it invalidate_page: (pool, key, index) or (type, offset)."""
        self.log.append(("invalidate_page", *args))
        if len(args) == 2:
            self.swap.pop(args, None)
            return
        pool, key, index = args
        self.pools.get(pool, {}).pop((key, index), None)

    def invalidate_inode(self, pool, key):
        self.log.append(("invalidate_inode", pool, key))
        p = self.pools.get(pool, {})
        for k in [k for k in p if k[0] == key]:
            del p[k]

    def invalidate_fs(self, pool):
        self.log.append(("invalidate_fs", pool))
        if pool >= 0:
            self.pools.pop(pool, None)

    # frontswap
    def init(self, type):
        self.log.append(("init", type))
        self.swap_types.add(type)

    def store(self, type, offset, page):
        self.log.append(("store", type, offset))
        if self.reject_stores:
            return -1
        self.swap[(type, offset)] = page.data
        return 0

    def load(self, type, offset, page):
        self.log.append(("load", type, offset))
        data = self.swap.get((type, offset))
        if data is None:
            return -1
        if self.fs_exclusive:
            del self.swap[(type, offset)]
        page.data = data
        return 0

    def invalidate_area(self, type):
        self.log.append(("invalidate_area", type))
        for k in [k for k in self.swap if k[0] == type]:
            del self.swap[k]

    def calls(self, name: str) -> list[tuple]:
        return [c for c in self.log if c[0] == name]


def boot(profile: str = "3.10", mem: str | None = None) -> Kernel:
    cmdline = f"mem={mem}" if mem else ""
    k = Kernel(cmdline=cmdline, profile=profile)
    k.boot()
    return k


def sb_stub():
    """A bare superblock: what the frontend needs of one."""
    return SimpleNamespace(cleancache_poolid=-1)


def inode_stub(sb, ino: int = 12, key: bytes | None | str = "ino"):
    return SimpleNamespace(sb=sb, ino=ino, cleancache_key=ino_filekey(ino) if key == "ino" else key)


def page_of(byte: int) -> Page:
    return Page(bytes([byte]) * 4096)


class SisStub:
    """A swap_info entry as frontswap sees it."""

    def __init__(self, pages: int = 64):
        self.max = pages
        self.frontswap_map = None
        self.frontswap_pages = 0


def swapon_stub(fs, type: int, pages: int = 64, with_map: bool = True) -> SisStub:
    """What swapon does for frontswap: a swap_info entry, then frontswap_init."""
    sis = SisStub(pages)
    fs.swap_info[type] = sis
    fs.init(type, new_map(pages) if with_map and fs.map_wanted() else None)
    return sis
