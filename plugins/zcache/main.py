"""zcache-main.c: the zcache instance, its put/get core, the two ops adapters and ``zcache_init``.

:class:`Zcache` owns one tmem (LOCAL_CLIENT plus the remote clients ramster
creates), one compressor and one allocator (zbud, or zsmalloc beyond Linux).
Every page goes through one put core (:meth:`Zcache.put`: metadata-only
check, compress, allocate, ``Tmem.put``) and one get core (``Tmem.get``,
which is ``Tmem.take`` plus ``pamops.get_data_and_free`` when the page is
freed by the get). :class:`CleancacheOps` and :class:`FrontswapOps` are thin
adapters: they turn the frontends' (pool, key, index) and (type, offset)
into tmem handles and call the core, as zcache_cleancache_put_page and
zcache_frontswap_store do.

Return values follow zcache: 0 for success, -1 for a miss or an ignored call,
-ENOMEM when the allocator refused the page, -ERANGE for a frontswap store of
a page that was never active.

Metadata-only pages are decided on the page bytes before any allocator work:
an all-zero page (3.10's zero_filled_pages) and, beyond Linux, a page of one
repeated non-zero 8-byte word (``same_filled_pages``, as zswap later did) get
a negative pampd (``~word``) and no space; a get rebuilds the page from the
pampd. ``zero_filled=False`` / ``same_filled=False`` compress them like any
page (3.9 had no zero-filled awareness).

The tmem host API (``new_pool``, ``put_page``, ``get_page``, ``flush_page``,
``flush_object``, ``destroy_pool`` by client and pool number, and
``tmem.new_client``) is what ramster, linked into zcache as in Linux 3.10
(CONFIG_RAMSTER), calls for its remote clients; docs/zcache.md documents it.

The module glue — boot parameters (``__setup``), module parameters and
``zcache_init`` in Linux's order — is at the end of this file.
"""

from __future__ import annotations


import errno
from dataclasses import dataclass, replace
from typing import Callable

from kmodemu.tmem import (
    KERN_ERR,
    KERN_INFO,
    KERN_WARNING,
    BootParam,
    KernelError,
    ModuleContext,
    ModuleDecl,
    Page,
    ParamSpec,
)

from .compress import Compressor, Decompress, get_compressor
from .debug import Counters, ZcacheCounters
from .tmem import LOCAL_CLIENT, MAX_INDEX, MAX_POOLS_PER_CLIENT, TMEM_POOL_PERSIST, Pool, Tmem
from .zbud import ZbudPool
from .zpage import (
    FILL_WORDS,
    PAGE_SIZE,
    ZERO_FILLED,
    ZERO_PAGE,
    FrameAllocator,
    account_filled,
    filled_page,
    unaccount_filled,
)
from .zsmalloc import ZsmallocPool

ENOMEM = errno.ENOMEM
ERANGE = errno.ERANGE

_from_bytes = int.from_bytes

#: frontswap offsets are split into 256 objects per swap type (SWIZ_BITS)
SWIZ_BITS = 8
SWIZ_MASK = (1 << SWIZ_BITS) - 1

ZPOOLS: dict[str, type[ZbudPool] | type[ZsmallocPool]] = {
    "zbud": ZbudPool, "zsmalloc": ZsmallocPool}


class ZcacheBug(RuntimeError):
    """A condition on which the kernel would BUG() (e.g. init_fs with a foreign page size)."""


class ZcachePamops:
    """The pampd operations tmem calls back: decompress, and free into the allocator.

    Negative pampds (zero- and same-filled pages) are rebuilt from the pampd
    and never read; freeing one only unaccounts it (no allocator holds it).
    """

    __slots__ = ("_read", "_free", "_read_and_free", "_decompress", "_zc")

    def __init__(self, decompress: Decompress, zc: ZcacheCounters):
        self._decompress = decompress
        self._zc = zc

    def bind(self, zpool: ZbudPool | ZsmallocPool) -> None:
        """The allocator, made after tmem (its eviction flushes tmem handles)."""
        self._read = zpool.read
        self._free = zpool.free
        self._read_and_free = zpool.read_and_free

    def get_data(self, pampd: int, pool: Pool) -> bytes | None:
        if pampd < 0:
            return filled_page(pampd)
        buf = self._read(pampd)
        return None if buf is None else self._decompress(buf)

    def get_data_and_free(self, pampd: int, pool: Pool) -> bytes | None:
        if pampd < 0:  # metadata only: nothing to read or give back
            unaccount_filled(self._zc, not pool.persistent, pampd)
            return filled_page(pampd)
        buf = self._read_and_free(pampd, not pool.persistent)
        return None if buf is None else self._decompress(buf)

    def free(self, pampd: int, pool: Pool) -> None:
        self._free(pampd, not pool.persistent)


