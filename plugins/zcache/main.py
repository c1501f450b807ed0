"""The zcache host: tmem + compressor + allocator, and the two frontend shims.

``ZcacheHost`` owns one tmem instance (LOCAL_CLIENT plus remote clients), one
compressor and one allocator (zbud, or zsmalloc beyond Linux).  The frontends
call ``host.cleancache_ops`` and ``host.frontswap_ops``: plain objects with
plain methods, handed out once and called per page with no hook dispatch in
between (as zcache-main.c's ``zcache_cleancache_ops`` / ``zcache_frontswap_ops`` tables; a
per-page pluggy hook would cost about as much again as the codec).

Return values follow zcache: 0 for success, -1 for a miss or an ignored call,
-ENOMEM (-12) when the allocator refused the page, -ERANGE (-34) for a
frontswap store of a page that was never active.

Metadata-only pages are decided on the page bytes before any tmem or
allocator work: an all-zero page (3.10's zero_filled_pages) and, beyond Linux,
a page of one repeated non-zero 8-byte word (``same_filled_pages``, as zswap
later did) get a negative pampd (``~word``) and no space; a get rebuilds the
page from the pampd.  ``zero_filled=False`` / ``same_filled=False`` compress
them like any page (3.9 had no zero-filled awareness; the benchmark measures
the shortcut against that compressed path).
"""

from __future__ import annotations

from .compress import Compressor, get_compressor
from .counters import Counters
from .tmem import (
    LOCAL_CLIENT,
    OBJNODE_TREE_MAP_SIZE,
    MAX_INDEX,
    MAX_POOLS_PER_CLIENT,
    TMEM_POOL_PERSIST,
    Pool,
    Tmem,
)
from .zpool import (
    FILL_WORDS,
    PAGE_SIZE,
    ZERO_FILLED,
    ZERO_PAGE,
    FrameAllocator,
    account_filled,
    fill_word,
    pack_handle_tail,
)

ENOMEM = 12
ERANGE = 34

_from_bytes = int.from_bytes

#: frontswap offsets are split into 256 objects per swap type
SWIZ_BITS = 8
SWIZ_MASK = (1 << SWIZ_BITS) - 1

ZPOOLS = ("zbud", "zsmalloc")


class ZcacheBug(RuntimeError):
    """A condition on which the kernel would BUG() (e.g. init_fs with a foreign page size)."""


class ZcachePamops:
    """The pampd operations tmem calls back: decompress, and free into the allocator.

    Negative pampds (zero- and same-filled pages) are handled here without
    the allocator: the page is rebuilt from the pampd and the counters are
    adjusted inline (this is the get half of the metadata-only fast path).
    """

    __slots__ = ("zpool", "decompress", "zc", "_read", "_free")

    def __init__(self, zpool, decompress, zc):
        self.zpool = zpool
        self.decompress = decompress
        self.zc = zc
        self._read = zpool.read
        self._free = zpool.free

    def get_data(self, pampd: int, pool: Pool) -> bytes | None:
        if pampd < 0:  # metadata only
            if pampd == ZERO_FILLED:
                return ZERO_PAGE
            return (~pampd).to_bytes(8, "little") * FILL_WORDS
        buf = self._read(pampd)
        if buf is None:
            return None
        return self.decompress(buf)

    def get_data_and_free(self, pampd: int, pool: Pool) -> bytes | None:
        if pampd < 0:  # metadata only: unaccount_filled, inlined
            zc = self.zc
            if pool.persistent:
                zc.pers_zpages -= 1
            else:
                zc.eph_zpages -= 1
            if pampd == ZERO_FILLED:
                zc.zero_filled_pages -= 1
                return ZERO_PAGE
            zc.same_filled_pages -= 1
            return (~pampd).to_bytes(8, "little") * FILL_WORDS
        buf = self._read(pampd)
        data = None if buf is None else self.decompress(buf)
        self._free(pampd, not pool.persistent)
        return data

    def free(self, pampd: int, pool: Pool) -> None:
        self._free(pampd, not pool.persistent)


