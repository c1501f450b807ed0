"""Xen's transcendent memory (``xen/common/tmem.c``, Xen 4.1/4.2 semantics).

One client per domain (created on its first tmem hypercall) with up to 16
pools; up to 16 global shared pools joined by uuid; objects keyed by a
192-bit oid holding pages by a 32-bit index. Ephemeral pages sit on two LRU
lists (the global one and their pool owner's) and may vanish at any time;
persistent pages are never evicted and are billed to the owning domain.

Semantics kept from tmem.c (do_tmem_put, do_tmem_get, tmem_evict...): exclusive gets in
private ephemeral pools, non-destructive gets that move a page to the MRU end
in shared ones; duplicate puts that replace in place or flush the old copy
and return -ENOSPC (and still work on a frozen client); -EEMPTY from a get on
an empty pool; flushes on a frozen client that run and still return
-EFROZEN; ``tmem_ensure_avail_pages`` keeping 1 MB free before each put;
eviction from the oldest end, from the caller's own list when it is over its
weighted share, skipping the object the current operation holds and dying
pools, with a second chance for a deduplicated page that has other
references.

Where we chose (see docs/xen.md): the weighted-share test follows the
documented intent (*over* quota when a client's share of ephemeral pages
exceeds weight/total), not the inverted comparison in the code; reassigning a
shared pool moves only that pool's pages to the new owner's list; a zero page
under ``tmem_tze`` frees its frame (Xen leaks it); metadata (objects, radix
nodes, descriptors) costs no frames. The T= cycle line is not produced and
``Tc`` counts timed operations, since there is no cycle counter.
"""

from __future__ import annotations

import errno
from typing import Callable

from . import abi
from .abi import CLI_ID_NULL, EEMPTY, EFROZEN, PAGE_SIZE
from .domain import Domain
from .tmem_xen import SUBPAGE_MAXSIZE, Arena, Compressor, Heap, tze_size

MAX_POOLS_PER_DOMAIN = 16
MAX_GLOBAL_SHARED_POOLS = 16
RADIX_TREE_MAP_SHIFT = 6
PCD_TZE_MAX_SIZE = PAGE_SIZE - PAGE_SIZE // 64
#: tmem_ensure_avail_pages keeps this many frames (1 MB) available before a put
FREE_TARGET_PAGES = 1 << (20 - abi.PAGE_SHIFT)
ENSURE_AVAIL_FAILURES = 10
MAX_EVICTIONS_PER_RELINQUISH = 10
U32 = 0xFFFFFFFF
_PUT, _GET = abi.TMEM_PUT_PAGE, abi.TMEM_GET_PAGE
_FLUSH_PAGE, _FLUSH_OBJECT = abi.TMEM_FLUSH_PAGE, abi.TMEM_FLUSH_OBJECT
_NEW_PAGE = abi.TMEM_NEW_PAGE
#: the per-page commands: the hot path of do_tmem_op
PAGE_CMDS = frozenset((_PUT, _GET, _FLUSH_PAGE, _FLUSH_OBJECT, _NEW_PAGE))
#: commands only the privileged domain (dom0, the toolstack) may make; -EPERM from any other
PRIVILEGED_CMDS = frozenset((abi.TMEM_CONTROL, abi.TMEM_AUTH, abi.TMEM_RESTORE_NEW))


def copy_from_guest(frame) -> bytes | None:
    """``tmh_copy_from_client``: the guest frame's 4096 bytes, or None (a copy fault).

    A put's frame must be a whole page: no frame, no ``data``, or data that
    is not 4096 bytes is what a bad ``cmfn`` is to Xen, -EFAULT.
    """
    data = getattr(frame, "data", None)
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if len(data) == PAGE_SIZE:
            return data
    return None


_NO_FRAME = object()


def guest_frame_writable(frame) -> bool:
    """Can a get copy a page into ``frame`` (``tmh_copy_to_client``)? A frame with a
    ``data`` slot that holds nothing yet or a whole page; anything else faults."""
    cur = getattr(frame, "data", _NO_FRAME)
    if cur is None:
        return True
    return isinstance(cur, (bytes, bytearray)) and len(cur) == PAGE_SIZE


class Pcd:
    """Page content descriptor: one stored copy shared by identical ephemeral pages."""

    __slots__ = ("key", "kind", "data", "size", "refs")

    def __init__(self, key, kind: str, data, size: int):
        self.key = key
        self.kind = kind    # "page" (a whole frame), "comp" (compressed), "tze" (trailing zeros cut)
        self.data = data
        self.size = size
        self.refs = 0


class Pgp:
    """Page descriptor: ``size`` 0 = a whole frame in ``data``, else compressed bytes."""

    __slots__ = ("obj", "index", "data", "size", "pcd", "eviction_attempted")

    def __init__(self, obj: "Obj", index: int):
        self.obj = obj
        self.index = index
        self.data: bytes | None = None
        self.size = -1
        self.pcd: Pcd | None = None
        self.eviction_attempted = False


class Obj:
    """An object: pages by index, with the radix-tree node count Xen reports (Nc)."""

    __slots__ = ("oid", "pool", "pages", "last_client", "levels")

    def __init__(self, oid, pool: "Pool"):
        self.oid = oid
        self.pool = pool
        self.pages: dict[int, Pgp] = {}
        self.last_client = CLI_ID_NULL
        # levels[k] counts entries under each node at depth-from-bottom k
        self.levels: list[dict[int, int]] = []

    def add(self, index: int, pgp: Pgp) -> None:
        n = len(self.pages)
        self.pages[index] = pgp
        levels = self.levels
        added = 0
        if not levels:
            levels.append({})
        while index >> (RADIX_TREE_MAP_SHIFT * len(levels)):
            if n:
                levels.append({0: n})  # radix_tree_extend: a new root above the old one
                added += 1
            else:
                levels.append({})
        key = index
        for lv in levels:                # the node at depth-from-bottom k: index >> 6(k+1)
            key >>= RADIX_TREE_MAP_SHIFT
            c = lv.get(key)
            if c is None:
                lv[key] = 1
                added += 1
            else:
                lv[key] = c + 1
        if added:
            self.pool.node_delta(added)

    def remove(self, index: int) -> Pgp | None:
        pgp = self.pages.pop(index, None)
        if pgp is None:
            return None
        levels = self.levels
        removed = 0
        key = index
        for lv in levels:
            key >>= RADIX_TREE_MAP_SHIFT
            c = lv[key] - 1
            if c:
                lv[key] = c
            else:
                del lv[key]
                removed += 1
        if not self.pages:
            removed += sum(len(lv) for lv in levels)
            levels.clear()
        else:
            while len(levels) > 1 and len(levels[-2]) == 1 and 0 in levels[-2]:
                levels.pop()  # radix_tree_shrink: the root had only slot 0
                removed += 1
        if removed:
            self.pool.node_delta(-removed)
        return pgp

    @property
    def node_count(self) -> int:
        return sum(len(lv) for lv in self.levels)