class Zcache:
    """One zcache: what ``zcache_init`` builds, minus registration.

    ``frames`` hands out page frames (``alloc() -> pfn | None``, ``free(pfn)``);
    ``compressor`` is a :class:`Compressor` or a name for ``get_compressor``
    (``LookupError`` when unsupported). The flags are the module/boot
    parameters that act per page, plus ``zero_filled`` (3.10's zero-filled
    pages awareness, on) and ``same_filled`` (beyond Linux, on); all can be
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
        pool_class = ZPOOLS.get(zpool)
        if pool_class is None:
            raise LookupError(f"zpool {zpool!r} not supported (choose from {', '.join(ZPOOLS)})")
        self.compressor = compressor
        self.counters = counters if counters is not None else Counters()
        zc = self.zc = self.counters.zcache
        # tmem and the allocator point at each other: eviction flushes tmem
        self.pamops = ZcachePamops(compressor.decompress, zc)
        self.tmem = Tmem(self.pamops, zc)
        self.zpool = pool_class(frames, zc, self.counters.zbud, self.tmem.flush_handle)
        self.pamops.bind(self.zpool)
        self._compress = compressor.compress
        self._create = self.zpool.create
        self._tmem_put = self.tmem.put
        self._tmem_take = self.tmem.take
        #: zcache_freeze: every put becomes a flush (never set in 3.10)
        self.freeze = False
        #: the fail_compress fault point's should_fail, when the module context gives one
        self.fail_compress: Callable[[int], bool] | None = None
        self.zero_filled = zero_filled
        self.same_filled = same_filled
        #: pool creation/destruction messages go here (the kernel's printk), if set
        self.printk: Callable[[str], None] | None = None
        self.namestr = "zcache"
        self.cleancache_ops = CleancacheOps(self, disable_cleancache_ignore_nonactive)
        self.frontswap_ops = FrontswapOps(self, disable_frontswap_ignore_nonactive,
                                          frontswap_has_exclusive_gets)

    @property
    def frontswap_has_exclusive_gets(self) -> bool:
        return self.frontswap_ops.exclusive_gets

    @frontswap_has_exclusive_gets.setter
    def frontswap_has_exclusive_gets(self, value: bool) -> None:
        self.frontswap_ops.exclusive_gets = bool(value)

    @property
    def frontswap_poolid(self) -> int:
        return self.frontswap_ops.poolid

    def filled_pampd(self, data: bytes) -> int | None:
        """The metadata-only pampd for ``data`` under the current flags, or None.

        All zero is one comparison; same-filled is a cheap first test (byte 0
        against byte 8), then the first word repeated against the page.
        """
        if data == ZERO_PAGE:
            return ZERO_FILLED if self.zero_filled else None
        if self.same_filled and data[0] == data[8]:
            word = data[:8]
            if word * FILL_WORDS == data:
                return ~_from_bytes(word, "little")
        return None

    # ------------------------------------------------ the put/get core

    def put(self, pool: Pool, oid: int, index: int, data: bytes) -> int:
        """zcache_put_page + zcache_pampd_create: 0, -1 (frozen) or -ENOMEM (refused)."""
        if self.freeze:
            self.zc.put_to_flush += 1
            if pool.objs:
                self.tmem.flush_page(pool, oid, index)
            return -1
        eph = not pool.persistent
        # every zero- or same-filled page has byte 0 equal to byte 8: most pages
        # are told apart here, without the call
        pampd = self.filled_pampd(data) if data[0] == data[8] else None
        if pampd is not None:
            account_filled(self.zc, eph, pampd)
        else:
            fail = self.fail_compress
            if fail is not None and fail(1):
                created = None  # the compressor returned an error: the put is refused
            else:
                created = self._create(eph, self._compress(data), oid, index,
                                       pool.pool_id, pool.client.cli_id)
            if created is None:
                if eph:
                    self.zc.failed_eph_puts += 1
                else:
                    self.zc.failed_pers_puts += 1
                return -ENOMEM
            pampd = created
        self._tmem_put(pool, oid, index, pampd)
        return 0

    def get(self, pool: Pool, oid: int, index: int, get_and_free: int) -> bytes | None:
        """zcache_get_page: the page bytes or None (``Tmem.get``: take + get_data_and_free)."""
        if not pool.objs:
            return None
        if get_and_free == 1 or (get_and_free == 0 and not pool.persistent):
            # Tmem.get's freeing half, without its call: every cleancache get and
            # every exclusive frontswap load (benchmarks/ir_hotpath.py)
            pampd = self._tmem_take(pool, oid, index)
            if pampd is None:
                return None
            return self.pamops.get_data_and_free(pampd, pool)
        return self.tmem.get(pool, oid, index, get_and_free)

    # ------------------------------------------------ tmem by numbers (ramster's entry points)

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
        """zcache_put_page by numbers: 0, -1 (no pool, frozen) or -ENOMEM (refused)."""
        pool = self.tmem.get_pool(cli_id, pool_id)
        if pool is None:
            return -1
        return self.put(pool, oid, index, data)

    def get_page(self, cli_id: int, pool_id: int, oid: int, index: int,
                 get_and_free: int) -> bytes | None:
        """zcache_get_page by numbers: the page bytes or None."""
        pool = self.tmem.get_pool(cli_id, pool_id)
        if pool is None:
            return None
        return self.get(pool, oid, index, get_and_free)

    def flush_page(self, cli_id: int, pool_id: int, oid: int, index: int) -> int:
        zc = self.zc
        zc.flush_total += 1
        pool = self.tmem.get_pool(cli_id, pool_id)
        ret = -1
        if pool is not None and pool.objs:
            ret = self.tmem.flush_page(pool, oid, index)
        if ret >= 0:
            zc.flush_found += 1
        return ret

    def flush_object(self, cli_id: int, pool_id: int, oid: int) -> int:
        zc = self.zc
        zc.flobj_total += 1
        pool = self.tmem.get_pool(cli_id, pool_id)
        ret = -1
        if pool is not None and pool.objs:
            ret = self.tmem.flush_object(pool, oid)
        if ret >= 0:
            zc.flobj_found += 1
        return ret

    # ------------------------------------------------ shrinker

    def shrink(self, nr_to_keep_frames: int, lru: tuple[int, int, int, int] | None = None) -> int:
        """Evict ephemeral frames until at most ``nr_to_keep_frames`` are left.

        ``lru`` = (active_file, inactive_file, active_anon, inactive_anon) page
        counts, recorded in the ``last_*_pageframes`` counters as the kernel's
        shrinker samples them. Returns the frames given back to RAM.
        """
        if lru is not None:
            zc = self.zc
            (zc.last_active_file_pageframes, zc.last_inactive_file_pageframes,
             zc.last_active_anon_pageframes, zc.last_inactive_anon_pageframes) = lru
        return self.zpool.shrink(max(0, nr_to_keep_frames))

    # ------------------------------------------------ stats

    def stats(self) -> dict[str, float]:
        """zpages held, frames used, compressed bytes, and the two ratios for the demo."""
        zc = self.zc
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
        zc = self.zc
        eph = pers = zero = same = eph_filled = pers_filled = 0
        for pool in self.tmem.pools():
            n = pool.page_count()
            filled = [p for obj in pool.objs.values() for p in obj.values() if p < 0]
            zero += filled.count(ZERO_FILLED)
            same += len(filled) - filled.count(ZERO_FILLED)
            if pool.persistent:
                pers += n
                pers_filled += len(filled)
            else:
                eph += n
                eph_filled += len(filled)
        assert zc.eph_zpages == eph, (zc.eph_zpages, eph)
        assert zc.pers_zpages == pers, (zc.pers_zpages, pers)
        assert zc.zero_filled_pages == zero, (zc.zero_filled_pages, zero)
        assert zc.same_filled_pages == same, (zc.same_filled_pages, same)
        # the allocator holds every other zpage
        zp = self.zpool
        assert zp.eph_zpages == eph - eph_filled, (zp.eph_zpages, eph, eph_filled)
        assert zp.pers_zpages == pers - pers_filled, (zp.pers_zpages, pers, pers_filled)


class CleancacheOps:
    """struct cleancache_ops of zcache: ephemeral pools of LOCAL_CLIENT, keyed by filekey."""

    __slots__ = ("zcache", "pools", "zc", "disable_ignore_nonactive")

    def __init__(self, zcache: Zcache, disable_ignore_nonactive: bool = False):
        self.zcache = zcache
        self.pools = zcache.tmem.local.pools
        self.zc = zcache.zc
        self.disable_ignore_nonactive = disable_ignore_nonactive

    def init_fs(self, pagesize: int) -> int:
        if pagesize != PAGE_SIZE:
            raise ZcacheBug(f"zcache: init_fs with pagesize {pagesize}")
        return self.zcache.new_pool(LOCAL_CLIENT, 0)

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        """Shared pools are unsupported: a private ephemeral pool, uuid ignored."""
        if pagesize != PAGE_SIZE:
            raise ZcacheBug(f"zcache: init_shared_fs with pagesize {pagesize}")
        return self.zcache.new_pool(LOCAL_CLIENT, 0)

    def put_page(self, pool_id: int, key: bytes, index: int, page: Page) -> None:
        if not page.was_active and not self.disable_ignore_nonactive:
            self.zc.eph_nonactive_puts_ignored += 1
            return
        # the pool lookup is written out in each op: a call fewer a page (ir_hotpath.py)
        if index <= MAX_INDEX and 0 <= pool_id < MAX_POOLS_PER_CLIENT:
            pool = self.pools[pool_id]
            if pool is not None:
                self.zcache.put(pool, _from_bytes(key, "little"), index, page.data)

    def get_page(self, pool_id: int, key: bytes, index: int, page: Page) -> int:
        if index > MAX_INDEX or not 0 <= pool_id < MAX_POOLS_PER_CLIENT:
            return -1
        pool = self.pools[pool_id]
        if pool is None:
            return -1
        # get_and_free 0: an ephemeral pool frees on a hit, a persistent one keeps
        # through Zcache.get, looked up per call: RAMster's glue replaces it (remote pampds)
        data = self.zcache.get(pool, _from_bytes(key, "little"), index, 0)
        if data is None:
            return -1
        page.data = data
        page.was_active = True
        return 0

    def invalidate_page(self, pool_id: int, key: bytes, index: int) -> None:
        if index <= MAX_INDEX:
            self.zcache.flush_page(LOCAL_CLIENT, pool_id, _from_bytes(key, "little"), index)

    def invalidate_inode(self, pool_id: int, key: bytes) -> None:
        self.zcache.flush_object(LOCAL_CLIENT, pool_id, _from_bytes(key, "little"))

    def invalidate_fs(self, pool_id: int) -> None:
        if pool_id >= 0:
            self.zcache.destroy_pool(LOCAL_CLIENT, pool_id)


class FrontswapOps:
    """struct frontswap_ops of zcache: one persistent pool for every swap type.

    A swap (type, offset) is the tmem handle (oid = type << 8 | offset & 255,
    index = offset >> 8), so the 256 objects of a type cover all its offsets.
    """

    __slots__ = ("zcache", "pools", "zc", "disable_ignore_nonactive", "exclusive_gets",
                 "poolid")

    def __init__(self, zcache: Zcache, disable_ignore_nonactive: bool = False,
                 exclusive_gets: bool = True):
        self.zcache = zcache
        self.pools = zcache.tmem.local.pools
        self.zc = zcache.zc
        self.disable_ignore_nonactive = disable_ignore_nonactive
        self.exclusive_gets = exclusive_gets
        #: zcache_frontswap_poolid: -1 until the first init
        self.poolid = -1

    def init(self, type: int) -> None:
        if self.poolid < 0:
            self.poolid = self.zcache.new_pool(LOCAL_CLIENT, TMEM_POOL_PERSIST)

    def store(self, type: int, offset: int, page: Page) -> int:
        if not page.was_active and not self.disable_ignore_nonactive:
            self.zc.pers_nonactive_puts_ignored += 1
            return -ERANGE
        poolid = self.poolid
        if offset > MAX_INDEX or not 0 <= poolid < MAX_POOLS_PER_CLIENT:
            return -1  # -1 seen as u16 65535: no such pool
        pool = self.pools[poolid]
        if pool is None:
            return -1
        return self.zcache.put(pool, (type << SWIZ_BITS) | (offset & SWIZ_MASK),
                               offset >> SWIZ_BITS, page.data)

    def load(self, type: int, offset: int, page: Page) -> int:
        poolid = self.poolid
        if offset > MAX_INDEX or not 0 <= poolid < MAX_POOLS_PER_CLIENT:
            return -1
        pool = self.pools[poolid]
        if pool is None:
            return -1
        # get_and_free 1 removes the page (exclusive gets), -1 keeps it
        data = self.zcache.get(pool, (type << SWIZ_BITS) | (offset & SWIZ_MASK),
                               offset >> SWIZ_BITS, 1 if self.exclusive_gets else -1)
        if data is None:
            return -1
        page.data = data
        return 0

    def invalidate_page(self, type: int, offset: int) -> None:
        if offset <= MAX_INDEX:
            self.zcache.flush_page(LOCAL_CLIENT, self.poolid,
                                   (type << SWIZ_BITS) | (offset & SWIZ_MASK),
                                   offset >> SWIZ_BITS)

    def invalidate_area(self, type: int) -> None:
        """Flush the 256 objects of one swap type (256 flush_object calls, as zcache)."""
        flush_object = self.zcache.flush_object
        poolid = self.poolid
        for ind in range(SWIZ_MASK, -1, -1):
            flush_object(LOCAL_CLIENT, poolid, (type << SWIZ_BITS) | ind)


# ====================================================================== the module

#: our default compressor; Linux 3.10 used "lzo" (see docs/zcache.md)
DEFAULT_COMPRESSOR = "zstd"
NAMESTR = "zcache"


@dataclass
class Settings:
    """The knobs zcache_init reads: set by the boot handlers (built in) or module parameters."""

    enabled: bool = False
    comp_name: str = ""
    disable_cleancache: bool = False
    disable_frontswap: bool = False
    exclusive_gets: bool = True
    disable_frontswap_ignore_nonactive: bool = False
    disable_cleancache_ignore_nonactive: bool = False
    ramster: bool = False
    #: RAMster's frontswap self-shrinking (``noselfshrink`` / ``disable_frontswap_selfshrink``)
    selfshrink: bool = True
    zpool: str = "zbud"
    same_filled: bool = True


@dataclass
class ZcacheState:
    """zcache's file-static variables, one set per kernel (``ctx.private(ZcacheState)``)."""

    boot: Settings | None = None
    counters: Counters | None = None
    zcache: Zcache | None = None
    ramster: object = None