class ZcacheHost:
    """One zcache instance: what ``zcache_init`` builds, minus registration.

    ``frames`` hands out page frames (``alloc() -> pfn | None``, ``free(pfn)``);
    ``compressor`` is a :class:`Compressor` or a name for ``get_compressor``
    (``LookupError`` when unsupported).  The flags are the module/boot
    parameters of zcache-main.c that act per page, plus ``zero_filled`` (3.10's
    zero-filled pages awareness, on) and ``same_filled`` (beyond Linux: pages
    of one repeated 8-byte word stored as metadata only, on); both can be
    changed later through the attributes of the same names.
    """

    def __init__(
        self,
        frames: FrameAllocator,
        compressor: Compressor | str = "zstd",
        *,
        zpool: str = "zbud",
        counters: Counters | None = None,
        disable_cleancache_ignore_nonactive: bool = False,
        disable_frontswap_ignore_nonactive: bool = False,
        frontswap_has_exclusive_gets: bool = True,
        zero_filled: bool = True,
        same_filled: bool = True,
    ):
        if isinstance(compressor, str):
            compressor = get_compressor(compressor)
        self.compressor = compressor
        self.counters = counters if counters is not None else Counters()
        zc = self.counters.zcache
        if zpool == "zbud":
            from .zbud import ZbudPool as pool_class
        elif zpool == "zsmalloc":
            from .zsmalloc import ZsmallocPool as pool_class
        else:
            raise LookupError(f"zpool {zpool!r} not supported (choose from {', '.join(ZPOOLS)})")
        # tmem and the allocator point at each other: eviction flushes tmem
        self.tmem = Tmem(None, zc)
        self.zpool = pool_class(frames, zc, self.counters.zbud, self.tmem.flush_handle)
        self.pamops = self.tmem.pamops = ZcachePamops(self.zpool, compressor.decompress, zc)
        self._freeze = False
        #: pool creation/destruction messages go here (the kernel's printk), if set
        self.printk = None
        self.namestr = "zcache"
        self.cleancache_ops = CleancacheOps(self, disable_cleancache_ignore_nonactive)
        self.frontswap_ops = FrontswapOps(self, disable_frontswap_ignore_nonactive,
                                          frontswap_has_exclusive_gets)
        self.zero_filled = zero_filled
        self.same_filled = same_filled

    # ------------------------------------------------ flags the glue may set

    @property
    def frontswap_has_exclusive_gets(self) -> bool:
        return self.frontswap_ops.exclusive_gets

    @frontswap_has_exclusive_gets.setter
    def frontswap_has_exclusive_gets(self, value: bool) -> None:
        self.frontswap_ops.exclusive_gets = bool(value)

    @property
    def zero_filled(self) -> bool:
        """Store all-zero pages as metadata only (Linux 3.10; False: compress them, as 3.9)."""
        return self._zero_filled

    @zero_filled.setter
    def zero_filled(self, value: bool) -> None:
        self._zero_filled = bool(value)
        zero = ZERO_FILLED if value else 0
        self.cleancache_ops._zero = self.frontswap_ops._zero = zero

    @property
    def same_filled(self) -> bool:
        """Store pages of one repeated non-zero u64 as metadata only (beyond Linux)."""
        return self._same_filled

    @same_filled.setter
    def same_filled(self, value: bool) -> None:
        self._same_filled = bool(value)
        self.cleancache_ops._same = self.frontswap_ops._same = self._same_filled

    def filled_pampd(self, data) -> int | None:
        """The metadata-only pampd for ``data`` under the current flags, or None."""
        word = fill_word(data)
        if word is None or (word and not self._same_filled) or (
                not word and not self._zero_filled):
            return None
        return ~word

    @property
    def freeze(self) -> bool:
        """zcache_freeze: every put becomes a flush (never set in 3.10)."""
        return self._freeze

    @freeze.setter
    def freeze(self, value: bool) -> None:
        self._freeze = bool(value)
        self.cleancache_ops.freeze = self.frontswap_ops.freeze = self._freeze

    @property
    def frontswap_poolid(self) -> int:
        return self.frontswap_ops.poolid

    # ------------------------------------------------ tmem by numbers (zcache_*_page)

    def new_pool(self, cli_id: int = LOCAL_CLIENT, flags: int = 0) -> int:
        """zcache_new_pool: the lowest free pool id, or -1; logged as zcache2 logs it."""
        poolid = self.tmem.new_pool(cli_id, flags)
        log = self.printk
        if log is not None:
            kind = "persistent" if flags & TMEM_POOL_PERSIST else "ephemeral"
            if poolid < 0:
                log(f"{self.namestr}: pool creation failed: max exceeded")
            elif cli_id == LOCAL_CLIENT:
                log(f"{self.namestr}: created {kind} local tmem pool, id={poolid}")
            else:
                log(f"{self.namestr}: created {kind} tmem pool, id={poolid}, client={cli_id}")
        return poolid

    def destroy_pool(self, cli_id: int, pool_id: int) -> int:
        if pool_id < 0:
            return -1
        ret = self.tmem.destroy_pool(cli_id, pool_id)
        if self.printk is not None and ret >= 0:
            if cli_id == LOCAL_CLIENT:
                self.printk(f"{self.namestr}: destroyed local pool id={pool_id}")
            else:
                self.printk(f"{self.namestr}: destroyed pool id={pool_id}, client={cli_id}")
        return ret

    def put_page(self, cli_id: int, pool_id: int, oid: int, index: int, data: bytes) -> int:
        """zcache_put_page: 0, -1 (no pool, frozen) or -ENOMEM (refused)."""
        pool = self.tmem.get_pool(cli_id, pool_id)
        if pool is None:
            return -1
        return _put(self, pool, oid, index, data, None)

    def get_page(self, cli_id: int, pool_id: int, oid: int, index: int,
                 get_and_free: int) -> bytes | None:
        """zcache_get_page: the page bytes or None."""
        pool = self.tmem.get_pool(cli_id, pool_id)
        if pool is None or not pool.objs:
            return None
        return self.tmem.get(pool, oid, index, get_and_free)

    def flush_page(self, cli_id: int, pool_id: int, oid: int, index: int) -> int:
        zc = self.counters.zcache
        zc.flush_total += 1
        pool = self.tmem.get_pool(cli_id, pool_id)
        ret = -1
        if pool is not None and pool.objs:
            ret = self.tmem.flush_page(pool, oid, index)
        if ret >= 0:
            zc.flush_found += 1
        return ret

    def flush_object(self, cli_id: int, pool_id: int, oid: int) -> int:
        zc = self.counters.zcache
        zc.flobj_total += 1
        pool = self.tmem.get_pool(cli_id, pool_id)
        ret = -1
        if pool is not None and pool.objs:
            ret = self.tmem.flush_object(pool, oid)
        if ret >= 0:
            zc.flobj_found += 1
        return ret

    # ------------------------------------------------------------ shrinker

    def shrink(self, nr_to_keep_frames: int, lru: tuple[int, int, int, int] | None = None) -> int:
        """Evict ephemeral frames until at most ``nr_to_keep_frames`` are left.

        ``lru`` = (active_file, inactive_file, active_anon, inactive_anon) page
        counts, recorded in the ``last_*_pageframes`` counters as the kernel's
        shrinker samples them.  Returns the frames given back to RAM.
        """
        if lru is not None:
            zc = self.counters.zcache
            (zc.last_active_file_pageframes, zc.last_inactive_file_pageframes,
             zc.last_active_anon_pageframes, zc.last_inactive_anon_pageframes) = lru
        return self.zpool.shrink(max(0, nr_to_keep_frames))

    # --------------------------------------------------------------- stats

    def stats(self) -> dict[str, float]:
        """zpages held, frames used, compressed bytes, and the two ratios for the demo."""
        zc = self.counters.zcache
        zpages = zc.eph_zpages + zc.pers_zpages
        zbytes = zc.eph_zbytes + zc.pers_zbytes
        frames = self.zpool.pageframes
        return {
            "zpages": zpages,
            "zero_filled_pages": zc.zero_filled_pages,
            "pageframes": frames,
            "zbytes": zbytes,
            "compression_ratio": (zpages * PAGE_SIZE / zbytes) if zbytes else 0.0,
            "pages_per_frame": (zpages / frames) if frames else 0.0,
        }

    def check(self) -> None:
        """Assert tmem, allocator and counters agree (tests)."""
        self.tmem.check()
        self.zpool.check()
        zc = self.counters.zcache
        eph = pers = zero = same = eph_filled = pers_filled = 0
        for pool in self.tmem.pools():
            n = pool.page_count()
            if pool.persistent:
                pers += n
            else:
                eph += n
            filled = [p for obj in pool.objs.values() for p in obj.values() if p < 0]
            zero += filled.count(ZERO_FILLED)
            same += len(filled) - filled.count(ZERO_FILLED)
            if pool.persistent:
                pers_filled += len(filled)
            else:
                eph_filled += len(filled)
        assert zc.eph_zpages == eph, (zc.eph_zpages, eph)
        assert zc.pers_zpages == pers, (zc.pers_zpages, pers)
        assert zc.zero_filled_pages == zero, (zc.zero_filled_pages, zero)
        assert zc.same_filled_pages == same, (zc.same_filled_pages, same)
        # the allocator holds every other zpage
        zp = self.zpool
        assert zp.eph_zpages == eph - eph_filled, (zp.eph_zpages, eph, eph_filled)
        assert zp.pers_zpages == pers - pers_filled, (zp.pers_zpages, pers, pers_filled)