class Pool:
    __slots__ = ("shared", "persistent", "is_dying", "client", "uuid", "pool_id", "objs",
                 "sharers", "pgp_count", "pgp_count_max", "obj_count_max",
                 "objnode_count", "objnode_count_max", "puts", "good_puts", "no_mem_puts",
                 "dup_puts_flushed", "dup_puts_replaced", "gets", "found_gets",
                 "flushs", "flushs_found", "flush_objs", "flush_objs_found", "tmem")

    def __init__(self, tmem: "Tmem", client: "Client", shared: bool, persistent: bool,
                 uuid: tuple[int, int]):
        self.tmem = tmem
        self.shared = shared
        self.persistent = persistent
        self.is_dying = False
        self.client = client
        self.uuid = uuid
        self.pool_id = -1
        self.objs: dict = {}
        self.sharers: list[Client] = []
        self.pgp_count = self.pgp_count_max = self.obj_count_max = 0
        self.objnode_count = self.objnode_count_max = 0
        self.puts = self.good_puts = self.no_mem_puts = 0
        self.dup_puts_flushed = self.dup_puts_replaced = 0
        self.gets = self.found_gets = 0
        self.flushs = self.flushs_found = self.flush_objs = self.flush_objs_found = 0

    def node_delta(self, n: int) -> None:
        self.objnode_count += n
        if self.objnode_count > self.objnode_count_max:
            self.objnode_count_max = self.objnode_count
        self.tmem.node_delta(n)

    @property
    def type_code(self) -> str:
        return ("P" if self.persistent else "E") + ("S" if self.shared else "P")

    @property
    def kind(self) -> str:
        return (f"{'persistent' if self.persistent else 'ephemeral'}-"
                f"{'shared' if self.shared else 'private'}")


class Client:
    __slots__ = ("cli_id", "domain", "pools", "eph", "eph_count", "eph_count_max", "weight",
                 "cap", "compress", "frozen", "shared_auth_required", "auth_uuids",
                 "compress_poor", "compress_nomem", "compressed_pages", "compressed_sum_size",
                 "total_cycles", "succ_pers_puts", "succ_eph_gets", "succ_pers_gets",
                 "pers_arena")

    def __init__(self, domain: Domain, compress: bool, shared_auth_required: bool):
        self.cli_id = domain.domid
        self.domain = domain
        self.pools: list[Pool | None] = [None] * MAX_POOLS_PER_DOMAIN
        self.eph: dict[Pgp, None] = {}  # this client's ephemeral LRU, oldest first
        self.eph_count = self.eph_count_max = 0
        self.weight = self.cap = 0
        self.compress = compress
        self.frozen = False
        self.shared_auth_required = shared_auth_required
        self.auth_uuids: list[tuple[int, int] | None] = [None] * MAX_GLOBAL_SHARED_POOLS
        self.compress_poor = self.compress_nomem = self.compressed_pages = 0
        self.compressed_sum_size = 0
        self.total_cycles = 0
        self.succ_pers_puts = self.succ_eph_gets = self.succ_pers_gets = 0
        self.pers_arena: Arena | None = None