def zcache_of(ctx: ModuleContext) -> Zcache | None:
    """The running zcache of a kernel's zcache module (None if init did not build one)."""
    return ctx.private(ZcacheState).zcache


def _boot(ctx: ModuleContext) -> Settings:
    st = ctx.private(ZcacheState)
    if st.boot is None:
        st.boot = Settings()
    return st.boot


# -- the built-in path: __setup handlers, in the order zcache-main.c defines them.
# Prefix matching means "zcache" also consumes "zcache=lz4" and "nofrontswap"
# consumes "nofrontswapexclusivegets", exactly as obsolete_checksetup does.

def _boot_flag(attr: str, value: bool) -> Callable[[str, ModuleContext], int]:
    def handler(rest: str, ctx: ModuleContext) -> int:
        setattr(_boot(ctx), attr, value)
        return 1
    return handler


def _enable_ramster(rest: str, ctx: ModuleContext) -> int:
    """``ramster``: zcache and RAMster (kmodemu's zcache is built with CONFIG_RAMSTER=y)."""
    s = _boot(ctx)
    s.enabled = s.ramster = True
    return 1


def _enable_compressor(rest: str, ctx: ModuleContext) -> int:
    s = _boot(ctx)
    s.comp_name = rest
    s.enabled = True
    return 1