def _frozen(host: ZcacheHost, pool: Pool, oid: int, index: int) -> int:
    host.counters.zcache.put_to_flush += 1
    if pool.objs:
        host.tmem.flush_page(pool, oid, index)
    return -1


def _put(host: ZcacheHost, pool: Pool, oid: int, index: int, data: bytes,
         th_head: bytes | None) -> int:
    """zcache_put_page + pampd creation: zero/same check, compress, allocate, tmem_put.

    ``th_head`` is the 24-byte oid as stored in the handle, when the caller
    already has it (a cleancache filekey).
    """
    if host._freeze:
        return _frozen(host, pool, oid, index)
    eph = not pool.persistent
    zpool = host.zpool
    pampd = host.filled_pampd(data)
    if pampd is not None:
        account_filled(host.counters.zcache, eph, pampd)
    else:
        if th_head is None:
            th_head = oid.to_bytes(24, "little")
        pampd = zpool.create(eph, host.compressor.compress(data),
                             th_head + pack_handle_tail(index, pool.pool_id, pool.client.cli_id))
        if pampd is None:
            zc = host.counters.zcache
            if eph:
                zc.failed_eph_puts += 1
            else:
                zc.failed_pers_puts += 1
            return -ENOMEM
    host.tmem.put(pool, oid, index, pampd)
    return 0