class Tmem:
    """The hypervisor's tmem: every client, pool and page, and the frames they hold."""

    def __init__(self, heap: Heap, log: Callable[[str], None], *, enabled: bool = False,
                 compress: bool = False, dedup: bool = False, tze: bool = False,
                 shared_auth: bool = False, lock: int = 0):
        self.heap = heap
        self.log = log
        self.enabled = enabled
        self.compression = compress
        self.dedup = dedup
        self.tze = tze
        self.shared_auth = shared_auth
        self.lock = lock
        self.initialized = False
        self.compressor: Compressor | None = Compressor() if (compress or dedup) else None
        self.clients: dict[int, Client] = {}
        self.global_eph: dict[Pgp, None] = {}
        self.shared_pools: list[Pool | None] = [None] * MAX_GLOBAL_SHARED_POOLS
        self.global_shared_auth = False
        self.weight_total = 0
        self.pcds: dict = {}
        self.pinned: Obj | None = None
        #: during a domain's put, its fail_hypervisor point (``Domain.fail_hypervisor``):
        #: consulted by every frame and sub-page allocation the put makes
        self.alloc_fault: Callable[[int], bool] | None = None
        # frames: tmem's free list ("avail") and the ephemeral frames it holds
        self.freelist = 0
        self.eph_frames = 0
        self.eph_arena = Arena(self._eph_get_frame, self._eph_put_frame)
        # statistics (names as in tmem.c)
        self.total_tmem_ops = self.errored_tmem_ops = self.failed_copies = 0
        self.alloc_failed = self.alloc_page_failed = self.low_on_memory = 0
        self.evicted_pgs = self.evict_attempts = 0
        self.relinq_pgs = self.relinq_attempts = self.max_evicts_per_relinq = 0
        self.total_flush_pool = self.deduped_puts = self.tot_good_eph_puts = 0
        self.global_eph_count = self.global_eph_count_max = 0
        self.global_obj_count = self.global_obj_count_max = 0
        self.global_pgp_count = self.global_pgp_count_max = 0
        self.global_page_count = self.global_page_count_max = 0
        self.global_pcd_count = self.global_pcd_count_max = 0
        self.global_node_count = self.global_node_count_max = 0
        self.pcd_tot_tze_size = self.pcd_tot_csize = 0

    # -- init ------------------------------------------------------------------

    def init(self) -> None:
        """``init_tmem``: a hypervisor booted without ``tmem`` never initializes it."""
        if not self.enabled:
            return
        self.log(f"tmem: initialized comp={int(self.compression)} dedup={int(self.dedup)} "
                 f"tze={int(self.tze)} global-lock={self.lock}")
        if self.dedup and self.compression and self.tze:
            self.tze = False
            self.log("tmem: tze and compression not compatible, disabling tze")
        self.initialized = True

    # -- frames ----------------------------------------------------------------

    def node_delta(self, n: int) -> None:
        self.global_node_count += n
        if self.global_node_count > self.global_node_count_max:
            self.global_node_count_max = self.global_node_count

    def _take_frame(self) -> bool:
        """A frame for tmem: its free list, else the heap, else relinquish (evicting)."""
        if self.freelist:
            self.freelist -= 1
            return True
        heap = self.heap
        if heap.free_pages:
            heap.free_pages -= 1
            return True
        return self._relinquish_one()

    def _eph_get_frame(self) -> bool:
        if self._take_frame():
            self.eph_frames += 1
            return True
        return False

    def _eph_put_frame(self) -> None:
        self.eph_frames -= 1
        self.freelist += 1

    def _pers_get_frame(self, domain: Domain) -> bool:
        if domain.tot_pages >= domain.max_pages:
            return False
        if self._take_frame():
            domain.tot_pages += 1
            domain.tmem_pages += 1
            return True
        return False

    def _pers_put_frame(self, domain: Domain) -> None:
        domain.tot_pages -= 1
        domain.tmem_pages -= 1
        self.freelist += 1

    def _page_alloc(self, pool: Pool) -> bool:
        fail = self.alloc_fault
        if fail is not None and fail(1):
            self.alloc_page_failed += 1   # fail_hypervisor: the heap said no
            return False
        if pool.persistent:
            ok = self._pers_get_frame(pool.client.domain)
        elif self.freelist:            # _eph_get_frame's first two sources, inline
            self.freelist -= 1
            self.eph_frames += 1
            ok = True
        elif self.heap.free_pages:
            self.heap.free_pages -= 1
            self.eph_frames += 1
            ok = True
        else:
            ok = self._eph_get_frame()
        if not ok:
            self.alloc_page_failed += 1
            return False
        self.global_page_count += 1
        if self.global_page_count > self.global_page_count_max:
            self.global_page_count_max = self.global_page_count
        return True

    def _page_free(self, pool: Pool) -> None:
        if pool.persistent:
            self._pers_put_frame(pool.client.domain)
        else:
            self._eph_put_frame()
        self.global_page_count -= 1

    def _arena(self, pool: Pool) -> Arena:
        if not pool.persistent:
            return self.eph_arena
        client = pool.client
        if client.pers_arena is None:
            dom = client.domain
            client.pers_arena = Arena(lambda: self._pers_get_frame(dom),
                                      lambda: self._pers_put_frame(dom))
        return client.pers_arena

    def _subpage_alloc(self, pool: Pool, size: int) -> bool:
        fail = self.alloc_fault
        if fail is not None and fail(1):
            self.alloc_failed += 1        # fail_hypervisor: tmem_malloc said no
            return False
        if self._arena(pool).alloc(size):
            return True
        self.alloc_failed += 1
        return False

    @property
    def freeable_pages(self) -> int:
        """``tmh_freeable_pages``: the free list plus every ephemeral frame."""
        return self.freelist + self.eph_frames

    def _relinquish_one(self) -> bool:
        """``tmem_relinquish_pages`` for one frame: from the free list, evicting up to 10 times."""
        if not self.initialized or not self.freeable_pages:
            return False
        self.relinq_attempts += 1
        evicts = 0
        budget = MAX_EVICTIONS_PER_RELINQUISH
        got = False
        while True:
            if self.freelist:
                self.freelist -= 1
                got = True
                break
            if budget <= 0 or not self._evict(None):
                break
            budget -= 1
            evicts += 1
        if evicts > self.max_evicts_per_relinq:
            self.max_evicts_per_relinq = evicts
        if got:
            self.relinq_pgs += 1
        return got

    def relinquish(self, n: int) -> int:
        """Frames for a non-tmem allocation the heap could not satisfy; returns how many."""
        got = 0
        while got < n and self._relinquish_one():
            got += 1
        return got

    def relinquish_npages(self, n: int) -> int:
        """``tmem_relinquish_npages``: evict until n frames are free, give them all to the heap."""
        while self.freelist < n:
            if not self._evict(None):
                break
        avail = self.freelist
        if avail:
            self.heap.free_pages += avail
            self.freelist = 0
        return avail

    def _ensure_avail_pages(self, client: Client) -> None:
        failures = ENSURE_AVAIL_FAILURES
        heap = self.heap
        while self.freelist + heap.free_pages < FREE_TARGET_PAGES:
            if self._evict(client):
                continue
            if failures <= 0:
                break
            failures -= 1

    # -- eviction --------------------------------------------------------------

    def _over_quota(self, client: Client) -> bool:
        """Is the client's share of ephemeral pages above weight/total? (documented intent)"""
        total = self.weight_total
        if total == 0 or client.weight == 0 or client.eph_count == 0:
            return False
        return client.eph_count * total > self.global_eph_count * client.weight

    def _evict(self, client: Client | None) -> bool:
        self.evict_attempts += 1
        if client is not None and client.eph and self._over_quota(client):
            lst = client.eph
        elif not self.global_eph:
            return False
        else:
            lst = self.global_eph
        victim = None
        second_chance = []
        pinned = self.pinned
        for pgp in lst:
            obj = pgp.obj
            if obj.pool.is_dying or obj is pinned:
                continue
            pcd = pgp.pcd
            if pcd is not None and pcd.refs > 1 and not pgp.eviction_attempted:
                second_chance.append(pgp)
                continue
            victim = pgp
            break
        for pgp in second_chance:
            pgp.eviction_attempted = True
            self._to_mru(pgp)
        if victim is None:
            return False
        obj = victim.obj
        obj.remove(victim.index)
        self._pgp_delete(victim)
        if not obj.pages:
            self._obj_free(obj)
        self.evicted_pgs += 1
        return True

    def _to_mru(self, pgp: Pgp) -> None:
        g = self.global_eph
        del g[pgp]
        g[pgp] = None
        c = pgp.obj.pool.client.eph
        if pgp in c:
            del c[pgp]
            c[pgp] = None

    # -- descriptors -------------------------------------------------------------

    def _free_data(self, pgp: Pgp, pool: Pool) -> None:
        size = pgp.size
        if pgp.pcd is not None:
            self._pcd_disassociate(pgp, pool)
        elif pgp.data is None:
            return
        elif size:
            self._arena(pool).free(size)
        else:
            self._page_free(pool)
        if size > 0:
            owner = pool.client
            owner.compressed_pages -= 1
            owner.compressed_sum_size -= size
        pgp.data = None
        pgp.size = -1

    def _delist(self, pgp: Pgp) -> None:
        pool = pgp.obj.pool
        if pool.persistent:
            return
        client = pool.client
        if client.eph.pop(pgp, 0) is None:
            client.eph_count -= 1
        if self.global_eph.pop(pgp, 0) is None:
            self.global_eph_count -= 1

    def _pgp_delete(self, pgp: Pgp) -> None:
        """Off the lists, data freed, descriptor gone (``pgp_delete``)."""
        pool = pgp.obj.pool
        if pool.persistent:
            self._free_data(pgp, pool)
        else:
            client = pool.client         # _delist, inline
            if client.eph.pop(pgp, 0) is None:
                client.eph_count -= 1
            if self.global_eph.pop(pgp, 0) is None:
                self.global_eph_count -= 1
            if pgp.size == 0 and pgp.pcd is None and pgp.data is not None:
                pgp.data = None          # _free_data of a whole frame, inline
                pgp.size = -1
                self.eph_frames -= 1
                self.freelist += 1
                self.global_page_count -= 1
            else:
                self._free_data(pgp, pool)
        self.global_pgp_count -= 1
        pool.pgp_count -= 1

    def _obj_new(self, pool: Pool, oid) -> Obj:
        obj = Obj(oid, pool)
        pool.objs[oid] = obj
        if len(pool.objs) > pool.obj_count_max:
            pool.obj_count_max = len(pool.objs)
        self.global_obj_count += 1
        if self.global_obj_count > self.global_obj_count_max:
            self.global_obj_count_max = self.global_obj_count
        return obj

    def _obj_free(self, obj: Obj) -> None:
        pool = obj.pool
        if obj.levels:
            pool.node_delta(-obj.node_count)
            obj.levels.clear()
        del pool.objs[obj.oid]
        self.global_obj_count -= 1

    def _obj_destroy(self, obj: Obj) -> None:
        for index in list(obj.pages):
            pgp = obj.remove(index)
            assert pgp is not None
            self._pgp_delete(pgp)
        self._obj_free(obj)

    # -- dedup -----------------------------------------------------------------

    def _pcd_associate(self, pgp: Pgp, pool: Pool, data: bytes, cdata: bytes | None) -> int:
        if cdata is not None:
            key: tuple = ("comp", cdata)
        elif self.tze:
            n = tze_size(data)
            if n > PCD_TZE_MAX_SIZE:
                n = PAGE_SIZE
            key = ("tze", data[:n]) if n < PAGE_SIZE else ("page", data)
        else:
            key = ("page", data)
        pcd = self.pcds.get(key)
        if pcd is not None:
            if cdata is None:
                self._page_free(pool)  # the frame just filled is not needed
            self.deduped_puts += 1
        else:
            kind, content = key
            if kind == "comp":
                if not self._subpage_alloc(pool, len(content)):
                    return -errno.ENOMEM
                pcd = Pcd(key, kind, content, len(content))
                self.pcd_tot_csize += len(content)
            elif kind == "tze":
                if content and not self._subpage_alloc(pool, len(content)):
                    return -errno.ENOMEM
                self._page_free(pool)
                pcd = Pcd(key, kind, content, len(content))
                self.pcd_tot_tze_size += len(content)
            else:
                pcd = Pcd(key, kind, content, PAGE_SIZE)
                if self.tze:
                    self.pcd_tot_tze_size += PAGE_SIZE
                if self.compression:
                    self.pcd_tot_csize += PAGE_SIZE
            self.pcds[key] = pcd
            self.global_pcd_count += 1
            if self.global_pcd_count > self.global_pcd_count_max:
                self.global_pcd_count_max = self.global_pcd_count
        pcd.refs += 1
        pgp.pcd = pcd
        pgp.data = b""
        pgp.eviction_attempted = False
        return 0

    def _pcd_disassociate(self, pgp: Pgp, pool: Pool) -> None:
        pcd = pgp.pcd
        assert pcd is not None
        pgp.pcd = None
        pcd.refs -= 1
        if pcd.refs:
            return
        del self.pcds[pcd.key]
        self.global_pcd_count -= 1
        if pcd.kind == "comp":
            self._arena(pool).free(pcd.size)
            self.pcd_tot_csize -= pcd.size
        elif pcd.kind == "tze":
            if pcd.size:
                self._arena(pool).free(pcd.size)
            self.pcd_tot_tze_size -= pcd.size
        else:
            if self.tze:
                self.pcd_tot_tze_size -= PAGE_SIZE
            if self.compression:
                self.pcd_tot_csize -= PAGE_SIZE
            self._page_free(pool)

    @staticmethod
    def _pcd_content(pcd: Pcd, decompress: Callable[[bytes], bytes]) -> bytes:
        if pcd.kind == "comp":
            return decompress(pcd.data)
        if pcd.kind == "tze":
            return pcd.data + bytes(PAGE_SIZE - pcd.size)
        return pcd.data

    # -- data paths --------------------------------------------------------------

    def _put_compress(self, pgp: Pgp, pool: Pool, data: bytes) -> int:
        assert self.compressor is not None
        cdata = self.compressor.compress(data)
        size = len(cdata)
        if size == 0 or size >= SUBPAGE_MAXSIZE:
            return 0
        if self.dedup and not pool.persistent:
            if self._pcd_associate(pgp, pool, data, cdata) < 0:
                return -errno.ENOMEM
        elif not self._subpage_alloc(pool, size):
            return -errno.ENOMEM
        else:
            pgp.data = cdata
        pgp.size = size
        owner = pool.client
        owner.compressed_pages += 1
        owner.compressed_sum_size += size
        return 1

    def _copy_uncompressed(self, pgp: Pgp, pool: Pool, data: bytes) -> bool:
        if not self._page_alloc(pool):
            return False
        pgp.data = data
        pgp.size = 0
        if self.dedup and not pool.persistent:
            if self._pcd_associate(pgp, pool, data, None) < 0:
                self._page_free(pool)
                pgp.data = None
                pgp.size = -1
                return False
        return True

    def put(self, pool: Pool, oid, index: int, data: bytes | None) -> int:
        """``do_tmem_put``: 1 stored, -ENOMEM, -EFROZEN, or a duplicate put's -ENOSPC.

        ``data`` None is a guest frame that cannot be copied from: -EFAULT,
        counted in ``failed_copies`` (Cf) and ``no_mem_puts`` (px) as tmem.c's
        ``bad_copy`` path does, after the duplicate and frozen checks.
        """
        client = pool.client
        pool.puts += 1
        obj = pool.objs.get(oid)
        if obj is not None:
            pgp = obj.pages.get(index)
            if pgp is not None:
                return self._dup_put(pool, obj, pgp, data)
        if client.frozen:
            pool.no_mem_puts += 1
            return -EFROZEN
        if data is None:
            self.failed_copies += 1
            pool.no_mem_puts += 1
            return -errno.EFAULT
        new_obj = obj is None
        if obj is None:
            obj = self._obj_new(pool, oid)
        self.pinned = obj
        pgp = Pgp(obj, index)            # tmem.c's pgp_alloc, inline: the put is the hot path
        self.global_pgp_count += 1
        if self.global_pgp_count > self.global_pgp_count_max:
            self.global_pgp_count_max = self.global_pgp_count
        pool.pgp_count += 1
        if pool.pgp_count > pool.pgp_count_max:
            pool.pgp_count_max = pool.pgp_count
        obj.add(index, pgp)
        stored = False
        if client.compress and self.compressor is not None:
            rc = self._put_compress(pgp, pool, data)
            if rc == 1:
                stored = True
            elif rc < 0:
                client.compress_nomem += 1
            else:
                client.compress_poor += 1
                stored = self._copy_uncompressed(pgp, pool, data)
        elif pool.persistent or not self.dedup:
            stored = self._page_alloc(pool)   # _copy_uncompressed without dedup, inline
            if stored:
                pgp.data = data
                pgp.size = 0
        else:
            stored = self._copy_uncompressed(pgp, pool, data)
        self.pinned = None
        if not stored:
            obj.remove(index)
            self._pgp_delete(pgp)
            if new_obj and not obj.pages:
                self._obj_free(obj)
            pool.no_mem_puts += 1
            return -errno.ENOMEM
        if pool.persistent:
            client.succ_pers_puts += 1
        else:
            self.global_eph[pgp] = None
            self.global_eph_count += 1
            if self.global_eph_count > self.global_eph_count_max:
                self.global_eph_count_max = self.global_eph_count
            client.eph[pgp] = None
            client.eph_count += 1
            if client.eph_count > client.eph_count_max:
                client.eph_count_max = client.eph_count
            self.tot_good_eph_puts += 1
        pool.good_puts += 1
        return 1

    def _dup_put(self, pool: Pool, obj: Obj, pgp: Pgp, data: bytes | None) -> int:
        client = pool.client
        if data is None:
            # bad_copy in do_tmem_dup_put: the old copy is flushed, never left readable
            obj.remove(pgp.index)
            self._pgp_delete(pgp)
            if not obj.pages:
                self._obj_free(obj)
            self.failed_copies += 1
            pool.dup_puts_flushed += 1
            return -errno.EFAULT
        self.pinned = obj
        done = False
        failed = False
        if client.compress and self.compressor is not None and pgp.size > 0:
            self._free_data(pgp, pool)
            rc = self._put_compress(pgp, pool, data)
            if rc == 1:
                done = True
            elif rc < 0:
                failed = True
        if not done and not failed:
            self._free_data(pgp, pool)
            failed = not self._copy_uncompressed(pgp, pool, data)
        self.pinned = None
        if failed:
            obj.remove(pgp.index)
            self._pgp_delete(pgp)
            if not obj.pages:
                self._obj_free(obj)
            pool.dup_puts_flushed += 1
            return -errno.ENOSPC
        pool.dup_puts_replaced += 1
        pool.good_puts += 1
        if pool.persistent:
            client.succ_pers_puts += 1
        return 1

    def get(self, caller: Client, pool: Pool, oid, index: int, frame) -> int:
        """``do_tmem_get``: 1 and ``frame.data`` filled, 0 a miss, -EEMPTY an empty pool."""
        if not pool.pgp_count:
            return -EEMPTY
        pool.gets += 1
        obj = pool.objs.get(oid)
        if obj is None:
            return 0
        private_eph = not (pool.shared or pool.persistent)
        pgp = obj.pages.get(index)
        if pgp is None:
            return 0
        try:
            cur = frame.data
        except AttributeError:
            cur = _NO_FRAME
        if cur is not None and (cur.__class__ is not bytes or len(cur) != PAGE_SIZE) \
                and not guest_frame_writable(frame):
            # bad_copy in do_tmem_get; the page stays (docs/linux-differences.md: in Xen it is lost)
            self.failed_copies += 1
            return -errno.EFAULT
        if private_eph:
            obj.remove(index)
        if pgp.pcd is not None:
            assert self.compressor is not None
            frame.data = self._pcd_content(pgp.pcd, self.compressor.decompress)
        elif pgp.size:
            assert self.compressor is not None
            frame.data = self.compressor.decompress(pgp.data)  # type: ignore[arg-type]
        else:
            frame.data = pgp.data
        owner = pool.client
        if pool.persistent:
            owner.succ_pers_gets += 1
        else:
            if private_eph:
                self._pgp_delete(pgp)
                if not obj.pages:
                    self._obj_free(obj)
            else:
                self._to_mru(pgp)
                obj.last_client = caller.cli_id
            owner.succ_eph_gets += 1
        pool.found_gets += 1
        return 1

    def flush_page(self, pool: Pool, oid, index: int) -> int:
        pool.flushs += 1
        obj = pool.objs.get(oid)
        if obj is not None:
            pgp = obj.remove(index)
            if pgp is not None:
                self._pgp_delete(pgp)
                if not obj.pages:
                    self._obj_free(obj)
                pool.flushs_found += 1
        return -EFROZEN if pool.client.frozen else 1

    def flush_object(self, pool: Pool, oid) -> int:
        pool.flush_objs += 1
        obj = pool.objs.get(oid)
        if obj is not None:
            self._obj_destroy(obj)
            pool.flush_objs_found += 1
        return -EFROZEN if pool.client.frozen else 1

    # -- pools -------------------------------------------------------------------

    def new_pool(self, client: Client, flags: int, uuid_lo: int, uuid_hi: int) -> int:
        """``do_tmem_new_pool`` for the calling client: the pool id, or -EPERM."""
        persistent = bool(flags & abi.TMEM_POOL_PERSIST)
        shared = bool(flags & abi.TMEM_POOL_SHARED)
        pagebits = (flags >> abi.TMEM_POOL_PAGESIZE_SHIFT) & abi.TMEM_POOL_PAGESIZE_MASK
        version = (flags >> abi.TMEM_POOL_VERSION_SHIFT) & abi.TMEM_POOL_VERSION_MASK
        head = (f"tmem: allocating {'persistent' if persistent else 'ephemeral'}-"
                f"{'shared' if shared else 'private'} tmem pool for domid={client.cli_id}...")
        if version != abi.TMEM_SPEC_VERSION:
            self.log(head + "failed... unsupported spec version")
            return -errno.EPERM
        if pagebits != abi.PAGE_SHIFT - 12:
            self.log(head + f"failed... unsupported pagesize {1 << (pagebits + 12)}")
            return -errno.EPERM
        try:
            d_poolid = client.pools.index(None)
        except ValueError:
            self.log(head + "failed... no more pool slots available for this domain")
            return -errno.EPERM
        if shared:
            if uuid_lo == 0xFFFFFFFFFFFFFFFF and uuid_hi == 0xFFFFFFFFFFFFFFFF:
                shared = False
            if client.shared_auth_required and not self.global_shared_auth:
                if (uuid_lo, uuid_hi) not in client.auth_uuids:
                    shared = False
        if shared:
            first_unused = None
            for s_poolid, shpool in enumerate(self.shared_pools):
                if shpool is not None:
                    if shpool.uuid == (uuid_lo, uuid_hi):
                        client.pools[d_poolid] = shpool
                        self.log(head + f"(matches shared pool uuid={uuid_hi:x}.{uuid_lo:x}) "
                                 f"pool_id={d_poolid}")
                        self._shared_pool_join(shpool, client)
                        return d_poolid
                elif first_unused is None:
                    first_unused = s_poolid
            if first_unused is None:
                self.log(head + "tmem: failed... no global shared pool slots available")
                return -errno.EPERM
            pool = Pool(self, client, True, persistent, (uuid_lo, uuid_hi))
            self.shared_pools[first_unused] = pool
            pool.sharers.append(client)
        else:
            pool = Pool(self, client, False, persistent, (uuid_lo, uuid_hi))
        client.pools[d_poolid] = pool
        pool.pool_id = d_poolid
        self.log(head + f"pool_id={d_poolid}")
        return d_poolid

    def _shared_pool_join(self, pool: Pool, client: Client) -> None:
        pool.sharers.append(client)
        if client.cli_id != pool.client.cli_id:
            self.log(f"adding new domain {client.cli_id} to shared pool owned by domain "
                     f"{pool.client.cli_id}")

    def destroy_pool(self, client: Client, pool_id: int) -> int:
        if not 0 <= pool_id < MAX_POOLS_PER_DOMAIN or client.pools[pool_id] is None:
            return 0
        pool = client.pools[pool_id]
        assert pool is not None
        client.pools[pool_id] = None
        self._pool_flush(pool, client.cli_id, destroy=True)
        return 1

    def _pool_destroy_objs(self, pool: Pool, cli_id: int | None) -> None:
        pool.is_dying = True
        for obj in list(pool.objs.values()):
            if cli_id is None or obj.last_client == cli_id:
                self._obj_destroy(obj)

    def _shared_pool_quit(self, pool: Pool, cli_id: int) -> int:
        self._pool_destroy_objs(pool, cli_id)
        for i, sharer in enumerate(pool.sharers):
            if sharer.cli_id != cli_id:
                continue
            del pool.sharers[i]
            if pool.client.cli_id == cli_id:
                self._shared_pool_reassign(pool)
            if pool.sharers:
                return len(pool.sharers)
            for s in range(MAX_GLOBAL_SHARED_POOLS):
                if self.shared_pools[s] is pool:
                    self.shared_pools[s] = None
                    break
            return 0
        self.log(f"tmem: no match unsharing pool, domid={pool.client.cli_id}")
        return -1

    def _shared_pool_reassign(self, pool: Pool) -> None:
        if not pool.sharers:
            return
        old = pool.client
        if old.pools[pool.pool_id] is pool:
            old.pools[pool.pool_id] = None
        new = pool.sharers[0]
        pool.client = new
        poolid = new.pools.index(pool)
        moved = [p for p in old.eph if p.obj.pool is pool]
        for p in moved:
            del old.eph[p]
            new.eph[p] = None
        old.eph_count -= len(moved)
        new.eph_count += len(moved)
        if new.eph_count > new.eph_count_max:
            new.eph_count_max = new.eph_count
        self.log(f"reassigned shared pool from domid={old.cli_id} to domid={new.cli_id} "
                 f"pool_id={poolid}")
        pool.pool_id = poolid

    def _pool_flush(self, pool: Pool, cli_id: int, destroy: bool) -> None:
        if pool.shared and self._shared_pool_quit(pool, cli_id) > 0:
            self.log(f"tmem: domid={cli_id} no longer using shared pool {pool.pool_id} "
                     f"owned by domid={pool.client.cli_id}")
            return
        self.log(f"{'destroying' if destroy else 'flushing'} {pool.kind} tmem pool "
                 f"domid={pool.client.cli_id} pool_id={pool.pool_id}")
        self._pool_destroy_objs(pool, None)
        if destroy and pool.client.pools[pool.pool_id] is pool:
            pool.client.pools[pool.pool_id] = None

    # -- clients -----------------------------------------------------------------

    def client_create(self, domain: Domain) -> Client:
        client = Client(domain, self.compression, self.shared_auth)
        self.clients[domain.domid] = client
        domain.tmem = client
        self.log(f"tmem: initializing tmem capability for domid={domain.domid}...ok")
        return client

    def destroy_client(self, domain: Domain) -> None:
        """``tmem_destroy``: a dying domain's pools flushed and destroyed."""
        client = domain.tmem
        if client is None:
            return
        self.log(f"tmem: flushing tmem pools for domid={client.cli_id}")
        for i in range(MAX_POOLS_PER_DOMAIN):
            pool = client.pools[i]
            if pool is None:
                continue
            self._pool_flush(pool, client.cli_id, destroy=True)
            client.pools[i] = None
        self.weight_total -= client.weight
        del self.clients[client.cli_id]
        domain.tmem = None

    # -- control (TMEM_CONTROL) --------------------------------------------------

    def _client_by_id(self, cli_id: int) -> Client | None:
        return self.clients.get(cli_id)

    def freeze(self, cli_id: int, subop: int) -> int:
        freeze = subop == abi.TMEMC_FREEZE
        word = ("destroyed" if subop == abi.TMEMC_DESTROY else
                "frozen" if freeze else "thawed")
        if cli_id == CLI_ID_NULL:
            for c in self.clients.values():
                c.frozen = freeze
            self.log(f"tmem: all pools {word} for all domains")
            return 0
        client = self._client_by_id(cli_id)
        if client is None:
            return -1
        client.frozen = freeze
        self.log(f"tmem: all pools {word} for domid={cli_id}")
        return 0

    def flush_kb(self, cli_id: int, kb: int) -> int:
        if cli_id != CLI_ID_NULL:
            self.log("tmem: domain-specific flush not supported yet, use --all")
            return -1
        npages = (kb + (1 << (abi.PAGE_SHIFT - 10)) - 1) >> (abi.PAGE_SHIFT - 10)
        return self.relinquish_npages(npages) << (abi.PAGE_SHIFT - 10)

    def set_var(self, cli_id: int, subop: int, arg1: int) -> int:
        if cli_id == CLI_ID_NULL:
            for c in list(self.clients.values()):
                self._set_var_one(c, subop, arg1)
            return 0
        client = self._client_by_id(cli_id)
        if client is None:
            return -1
        self._set_var_one(client, subop, arg1)
        return 0

    def _set_var_one(self, client: Client, subop: int, arg1: int) -> int:
        if subop == abi.TMEMC_SET_WEIGHT:
            self.weight_total += arg1 - client.weight
            client.weight = arg1
            self.log(f"tmem: weight set to {arg1} for domid={client.cli_id}")
        elif subop == abi.TMEMC_SET_CAP:
            client.cap = arg1
            self.log(f"tmem: cap set to {arg1} for domid={client.cli_id}")
        elif subop == abi.TMEMC_SET_COMPRESS:
            if self.dedup:
                self.log(f"tmem: compression {'enabled' if self.compression else 'disabled'} "
                         "for all domains, cannot be changed when tmem_dedup is enabled")
                return -1
            client.compress = bool(arg1)
            if client.compress and self.compressor is None:
                self.compressor = Compressor()
            self.log(f"tmem: compression {'enabled' if arg1 else 'disabled'} "
                     f"for domid={client.cli_id}")
        else:
            self.log(f"tmem: unknown subop {subop} for tmemc_set_var")
            return -1
        return 0

    def shared_auth_op(self, cli_id: int, uuid_lo: int, uuid_hi: int, auth: int) -> int:
        """``tmemc_shared_pool_auth`` (TMEM_AUTH)."""
        if cli_id == CLI_ID_NULL:
            self.global_shared_auth = bool(auth)
            return 1
        client = self._client_by_id(cli_id)
        if client is None:
            return -errno.EINVAL
        free = -1
        for i, u in enumerate(client.auth_uuids):
            if u == (uuid_lo, uuid_hi):
                if auth == 0:
                    client.auth_uuids[i] = None
                return 1
            if auth == 1 and u is None and free == -1:
                free = i
        if auth == 0:
            return 0
        if free == -1:
            return -errno.ENOMEM
        client.auth_uuids[free] = (uuid_lo, uuid_hi)
        return 1

    @property
    def freeable_mb(self) -> int:
        return self.freeable_pages >> (20 - abi.PAGE_SHIFT)

    # -- TMEMC_LIST --------------------------------------------------------------

    @staticmethod
    def _pool_long(p: Pool) -> str:
        return (f"Pc:{p.pgp_count},Pm:{p.pgp_count_max},Oc:{len(p.objs)},Om:{p.obj_count_max},"
                f"Nc:{p.objnode_count},Nm:{p.objnode_count_max},"
                f"ps:{p.good_puts},pt:{p.puts},pd:{p.dup_puts_flushed},pr:{p.dup_puts_replaced},"
                f"px:{p.no_mem_puts},gs:{p.found_gets},gt:{p.gets},"
                f"fs:{p.flushs_found},ft:{p.flushs},os:{p.flush_objs_found},ot:{p.flush_objs}\n")

    def _list_client(self, c: Client, use_long: bool) -> str:
        out = [f"C=CI:{c.cli_id},ww:{c.weight},ca:{c.cap},co:{int(c.compress)},"
               f"fr:{int(c.frozen)},Tc:{c.total_cycles},Ge:{c.succ_eph_gets},"
               f"Pp:{c.succ_pers_puts},Gp:{c.succ_pers_gets}" + ("," if use_long else "\n")]
        if use_long:
            out.append(f"Ec:{c.eph_count},Em:{c.eph_count_max},cp:{c.compressed_pages},"
                       f"cb:{c.compressed_sum_size},cn:{c.compress_poor},cm:{c.compress_nomem}\n")
        for p in c.pools:
            if p is None:
                continue
            u0, u1 = p.uuid if p.shared else (0, 0)
            out.append(f"P=CI:{c.cli_id},PI:{p.pool_id},PT:{p.type_code},U0:{u0:x},U1:{u1:x}"
                       + ("," if use_long else "\n"))
            if use_long:
                out.append(self._pool_long(p))
        return "".join(out)

    def _list_shared(self, use_long: bool) -> str:
        out = []
        for i, p in enumerate(self.shared_pools):
            if p is None:
                continue
            line = f"S=SI:{i},PT:{p.type_code},U0:{p.uuid[0]:x},U1:{p.uuid[1]:x}"
            line += "".join(f",SC:{s.cli_id}" for s in p.sharers)
            out.append(line + ("," if use_long else "\n"))
            if use_long:
                out.append(self._pool_long(p))
        return "".join(out)

    def _list_global(self, use_long: bool) -> str:
        s = (f"G=Tt:{self.total_tmem_ops},Te:{self.errored_tmem_ops},Cf:{self.failed_copies},"
             f"Af:{self.alloc_failed},Pf:{self.alloc_page_failed},Ta:{self.freelist},"
             f"Lm:{self.low_on_memory},Et:{self.evicted_pgs},Ea:{self.evict_attempts},"
             f"Rt:{self.relinq_pgs},Ra:{self.relinq_attempts},Rx:{self.max_evicts_per_relinq},"
             f"Fp:{self.total_flush_pool}" + ("," if use_long else "\n"))
        if use_long:
            s += (f"Ec:{self.global_eph_count},Em:{self.global_eph_count_max},"
                  f"Oc:{self.global_obj_count},Om:{self.global_obj_count_max},"
                  f"Nc:{self.global_node_count},Nm:{self.global_node_count_max},"
                  f"Pc:{self.global_pgp_count},Pm:{self.global_pgp_count_max},"
                  f"Fc:{self.global_page_count},Fm:{self.global_page_count_max},"
                  f"Sc:{self.global_pcd_count},Sm:{self.global_pcd_count_max},"
                  f"Ep:{self.tot_good_eph_puts},Gd:{self.deduped_puts},"
                  f"Zt:{self.pcd_tot_tze_size},Gz:{self.pcd_tot_csize}\n")
        return s

    def list(self, cli_id: int, use_long: bool) -> str | int:
        """``tmemc_list``: the two-letter statistics, or -1 for an unknown client."""
        if cli_id == CLI_ID_NULL:
            return (self._list_global(use_long) + self._list_shared(use_long)
                    + "".join(self._list_client(c, use_long) for c in self.clients.values()))
        client = self._client_by_id(cli_id)
        if client is None:
            return -1
        return self._list_client(client, use_long)

    # -- the hypercall (do_tmem_op) ---------------------------------------------

    def do_tmem_op(self, domain: Domain, op: abi.TmemOp) -> int:
        """``do_tmem_op``: the whole ABI, one ``struct tmem_op`` per call.

        The per-page commands are the hot path, handled here with the
        struct's fields read once; ``op.gmfn`` is the guest's frame: its
        ``data`` is read by a put and written by a get, the way Xen copies
        from and to the guest frame.
        """
        try:
            cmd = op.cmd
        except AttributeError:
            # tmem_get_tmemop_from_client failed: "can't get tmem struct"
            if not self.initialized:
                return -errno.ENODEV
            self.total_tmem_ops += 1
            self.errored_tmem_ops += 1
            return -errno.EFAULT
        if not self.initialized:
            return -errno.ENODEV
        self.total_tmem_ops += 1
        if cmd not in PAGE_CMDS:
            rc = self._do_other(domain, op)
            if rc < 0:
                self.errored_tmem_ops += 1
            return rc
        client = domain.tmem
        if domain.is_dying:
            self.errored_tmem_ops += 1
            return -errno.ENODEV
        if client is None:
            client = self.client_create(domain)
        pool_id = op.pool_id
        pool = client.pools[pool_id] if 0 <= pool_id < MAX_POOLS_PER_DOMAIN else None
        if pool is None:
            self.log("tmem: operation requested on uncreated pool")
            self.errored_tmem_ops += 1
            return -errno.ENODEV
        index = op.index & U32   # u.gen.index is a uint32_t in struct tmem_op
        if cmd == _PUT:
            if self.freelist + self.heap.free_pages < FREE_TARGET_PAGES:
                self._ensure_avail_pages(client)
            frame = op.gmfn
            try:
                data = frame.data
            except AttributeError:
                data = None
            if data.__class__ is not bytes or len(data) != PAGE_SIZE:
                data = copy_from_guest(frame)
            fail = domain.fail_hypervisor
            if fail is None:
                rc = self.put(pool, op.oid, index, data)
            else:
                self.alloc_fault = fail
                rc = self.put(pool, op.oid, index, data)
                self.alloc_fault = None
        elif cmd == _GET:
            rc = self.get(client, pool, op.oid, index, op.gmfn)
        elif cmd == _FLUSH_PAGE:
            rc = self.flush_page(pool, op.oid, index)
        elif cmd == _FLUSH_OBJECT:
            rc = self.flush_object(pool, op.oid)
        else:  # TMEM_NEW_PAGE
            if self.freelist + self.heap.free_pages < FREE_TARGET_PAGES:
                self._ensure_avail_pages(client)
            self.alloc_fault = domain.fail_hypervisor
            rc = self.put(pool, op.oid, index, bytes(PAGE_SIZE))
            self.alloc_fault = None
        client.total_cycles += 1
        if rc < 0:
            self.errored_tmem_ops += 1
        return rc

    def _do_other(self, domain: Domain, op: abi.TmemOp) -> int:
        client = domain.tmem
        if domain.is_dying:
            return -errno.ENODEV
        cmd = op.cmd
        if cmd in PRIVILEGED_CMDS and not domain.is_privileged:
            # the toolstack's commands: dom0 only (tmh_current_is_privileged, XSA-15)
            return -errno.EPERM
        if cmd == abi.TMEM_CONTROL:
            return self._control(op)
        if cmd == abi.TMEM_AUTH:
            return self.shared_auth_op(op.arg1, op.uuid[0], op.uuid[1], op.flags)
        if cmd == abi.TMEM_RESTORE_NEW:
            self.log("tmem: save/restore is not modelled")
            return -errno.EOPNOTSUPP
        if client is None:
            client = self.client_create(domain)
        if cmd == abi.TMEM_NEW_POOL:
            return self.new_pool(client, op.flags, op.uuid[0], op.uuid[1])
        if cmd == abi.TMEM_DESTROY_POOL:
            client.total_cycles += 1
            return self.destroy_pool(client, op.pool_id)
        pool = client.pools[op.pool_id] if 0 <= op.pool_id < MAX_POOLS_PER_DOMAIN else None
        if pool is None:
            self.log("tmem: operation requested on uncreated pool")
            return -errno.ENODEV
        if cmd == abi.TMEM_XCHG:
            self.log("tmem_xchg op not implemented yet")
            return 0
        # TMEM_READ/TMEM_WRITE (sub-page) are not used by Linux and not modelled
        self.log(f"tmem: op {cmd} not implemented")
        return 0

    def _control(self, op: abi.TmemOp) -> int:
        subop = op.subop
        if subop in (abi.TMEMC_THAW, abi.TMEMC_FREEZE, abi.TMEMC_DESTROY):
            # TMEMC_DESTROY "destroys" with freeze=0: it thaws (as in tmem.c)
            return self.freeze(op.cli_id, subop)
        if subop == abi.TMEMC_FLUSH:
            return self.flush_kb(op.cli_id, op.arg1)
        if subop == abi.TMEMC_LIST:
            text = self.list(op.cli_id, bool(op.arg2))
            if isinstance(text, int):
                return text
            op.buf = text[: op.arg1 - 1] if op.arg1 > 0 else text
            return 0
        if subop in (abi.TMEMC_SET_WEIGHT, abi.TMEMC_SET_CAP, abi.TMEMC_SET_COMPRESS):
            return self.set_var(op.cli_id, subop, op.arg1)
        if subop == abi.TMEMC_QUERY_FREEABLE_MB:
            return self.freeable_mb
        return -1