BOOT_PARAMS = (
    BootParam("zcache", _boot_flag("enabled", True)),
    BootParam("ramster", _enable_ramster, module_param="ramster=1"),
    BootParam("nocleancache", _boot_flag("disable_cleancache", True),
              module_param="disable_cleancache=1"),
    BootParam("nofrontswap", _boot_flag("disable_frontswap", True),
              module_param="disable_frontswap=1"),
    BootParam("nofrontswapexclusivegets", _boot_flag("exclusive_gets", False),
              module_param="frontswap_has_exclusive_gets=0"),
    BootParam("nofrontswapignorenonactive", _boot_flag("disable_frontswap_ignore_nonactive", True),
              module_param="disable_frontswap_ignore_nonactive=1"),
    BootParam("nocleancacheignorenonactive",
              _boot_flag("disable_cleancache_ignore_nonactive", True)),
    BootParam("zcache=", _enable_compressor, module_param="zcache_comp_name={rest}"),
    # ramster.c's own __setup (built-in RAMster only)
    BootParam("noselfshrink", _boot_flag("selfshrink", False),
              module_param="disable_frontswap_selfshrink=1"),
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
    ParamSpec("ramster_enabled", "bool", 0o444,
              "enable RAMster: keep pages in a peer's RAM over the network", False),
    ParamSpec("ramster", "bool", 0o444,
              "kmodemu alias of ramster_enabled (Linux 3.10 has only ramster_enabled)", False),
    ParamSpec("disable_frontswap_selfshrink", "int", 0o444,
              "RAMster: no frontswap self-shrinking", 0),
    ParamSpec("zpool", "charp", 0o444, "allocator: zbud (Linux) or zsmalloc (denser)", "zbud"),
    ParamSpec("same_filled", "bool", 0o444,
              "store pages of one repeated word as metadata only (beyond Linux)", True),
)