class CleancacheOps:
    """struct cleancache_ops of zcache: ephemeral pools of LOCAL_CLIENT."""

    __slots__ = ("host", "tmem", "pools", "zc", "disable_ignore_nonactive", "freeze",
                 "_zero", "_same", "_compress", "_create", "_tmem_put", "_tmem_get",
                 "_take", "_unlink", "_read", "_decompress", "_free")

    def __init__(self, host: ZcacheHost, disable_ignore_nonactive: bool = False):
        self.host = host
        self.tmem = host.tmem
        self.pools = host.tmem.local.pools
        self.zc = host.counters.zcache
        self.disable_ignore_nonactive = disable_ignore_nonactive
        self.freeze = False
        # the host's zero_filled / same_filled flags: the pampd of a zero page
        # (ZERO_FILLED, or 0: compress it), bool
        self._zero = ZERO_FILLED
        self._same = True
        # the per-page path calls these directly
        self._compress = host.compressor.compress
        self._create = host.zpool.create
        self._tmem_put = host.tmem.put
        self._tmem_get = host.tmem.get
        self._take = host.tmem.take
        self._unlink = host.tmem.unlink
        self._read = host.zpool.read
        self._decompress = host.compressor.decompress
        self._free = host.zpool.free

    def init_fs(self, pagesize: int) -> int:
        if pagesize != PAGE_SIZE:
            raise ZcacheBug(f"zcache: init_fs with pagesize {pagesize}")
        return self.host.new_pool(LOCAL_CLIENT, 0)

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        """Shared pools are unsupported: a private ephemeral pool, uuid ignored."""
        if pagesize != PAGE_SIZE:
            raise ZcacheBug(f"zcache: init_shared_fs with pagesize {pagesize}")
        return self.host.new_pool(LOCAL_CLIENT, 0)

    def put_page(self, pool_id: int, key: bytes, index: int, page) -> None:
        if not page.was_active and not self.disable_ignore_nonactive:
            self.zc.eph_nonactive_puts_ignored += 1
            return
        if index > MAX_INDEX or not 0 <= pool_id < MAX_POOLS_PER_CLIENT:
            return
        pool = self.pools[pool_id]
        if pool is None:
            return
        oid = _from_bytes(key, "little")
        if self.freeze:
            _frozen(self.host, pool, oid, index)
            return
        data = page.data
        # metadata-only pages, decided on the bytes before any allocator work:
        # all zero (one memcmp), else same-filled (a cheap first test, then a
        # comparison with the first word repeated)
        pampd = 0
        if data == ZERO_PAGE:
            pampd = self._zero  # ZERO_FILLED, or 0 (compress it) if zero_filled is off
        elif data[0] == data[8] and self._same:
            word = data[:8]
            if word * FILL_WORDS == data:
                pampd = ~_from_bytes(word, "little")
        if pampd >= 0:
            if len(key) != 24:
                key = oid.to_bytes(24, "little")
            pampd = self._create(not pool.persistent, self._compress(data),
                                 key + pack_handle_tail(index, pool_id, LOCAL_CLIENT))
            if pampd is None:
                if pool.persistent:
                    self.zc.failed_pers_puts += 1
                else:
                    self.zc.failed_eph_puts += 1
                return
            self._tmem_put(pool, oid, index, pampd)
            return
        # account_filled, inlined
        zc = self.zc
        if pool.persistent:
            v = zc.pers_zpages + 1
            zc.pers_zpages = v
            if v > zc.pers_zpages_max:
                zc.pers_zpages_max = v
        else:
            v = zc.eph_zpages + 1
            zc.eph_zpages = v
            if v > zc.eph_zpages_max:
                zc.eph_zpages_max = v
        if pampd == ZERO_FILLED:
            v = zc.zero_filled_pages + 1
            zc.zero_filled_pages = v
            if v > zc.zero_filled_pages_max:
                zc.zero_filled_pages_max = v
        else:
            zc.same_filled_pages += 1
        # Tmem.put's common case, inlined: a small object that keeps its objnode
        obj = pool.objs.get(oid)
        if obj is not None and index < OBJNODE_TREE_MAP_SIZE and len(obj) > 1 \
                and index not in obj and oid not in pool.trees:
            obj[index] = pampd
        else:
            self._tmem_put(pool, oid, index, pampd)

    def get_page(self, pool_id: int, key: bytes, index: int, page) -> int:
        if index > MAX_INDEX or not 0 <= pool_id < MAX_POOLS_PER_CLIENT:
            return -1
        pool = self.pools[pool_id]
        if pool is None or not pool.objs:
            return -1
        if pool.persistent:  # get_and_free 0 keeps the pages of a persistent pool
            data = self._tmem_get(pool, _from_bytes(key, "little"), index, 0)
            if data is None:
                return -1
        else:
            # Tmem.take, inlined
            oid = _from_bytes(key, "little")
            obj = pool.objs.get(oid)
            if obj is None:
                return -1
            pampd = obj.pop(index, None)
            if pampd is None:
                return -1
            if len(obj) < 2 or oid in pool.trees:
                self._unlink(pool, oid, obj, index)
            if pampd < 0:  # metadata only: unaccount_filled, inlined
                zc = self.zc
                zc.eph_zpages -= 1
                if pampd == ZERO_FILLED:
                    zc.zero_filled_pages -= 1
                    data = ZERO_PAGE
                else:
                    zc.same_filled_pages -= 1
                    data = (~pampd).to_bytes(8, "little") * FILL_WORDS
            else:  # pamops.get_data_and_free, inlined
                buf = self._read(pampd)
                data = None if buf is None else self._decompress(buf)
                self._free(pampd, True)
                if data is None:
                    return -1
        page.data = data
        page.was_active = True
        return 0

    def invalidate_page(self, pool_id: int, key: bytes, index: int) -> None:
        if index > MAX_INDEX:
            return
        self.host.flush_page(LOCAL_CLIENT, pool_id, int.from_bytes(key, "little"), index)

    def invalidate_inode(self, pool_id: int, key: bytes) -> None:
        self.host.flush_object(LOCAL_CLIENT, pool_id, int.from_bytes(key, "little"))

    def invalidate_fs(self, pool_id: int) -> None:
        if pool_id >= 0:
            self.host.destroy_pool(LOCAL_CLIENT, pool_id)