def _settings(ctx: ModuleContext) -> Settings:
    """One view of the knobs: what the boot handlers set, or the module parameters."""
    if ctx.builtin:
        return _boot(ctx)
    p = ctx.params
    return Settings(
        enabled=True, comp_name=p.zcache_comp_name or "", disable_cleancache=p.disable_cleancache,
        disable_frontswap=p.disable_frontswap, exclusive_gets=p.frontswap_has_exclusive_gets,
        disable_frontswap_ignore_nonactive=p.disable_frontswap_ignore_nonactive,
        # no module parameter for this one in Linux: stuck at false for modules
        disable_cleancache_ignore_nonactive=False,
        # getattr: a zcache built without CONFIG_RAMSTER has none of RAMster's parameters
        ramster=bool(getattr(p, "ramster_enabled", False) or getattr(p, "ramster", False)),
        selfshrink=not getattr(p, "disable_frontswap_selfshrink", 0),
        zpool=p.zpool or "zbud", same_filled=p.same_filled,
    )


def _comp_init(ctx: ModuleContext, s: Settings) -> Compressor | None:
    """zcache_comp_init: the compressor, or None after logging why not."""
    name = s.comp_name
    comp: Compressor | None = None
    if not ctx.builtin:
        try:
            comp = get_compressor(name)
        except LookupError:
            ctx.printk(f"zcache: {name} not supported", KERN_INFO)
            return None
    else:
        if name:
            try:
                comp = get_compressor(name)
            except LookupError:
                ctx.printk(f"zcache: {name} not supported", KERN_INFO)
                if ctx.cleancache_has_lazy_init:  # 3.10 built-in: no fallback
                    return None
        if comp is None:
            comp = get_compressor(DEFAULT_COMPRESSOR)
    ctx.printk(f"zcache: using {comp.name} compressor", KERN_INFO)
    return comp


def zcache_init(ctx: ModuleContext) -> int:
    s = _settings(ctx)
    st = ctx.private(ZcacheState)
    if not ctx.builtin:
        if not ctx.frontswap_has_lazy_init and not s.disable_frontswap:
            ctx.printk("zcache module requires frontswap lazy init", KERN_ERR)
            return -errno.EINVAL
        if not ctx.cleancache_has_lazy_init and not s.disable_cleancache:
            ctx.printk("zcache module requires cleancache lazy init", KERN_ERR)
            return -errno.EINVAL
    namestr = "ramster" if s.ramster else NAMESTR
    if s.ramster and s.zpool != "zbud":
        ctx.printk(f"zcache: ramster needs zbud, not {s.zpool}", KERN_ERR)
        return -errno.EINVAL

    counters = st.counters = Counters()
    ctx.debugfs("zcache", lambda: counters.zcache)   # created even when disabled
    if not s.enabled:
        ctx.debugfs("zbud", lambda: counters.zbud)
        return 0

    comp = _comp_init(ctx, s)
    if comp is None:
        ctx.printk("zcache: compressor initialization failed", KERN_ERR)
        return -1 if not ctx.builtin else -errno.EINVAL
    if s.zpool not in ZPOOLS:
        ctx.printk(f"zcache: zpool {s.zpool} not supported (zbud, zsmalloc)", KERN_ERR)
        return -errno.EINVAL
    zcache = Zcache(
        ctx.frames, comp, zpool=s.zpool, counters=counters,
        disable_cleancache_ignore_nonactive=s.disable_cleancache_ignore_nonactive,
        disable_frontswap_ignore_nonactive=s.disable_frontswap_ignore_nonactive,
        frontswap_has_exclusive_gets=s.exclusive_gets,
        same_filled=s.same_filled,
    )
    zcache.fail_compress = ctx.fault_point("fail_compress")
    zcache.printk = lambda text: ctx.printk(text, KERN_INFO)
    zcache.namestr = namestr
    st.zcache = zcache
    ctx.debugfs("zbud", lambda: counters.zbud)  # zbud_init
    allocator = "compression buddies" if s.zpool == "zbud" else "zsmalloc"

    if not s.disable_cleancache:
        ctx.register_shrinker(_shrinker(ctx, zcache))
        old = ctx.cleancache_register_ops(zcache.cleancache_ops)
        ctx.printk(f"{namestr}: cleancache enabled using kernel transcendent memory and "
                   f"{allocator}", KERN_INFO)
        if old is not None:
            ctx.printk(f"{namestr}: cleancache_ops overridden", KERN_WARNING)
    if not s.disable_frontswap:
        fold = ctx.frontswap_register_ops(zcache.frontswap_ops)
        if s.exclusive_gets:
            ctx.frontswap_tmem_exclusive_gets(True)
        ctx.printk(f"{namestr}: frontswap enabled using kernel transcendent memory and "
                   f"{allocator}", KERN_INFO)
        if isinstance(fold, KernelError):
            return -fold.errno
        if fold is not None:
            ctx.printk(f"{namestr}: frontswap_ops overridden", KERN_WARNING)
    if s.ramster:
        _ramster_init(ctx, zcache, s)
    return 0