class FrontswapOps:
    """struct frontswap_ops of zcache: one persistent pool for every swap type."""

    __slots__ = ("host", "tmem", "pools", "zc", "disable_ignore_nonactive",
                 "exclusive_gets", "poolid", "freeze",
                 "_zero", "_same", "_compress", "_create", "_tmem_put", "_tmem_get",
                 "_take", "_unlink", "_read", "_decompress", "_free")

    def __init__(self, host: ZcacheHost, disable_ignore_nonactive: bool = False,
                 exclusive_gets: bool = True):
        self.host = host
        self.tmem = host.tmem
        self.pools = host.tmem.local.pools
        self.zc = host.counters.zcache
        self.disable_ignore_nonactive = disable_ignore_nonactive
        self.exclusive_gets = exclusive_gets
        #: zcache_frontswap_poolid: -1 until the first init
        self.poolid = -1
        self.freeze = False
        self._zero = ZERO_FILLED
        self._same = True
        self._compress = host.compressor.compress
        self._create = host.zpool.create
        self._tmem_put = host.tmem.put
        self._tmem_get = host.tmem.get
        self._take = host.tmem.take
        self._unlink = host.tmem.unlink
        self._read = host.zpool.read
        self._decompress = host.compressor.decompress
        self._free = host.zpool.free

    def init(self, type: int) -> None:
        if self.poolid < 0:
            self.poolid = self.host.new_pool(LOCAL_CLIENT, TMEM_POOL_PERSIST)

    def _pool(self) -> Pool | None:
        poolid = self.poolid
        if 0 <= poolid < MAX_POOLS_PER_CLIENT:
            return self.pools[poolid]
        return None  # -1 seen as u16 65535: no such pool

    def store(self, type: int, offset: int, page) -> int:
        if not page.was_active and not self.disable_ignore_nonactive:
            self.zc.pers_nonactive_puts_ignored += 1
            return -ERANGE
        if offset > MAX_INDEX:
            return -1
        poolid = self.poolid
        pool = self.pools[poolid] if 0 <= poolid < MAX_POOLS_PER_CLIENT else None
        if pool is None:
            return -1
        oid = (type << SWIZ_BITS) | (offset & SWIZ_MASK)
        index = offset >> SWIZ_BITS
        if self.freeze:
            return _frozen(self.host, pool, oid, index)
        data = page.data
        # metadata-only pages, decided on the bytes before any allocator work:
        # all zero (one memcmp), else same-filled (a cheap first test, then a
        # comparison with the first word repeated)
        pampd = 0
        if data == ZERO_PAGE:
            pampd = self._zero  # ZERO_FILLED, or 0 (compress it) if zero_filled is off
        elif data[0] == data[8] and self._same:
            word = data[:8]
            if word * FILL_WORDS == data:
                pampd = ~_from_bytes(word, "little")
        if pampd >= 0:
            pampd = self._create(not pool.persistent, self._compress(data),
                                 oid.to_bytes(24, "little")
                                 + pack_handle_tail(index, poolid, LOCAL_CLIENT))
            if pampd is None:
                if pool.persistent:
                    self.zc.failed_pers_puts += 1
                else:
                    self.zc.failed_eph_puts += 1
                return -ENOMEM
            self._tmem_put(pool, oid, index, pampd)
            return 0
        # account_filled, inlined
        zc = self.zc
        if pool.persistent:
            v = zc.pers_zpages + 1
            zc.pers_zpages = v
            if v > zc.pers_zpages_max:
                zc.pers_zpages_max = v
        else:
            v = zc.eph_zpages + 1
            zc.eph_zpages = v
            if v > zc.eph_zpages_max:
                zc.eph_zpages_max = v
        if pampd == ZERO_FILLED:
            v = zc.zero_filled_pages + 1
            zc.zero_filled_pages = v
            if v > zc.zero_filled_pages_max:
                zc.zero_filled_pages_max = v
        else:
            zc.same_filled_pages += 1
        # Tmem.put's common case, inlined: a small object that keeps its objnode
        obj = pool.objs.get(oid)
        if obj is not None and index < OBJNODE_TREE_MAP_SIZE and len(obj) > 1 \
                and index not in obj and oid not in pool.trees:
            obj[index] = pampd
        else:
            self._tmem_put(pool, oid, index, pampd)
        return 0

    def load(self, type: int, offset: int, page) -> int:
        if offset > MAX_INDEX:
            return -1
        poolid = self.poolid
        pool = self.pools[poolid] if 0 <= poolid < MAX_POOLS_PER_CLIENT else None
        if pool is None or not pool.objs:
            return -1
        oid = (type << SWIZ_BITS) | (offset & SWIZ_MASK)
        if not self.exclusive_gets:  # get_and_free -1: keep
            data = self._tmem_get(pool, oid, offset >> SWIZ_BITS, -1)
            if data is None:
                return -1
            page.data = data
            return 0
        pampd = self._take(pool, oid, offset >> SWIZ_BITS)  # get_and_free 1
        if pampd is None:
            return -1
        if pampd < 0:  # metadata only: unaccount_filled, inlined
            zc = self.zc
            if pool.persistent:
                zc.pers_zpages -= 1
            else:
                zc.eph_zpages -= 1
            if pampd == ZERO_FILLED:
                zc.zero_filled_pages -= 1
                data = ZERO_PAGE
            else:
                zc.same_filled_pages -= 1
                data = (~pampd).to_bytes(8, "little") * FILL_WORDS
        else:  # pamops.get_data_and_free, inlined
            buf = self._read(pampd)
            data = None if buf is None else self._decompress(buf)
            self._free(pampd, not pool.persistent)
            if data is None:
                return -1
        page.data = data
        return 0

    def invalidate_page(self, type: int, offset: int) -> None:
        if offset > MAX_INDEX:
            return
        self.host.flush_page(LOCAL_CLIENT, self.poolid,
                             (type << SWIZ_BITS) | (offset & SWIZ_MASK), offset >> SWIZ_BITS)

    def invalidate_area(self, type: int) -> None:
        """Flush the 256 objects of one swap type (256 flush_object calls, as zcache)."""
        flush_object = self.host.flush_object
        poolid = self.poolid
        for ind in range(SWIZ_MASK, -1, -1):
            flush_object(LOCAL_CLIENT, poolid, (type << SWIZ_BITS) | ind)