def zcache_unload_exit(ctx: ModuleContext) -> int:
    """zcache's exit on a kernel that can unload tmem backends (3.10-unload, beyond Linux).

    Frontswap first, because it is the one that can refuse: its persistent
    pages are written back to their swap slots (-EBUSY and nothing changed when
    that cannot be done). Then cleancache, whose ephemeral pages simply go.
    Every pool is destroyed, so every zbud/zsmalloc frame is back in RAM; the
    shrinker and debugfs files go with the module context's cleanups.
    """
    st = ctx.private(ZcacheState)
    zcache = st.zcache
    if zcache is None:  # loaded disabled: nothing was registered
        return 0
    namestr = zcache.namestr
    if st.ramster is not None:
        ret = st.ramster.prepare_unload()  # type: ignore[attr-defined]
        if ret < 0:
            return ret
    # -EINVAL from an unregister: that frontend is not ours (disabled, or overridden)
    ret = ctx.frontswap_unregister_ops(zcache.frontswap_ops)
    if ret == -errno.EBUSY:
        ctx.printk(f"{namestr}: frontswap pages cannot be written back now: not unloading",
                   KERN_ERR)
        return ret
    if ret < 0 and ret != -errno.EINVAL:
        return ret
    fops = zcache.frontswap_ops
    if fops.poolid >= 0:
        zcache.destroy_pool(LOCAL_CLIENT, fops.poolid)
        fops.poolid = -1
    ctx.cleancache_unregister_ops(zcache.cleancache_ops)
    for pool_id, pool in enumerate(zcache.tmem.local.pools):
        if pool is not None:  # pools an overriding backend left us with
            zcache.destroy_pool(LOCAL_CLIENT, pool_id)
    if st.ramster is not None:
        st.ramster.unload()  # type: ignore[attr-defined]
        st.ramster = None
    frames = zcache.zpool.pageframes
    if frames:
        ctx.printk(f"{namestr}: {frames} pageframes still held at unload", KERN_WARNING)
    st.zcache = None
    ctx.printk(f"{namestr}: unloaded: cleancache and frontswap are free for another backend",
               KERN_INFO)
    return 0


def _ramster_init(ctx: ModuleContext, zcache: Zcache, s: Settings) -> None:
    """ramster_init(cleancache, frontswap, exclusive gets, selfshrink): RAMster is linked in.

    As a module, r2nm_init (the ``cluster`` configfs subsystem) runs here; built
    in, Linux runs it at late_initcall, which is when zcache_init runs too.
    """
    from importlib import import_module
    glue = import_module("kmodemu_plugins.ramster.zcache_glue")
    ramster_mod = import_module("kmodemu_plugins.ramster.ramster")

    def make(side):
        return ramster_mod.Ramster(ctx.kernel, side, cleancache=not s.disable_cleancache,
                                   frontswap=not s.disable_frontswap,
                                   exclusive_gets=s.exclusive_gets, selfshrink=s.selfshrink)
    rs = glue.link(zcache, make)
    ctx.private(ZcacheState).ramster = rs
    rs.init(register_nodemanager=True, fail_peer=ctx.fault_point("fail_peer"))
    ctx.on_cleanup(rs.shutdown)


def _shrinker(ctx: ModuleContext, zcache: Zcache) -> Callable[[int], int]:
    """The zcache shrinker: evict ephemeral frames down to the file LRU size."""
    def shrink(nr_to_scan: int) -> int:
        lru = ctx.lru_sizes()
        eph = zcache.zc.eph_pageframes
        keep = max(0, eph - nr_to_scan, min(eph, lru[0] + lru[1]))
        return zcache.shrink(keep, lru)
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
    exit=None,  # module unload is not supported in Linux: permanent
    unload_exit=zcache_unload_exit,  # linked only into 3.10-unload kernels (beyond Linux)
    boot_params=BOOT_PARAMS,
    initcall="late",
    size=122880,
    extra={"builtin_params": False, "path": "kernel/drivers/staging/zcache/zcache.ko"},
)


#: CONFIG_RAMSTER unset: zcache.ko without RAMster's parameters and boot words (Linux's
#: ``#ifdef CONFIG_RAMSTER`` around them). Not registered by this plugin: a module path
#: that stands for such a kernel's module tree returns it (examples/kernel-without-ramster).
RAMSTER_PARAMS = ("ramster_enabled", "ramster", "disable_frontswap_selfshrink")
RAMSTER_BOOT_WORDS = ("ramster", "noselfshrink")
MODULE_WITHOUT_RAMSTER = replace(
    MODULE, params=tuple(p for p in PARAMS if p.name not in RAMSTER_PARAMS),
    boot_params=tuple(b for b in BOOT_PARAMS if b.name not in RAMSTER_BOOT_WORDS),
    extra=dict(MODULE.extra))
