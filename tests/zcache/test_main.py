"""zcache-main end to end: real pages through cleancache_ops / frontswap_ops.

Nothing wrong may ever come back: every get returns a miss or exactly the last
page put under that handle; persistent pages survive any memory pressure.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pages
from conftest import BoundedFrames, zmod
from kmodemu.mm.page import Page

main_m = zmod("main")
zpage_m = zmod("zpage")
Zcache = main_m.Zcache

ZPOOLS = ["zbud", "zsmalloc"]


def key(n: int) -> bytes:
    return n.to_bytes(8, "little") + bytes(16)


def make(zpool="zbud", limit=1 << 16, **flags):
    frames = BoundedFrames(limit)
    return Zcache(frames, "zstd", zpool=zpool, **flags), frames


@pytest.fixture(params=ZPOOLS)
def zpool(request):
    return request.param


# ------------------------------------------------------------ cleancache

def test_cleancache_round_trip_every_class(zpool):
    h, frames = make(zpool)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    data = pages.corpus(120, seed=5)
    for i, d in enumerate(data):
        cc.put_page(pid, key(i // 7), i, Page(d))
    h.check()
    zc = h.counters.zcache
    stored = zc.eph_zpages
    refused = sum(1 for d in data if len(h.compressor.compress(d)) > h.zpool.max_size)
    assert stored == len(data) - refused == len(data) - zc.failed_eph_puts
    assert zc.compress_poor == refused > 0     # the random pages
    assert zc.zero_filled_pages == sum(1 for d in data if d == bytes(4096))
    hits = 0
    for i, d in enumerate(data):
        pg = Page()
        pg.was_active = False
        if cc.get_page(pid, key(i // 7), i, pg) == 0:
            assert pg.data == d and pg.was_active
            hits += 1
        # exclusive: a second get misses
        assert cc.get_page(pid, key(i // 7), i, Page()) == -1
    assert hits == stored
    h.check()
    assert frames.in_use == 0 and zc.eph_zpages == 0 and zc.obj_count == 0


def test_cleancache_pools_and_bad_arguments():
    h, _ = make()
    cc = h.cleancache_ops
    assert [cc.init_fs(4096) for _ in range(15)] == list(range(15))
    assert cc.init_shared_fs(b"u" * 16, 4096) == 15     # shared becomes private
    assert not h.tmem.get_pool(main_m.LOCAL_CLIENT, 15).shared
    assert cc.init_fs(4096) == -1                          # the 17th pool
    with pytest.raises(main_m.ZcacheBug):
        cc.init_fs(8192)
    page = Page(pages.text_page(__import__("random").Random(1)))
    cc.put_page(-1, key(1), 0, page)                       # negative ids: nothing
    cc.put_page(16, key(1), 0, page)
    assert cc.get_page(-1, key(1), 0, page) == -1
    cc.invalidate_fs(-1)
    cc.invalidate_page(-1, key(1), 0)
    cc.invalidate_inode(-1, key(1))
    assert h.counters.zcache.eph_zpages == 0
    cc.invalidate_fs(3)
    assert cc.init_fs(4096) == 3                           # the lowest free id again


def test_cleancache_32bit_index_limit():
    h, _ = make()
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    d = pages.text_page(__import__("random").Random(2))
    cc.put_page(pid, key(1), 2**32, Page(d))
    assert h.counters.zcache.eph_zpages == 0
    cc.put_page(pid, key(1), 2**32 - 1, Page(d))
    assert cc.get_page(pid, key(1), 2**32, Page()) == -1
    pg = Page()
    assert cc.get_page(pid, key(1), 2**32 - 1, pg) == 0 and pg.data == d


def test_cleancache_nonactive_pages():
    h, _ = make()
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    pg = Page(pages.zero_page())
    pg.was_active = False
    cc.put_page(pid, key(1), 0, pg)
    assert h.counters.zcache.eph_nonactive_puts_ignored == 1
    assert h.counters.zcache.eph_zpages == 0
    h2, _ = make(disable_cleancache_ignore_nonactive=True)
    pid = h2.cleancache_ops.init_fs(4096)
    h2.cleancache_ops.put_page(pid, key(1), 0, pg)
    assert h2.counters.zcache.eph_zpages == 1


def test_cleancache_invalidations_and_counters():
    h, frames = make()
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    data = pages.compressible(20, seed=9)
    for i, d in enumerate(data):
        cc.put_page(pid, key(i % 2), i, Page(d))
    zc = h.counters.zcache
    cc.invalidate_page(pid, key(0), 0)
    cc.invalidate_page(pid, key(0), 0)
    cc.invalidate_page(pid, key(0), 1)        # index 1 belongs to inode 1
    assert (zc.flush_total, zc.flush_found) == (3, 1)
    cc.invalidate_inode(pid, key(1))
    cc.invalidate_inode(pid, key(1))
    assert (zc.flobj_total, zc.flobj_found) == (2, 1)
    assert zc.eph_zpages == 9 and zc.obj_count == 1
    cc.invalidate_fs(pid)
    assert zc.eph_zpages == 0 and frames.in_use == 0 and zc.obj_count == 0
    # no pool: the counters still move as in zcache_flush_page
    cc.invalidate_page(pid, key(0), 2)
    assert (zc.flush_total, zc.flush_found) == (4, 1)
    h.check()


def test_duplicate_put_replaces(zpool):
    h, frames = make(zpool)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    a, b = pages.compressible(2, seed=4)
    cc.put_page(pid, key(1), 5, Page(a))
    cc.put_page(pid, key(1), 5, Page(b))
    cc.put_page(pid, key(1), 5, Page(bytes(4096)))
    cc.put_page(pid, key(1), 5, Page(b))
    zc = h.counters.zcache
    assert zc.eph_zpages == 1 and zc.zero_filled_pages == 0
    h.check()
    pg = Page()
    assert cc.get_page(pid, key(1), 5, pg) == 0 and pg.data == b
    assert frames.in_use == 0


# ------------------------------------------------------------ frontswap

def test_frontswap_lazy_single_pool_and_swizzle(zpool):
    h, _ = make(zpool)
    fs = h.frontswap_ops
    d = pages.compressible(1, seed=1)[0]
    assert fs.store(0, 5, Page(d)) == -1        # no init yet: pool id -1
    assert fs.load(0, 5, Page()) == -1
    h.cleancache_ops.init_fs(4096)              # cleancache pools come first
    fs.init(0)
    fs.init(1)
    assert h.frontswap_poolid == 1
    pool = h.tmem.get_pool(main_m.LOCAL_CLIENT, 1)
    assert pool.persistent
    assert fs.store(1, 0x12345, Page(d)) == 0
    assert list(pool.objs) == [(1 << 8) | 0x45]
    assert list(pool.objs[(1 << 8) | 0x45]) == [0x123]
    assert fs.store(2, 2**32, Page(d)) == -1    # offsets must fit in 32 bits
    assert fs.load(2, 2**32, Page()) == -1
    fs.invalidate_page(2, 2**32)
    pg = Page()
    assert fs.load(1, 0x12345, pg) == 0 and pg.data == d
    assert fs.load(1, 0x12345, Page()) == -1    # exclusive gets by default
    h.check()


def test_frontswap_non_exclusive_and_nonactive():
    h, _ = make(frontswap_has_exclusive_gets=False)
    fs = h.frontswap_ops
    fs.init(0)
    d = pages.compressible(1, seed=2)[0]
    assert fs.store(0, 7, Page(d)) == 0
    for _ in range(3):
        pg = Page()
        assert fs.load(0, 7, pg) == 0 and pg.data == d
    h.frontswap_has_exclusive_gets = True
    assert fs.load(0, 7, Page()) == 0
    assert fs.load(0, 7, Page()) == -1
    pg = Page(d)
    pg.was_active = False
    assert fs.store(0, 8, pg) == -main_m.ERANGE
    assert h.counters.zcache.pers_nonactive_puts_ignored == 1
    h2, _ = make(disable_frontswap_ignore_nonactive=True)
    h2.frontswap_ops.init(0)
    assert h2.frontswap_ops.store(0, 8, pg) == 0


def test_frontswap_invalidate_area_only_that_type():
    h, frames = make()
    fs = h.frontswap_ops
    fs.init(0)
    data = pages.compressible(40, seed=3)
    for off, d in enumerate(data):
        fs.store(0, off * 37, Page(d))
        fs.store(1, off * 37, Page(d))
    zc = h.counters.zcache
    fs.invalidate_area(0)
    assert zc.flobj_total == 256 and zc.pers_zpages == 40
    for off, d in enumerate(data):
        assert fs.load(0, off * 37, Page()) == -1
        pg = Page()
        assert fs.load(1, off * 37, pg) == 0 and pg.data == d
    h.check()
    assert frames.in_use == 0


def test_frontswap_refusals_count():
    h, _ = make()
    fs = h.frontswap_ops
    fs.init(0)
    rnd = pages.corpus(3, seed=1, kinds=("random",))
    for off, d in enumerate(rnd):
        assert fs.store(0, off, Page(d)) == -main_m.ENOMEM
    zc = h.counters.zcache
    assert zc.failed_pers_puts == 3 and zc.compress_poor == 3


def test_memory_pressure_never_loses_persistent(zpool):
    """Tiny RAM: cleancache fills it, then swap pages eat the ephemeral frames."""
    h, frames = make(zpool, limit=24)
    cc, fs = h.cleancache_ops, h.frontswap_ops
    pid = cc.init_fs(4096)
    fs.init(0)
    file_pages = pages.compressible(60, seed=11)
    swap_pages = pages.compressible(60, seed=12)
    for i, d in enumerate(file_pages):
        cc.put_page(pid, key(i), 0, Page(d))
    zc = h.counters.zcache
    assert zc.failed_getfreepages > 0 and zc.eph_ate_tail > 0
    stored = {}
    for off, d in enumerate(swap_pages):
        if fs.store(0, off, Page(d)) == 0:
            stored[off] = d
        h.check()
        assert frames.in_use <= 24
    assert zc.pers_ate_eph > 0 and zc.pers_ate_eph_failed > 0
    assert zc.eph_pageframes == 0           # every ephemeral frame was eaten
    for off, d in stored.items():
        pg = Page()
        assert fs.load(0, off, pg) == 0 and pg.data == d
    for i, d in enumerate(file_pages):
        pg = Page()
        if cc.get_page(pid, key(i), 0, pg) == 0:
            assert pg.data == d
    h.check()
    assert frames.in_use == 0


def test_shrink_through_host(zpool):
    h, frames = make(zpool)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    for i, d in enumerate(pages.compressible(40, seed=13)):
        cc.put_page(pid, key(i), 0, Page(d))
    before = h.counters.zcache.eph_pageframes
    freed = h.shrink(3, lru=(1, 2, 3, 4))
    zc = h.counters.zcache
    assert zc.eph_pageframes <= 3 and freed == before - zc.eph_pageframes
    assert zc.last_active_file_pageframes == 1 and zc.last_inactive_anon_pageframes == 4
    assert frames.in_use == zc.eph_pageframes
    h.check()


def test_freeze_turns_puts_into_flushes():
    h, _ = make()
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    d = pages.compressible(1)[0]
    cc.put_page(pid, key(1), 0, Page(d))
    h.freeze = True
    cc.put_page(pid, key(1), 0, Page(d))
    assert h.counters.zcache.put_to_flush == 1
    assert cc.get_page(pid, key(1), 0, Page()) == -1


def test_stats_and_unknown_zpool():
    h, _ = make()
    pid = h.cleancache_ops.init_fs(4096)
    for i, d in enumerate(pages.compressible(10)):
        h.cleancache_ops.put_page(pid, key(i), 0, Page(d))
    s = h.stats()
    assert s["zpages"] == 10 and s["pageframes"] == h.counters.zbud.eph_pageframes
    assert s["compression_ratio"] > 1.5 and 1 <= s["pages_per_frame"] <= 2
    with pytest.raises(LookupError):
        Zcache(BoundedFrames(1), "zstd", zpool="slab")
    with pytest.raises(LookupError):
        Zcache(BoundedFrames(1), "nope")


def test_counter_names_are_the_kernel_ones():
    c = zmod("debug").Counters()
    names = [n for n, _ in c.zcache.items()]
    assert names[:4] == ["obj_count", "obj_count_max", "objnode_count", "objnode_count_max"]
    assert "zero_filled_pages" in names and "failed_getfreepages" in names
    assert names[-4:] == ["eph_zbytes", "eph_zbytes_max", "pers_zbytes", "pers_zbytes_max"]
    # the 40 files of 3.10, plus one beyond Linux right after zero_filled_pages
    assert len(names) == len(set(names)) == 41
    i = names.index("zero_filled_pages")
    assert names[i + 1] == "same_filled_pages"
    assert len([n for n in names if n != "same_filled_pages"]) == 40
    zb = [n for n, _ in c.zbud.items()]
    assert len(zb) == 17 and zb[-1] == "pers_zombie_count"
    assert set(c.dirs()) == {"zcache", "zbud"}


def test_two_hosts_share_nothing():
    h1, f1 = make()
    h2, f2 = make()
    p1 = h1.cleancache_ops.init_fs(4096)
    p2 = h2.cleancache_ops.init_fs(4096)
    d = pages.compressible(1)[0]
    h1.cleancache_ops.put_page(p1, key(1), 0, Page(d))
    assert h2.cleancache_ops.get_page(p2, key(1), 0, Page()) == -1
    assert h2.counters.zcache.eph_zpages == 0 and f2.in_use == 0


# ------------------------------------------------------------ same-filled pages (beyond Linux)

#: fill words: low byte only, high bit (a large negative pampd), all ones, a
#: byte pattern, and words whose first bytes are zero (the zero check fails late)
WORDS = (1, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x0101010101010101,
         0x0123456789ABCDEF, 0x0100000000000000, 0x00000000000000FF)


def filled(word: int) -> bytes:
    return word.to_bytes(8, "little") * 512


def near_misses() -> list[bytes]:
    """Pages that look same-filled at the start but are not."""
    base = filled(0x0123456789ABCDEF)
    return [
        base[:-1] + b"\0",                                  # last byte differs
        base[:2048] + filled(0x0123456789ABCDEE)[2048:],     # second half differs
        (filled(7)[:8] + filled(9)[:8]) * 256,               # period 16, not 8
        bytes(4095) + b"\1",                                # zero but the last byte
        b"\x05" * 8 + bytes(4088),                          # data[0] == data[8] == ... no
    ]


def test_same_filled_round_trip_cleancache(zpool):
    h, frames = make(zpool)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    data = [filled(w) for w in WORDS] + [bytes(4096)] * 3 + near_misses()
    for i, d in enumerate(data):
        cc.put_page(pid, key(1), i, Page(d))
    zc = h.counters.zcache
    assert zc.same_filled_pages == len(WORDS)
    assert zc.zero_filled_pages == 3                        # Linux's counter: all-zero only
    assert zc.eph_zpages == len(data)
    # only the near misses were compressed into frames
    assert h.counters.zbud.eph_zpages == len(near_misses())
    assert h.counters.zbud.eph_cumul_zpages == len(near_misses())
    h.check()
    for i, d in enumerate(data):
        pg = Page()
        assert cc.get_page(pid, key(1), i, pg) == 0 and pg.data == d
        assert cc.get_page(pid, key(1), i, Page()) == -1    # exclusive
    assert zc.same_filled_pages == zc.zero_filled_pages == zc.eph_zpages == 0
    assert zc.same_filled_pages == 0 and frames.in_use == 0
    h.check()


def test_same_filled_use_no_space_and_no_bytes(zpool):
    h, frames = make(zpool)
    fs = h.frontswap_ops
    fs.init(0)
    for off, w in enumerate(WORDS):
        assert fs.store(0, off, Page(filled(w))) == 0
    zc = h.counters.zcache
    assert frames.in_use == 0 and zc.pers_pageframes == 0
    assert zc.pers_zbytes == 0 and h.counters.zbud.pers_zbytes == 0
    assert zc.pers_zpages == zc.pers_zpages_max == len(WORDS)
    assert zc.same_filled_pages == len(WORDS) and zc.zero_filled_pages == 0
    s = h.stats()
    assert s["zpages"] == len(WORDS) and s["pageframes"] == 0
    h.check()


def test_same_filled_frontswap_exclusive_and_not(zpool):
    h, _ = make(zpool, frontswap_has_exclusive_gets=False)
    fs = h.frontswap_ops
    fs.init(0)
    page = filled(0xDEADBEEFCAFEF00D)
    assert fs.store(0, 300, Page(page)) == 0
    zc = h.counters.zcache
    for _ in range(3):                                      # non-exclusive: kept
        pg = Page()
        assert fs.load(0, 300, pg) == 0 and pg.data == page
    assert zc.same_filled_pages == 1 and zc.pers_zpages == 1
    h.frontswap_has_exclusive_gets = True
    pg = Page()
    assert fs.load(0, 300, pg) == 0 and pg.data == page
    assert fs.load(0, 300, Page()) == -1
    assert zc.same_filled_pages == 0 and zc.pers_zpages == 0
    h.check()


def test_same_filled_pages_are_never_evicted(zpool):
    """They hold no frame, so frame eviction and the shrinker pass them by."""
    h, frames = make(zpool, limit=8)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    for i, w in enumerate(WORDS):
        cc.put_page(pid, key(100), i, Page(filled(w)))
    for i, d in enumerate(pages.compressible(80, seed=31)):
        cc.put_page(pid, key(i), 0, Page(d))
    zc = h.counters.zcache
    assert zc.evicted_eph_zpages > 0 and frames.in_use <= 8
    h.shrink(0)
    assert zc.eph_pageframes == 0 and frames.in_use == 0
    assert zc.eph_zpages == zc.same_filled_pages == len(WORDS)
    h.check()
    for i, w in enumerate(WORDS):
        pg = Page()
        assert cc.get_page(pid, key(100), i, pg) == 0 and pg.data == filled(w)
    h.check()


def test_same_filled_replace_flush_and_destroy(zpool):
    h, frames = make(zpool)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    text = pages.compressible(1, seed=8)[0]
    zc = h.counters.zcache
    cc.put_page(pid, key(1), 0, Page(filled(3)))
    cc.put_page(pid, key(1), 0, Page(text))                 # dup put: same -> compressed
    assert zc.same_filled_pages == 0 and zc.eph_zpages == 1 and frames.in_use > 0
    cc.put_page(pid, key(1), 0, Page(filled(4)))            # compressed -> same
    assert zc.same_filled_pages == 1 and zc.eph_zpages == 1 and frames.in_use == 0
    cc.put_page(pid, key(1), 0, Page(bytes(4096)))          # same -> zero
    assert (zc.same_filled_pages, zc.zero_filled_pages) == (0, 1)
    h.check()
    cc.put_page(pid, key(1), 1, Page(filled(5)))
    cc.put_page(pid, key(2), 0, Page(filled(6)))
    cc.invalidate_page(pid, key(1), 1)
    assert zc.same_filled_pages == 1
    cc.invalidate_inode(pid, key(2))
    assert zc.same_filled_pages == 0
    cc.put_page(pid, key(3), 0, Page(filled(7)))
    cc.invalidate_fs(pid)
    assert zc.same_filled_pages == zc.zero_filled_pages == zc.eph_zpages == 0
    h.check()


def test_same_filled_through_put_page_by_numbers(zpool):
    h, _ = make(zpool)
    pid = h.new_pool(main_m.LOCAL_CLIENT, main_m.TMEM_POOL_PERSIST)
    assert h.put_page(main_m.LOCAL_CLIENT, pid, 5, 6, filled(9)) == 0
    assert h.put_page(main_m.LOCAL_CLIENT, pid, 5, 7, bytes(4096)) == 0
    zc = h.counters.zcache
    assert (zc.same_filled_pages, zc.zero_filled_pages, zc.pers_zpages) == (1, 1, 2)
    assert h.get_page(main_m.LOCAL_CLIENT, pid, 5, 6, -1) == filled(9)
    assert h.get_page(main_m.LOCAL_CLIENT, pid, 5, 6, 1) == filled(9)
    assert h.get_page(main_m.LOCAL_CLIENT, pid, 5, 6, 1) is None
    assert h.get_page(main_m.LOCAL_CLIENT, pid, 5, 7, 1) == bytes(4096)
    h.check()


@pytest.mark.parametrize("zero_filled,same_filled", [(True, False), (False, True), (False, False)])
def test_flags_turn_the_shortcuts_off(zpool, zero_filled, same_filled):
    h, frames = make(zpool, zero_filled=zero_filled, same_filled=same_filled)
    assert (h.zero_filled, h.same_filled) == (zero_filled, same_filled)
    cc = h.cleancache_ops
    pid = cc.init_fs(4096)
    cc.put_page(pid, key(1), 0, Page(bytes(4096)))
    cc.put_page(pid, key(1), 1, Page(filled(0x42)))
    zc = h.counters.zcache
    assert zc.zero_filled_pages == int(zero_filled)
    assert zc.same_filled_pages == int(same_filled)
    compressed = 2 - zero_filled - same_filled
    assert h.counters.zbud.eph_zpages == compressed and (frames.in_use > 0) == bool(compressed)
    assert zc.eph_zpages == 2
    h.check()
    for i, d in enumerate((bytes(4096), filled(0x42))):
        pg = Page()
        assert cc.get_page(pid, key(1), i, pg) == 0 and pg.data == d
    assert frames.in_use == 0
    h.zero_filled = h.same_filled = True                    # switchable at run time
    cc.put_page(pid, key(1), 0, Page(bytes(4096)))
    cc.put_page(pid, key(1), 1, Page(filled(0x42)))
    assert (zc.zero_filled_pages, zc.same_filled_pages) == (1, 1) and frames.in_use == 0
    h.check()


def test_persistent_mean_rule_counts_filled_pages_as_empty():
    """Like 3.10's zero pages, same-filled pages enter the mean zsize with 0 bytes."""
    h, _ = make()
    fs = h.frontswap_ops
    fs.init(0)
    rng = __import__("random").Random(3)
    poor = [rng.randbytes(3000) + bytes(1096) for _ in range(8)]
    assert all(2560 < len(h.compressor.compress(p)) <= 3584 for p in poor)
    zc = h.counters.zcache
    assert fs.store(0, 0, Page(poor[0])) == 0
    assert fs.store(0, 1, Page(poor[1])) == -main_m.ENOMEM   # mean above 5/8 of a page
    assert zc.mean_compress_poor == 1
    assert fs.store(0, 2, Page(filled(0x77))) == 0           # mean (3000 + 0) / 2
    assert zc.pers_zbytes == len(h.compressor.compress(poor[0]))
    assert fs.store(0, 1, Page(poor[1])) == 0
    h.check()


# ------------------------------------------------------------ stateful model

PAGE_POOL = pages.corpus(24, seed=21, kinds=("zero", "same", "text", "binary", "random"),
                         weights=(2, 1, 4, 4, 1))


class HostMachine(RuleBasedStateMachine):
    """Random traffic against a dict model, with little RAM so eviction happens."""

    ZPOOL = "zbud"
    LIMIT = 6

    @initialize(exclusive=st.booleans())
    def setup(self, exclusive):
        self.frames = BoundedFrames(self.LIMIT)
        self.host = Zcache(self.frames, "zstd", zpool=self.ZPOOL,
                               frontswap_has_exclusive_gets=exclusive)
        self.cc = self.host.cleancache_ops
        self.fs = self.host.frontswap_ops
        self.cpools = [self.cc.init_fs(4096), self.cc.init_fs(4096)]
        self.fs.init(0)
        self.exclusive = exclusive
        self.eph = {}    # (pool, inode, index) -> data that may still be there
        self.pers = {}   # (type, offset) -> data that must be there

    # cleancache
    @rule(p=st.integers(0, 1), ino=st.integers(0, 3), idx=st.integers(0, 130),
          page=st.integers(0, len(PAGE_POOL) - 1))
    def cc_put(self, p, ino, idx, page):
        pid = self.cpools[p]
        self.cc.put_page(pid, key(ino), idx, Page(PAGE_POOL[page]))
        self.eph[(pid, ino, idx)] = PAGE_POOL[page]

    @rule(p=st.integers(0, 1), ino=st.integers(0, 3), start=st.integers(0, 120),
          first=st.integers(0, len(PAGE_POOL) - 1))
    def cc_fill(self, p, ino, start, first):
        for n in range(8):
            self.cc_put(p, ino, start + n, (first + n) % len(PAGE_POOL))

    @rule(p=st.integers(0, 1), ino=st.integers(0, 3), idx=st.integers(0, 130))
    def cc_get(self, p, ino, idx):
        pid = self.cpools[p]
        pg = Page()
        ret = self.cc.get_page(pid, key(ino), idx, pg)
        expect = self.eph.pop((pid, ino, idx), None)
        if ret == 0:
            assert pg.data == expect

    @rule(p=st.integers(0, 1), ino=st.integers(0, 3), idx=st.integers(0, 130))
    def cc_invalidate_page(self, p, ino, idx):
        pid = self.cpools[p]
        self.cc.invalidate_page(pid, key(ino), idx)
        self.eph.pop((pid, ino, idx), None)

    @rule(p=st.integers(0, 1), ino=st.integers(0, 3))
    def cc_invalidate_inode(self, p, ino):
        pid = self.cpools[p]
        self.cc.invalidate_inode(pid, key(ino))
        for k in [k for k in self.eph if k[:2] == (pid, ino)]:
            del self.eph[k]

    @rule(p=st.integers(0, 1))
    def cc_remount(self, p):
        pid = self.cpools[p]
        self.cc.invalidate_fs(pid)
        for k in [k for k in self.eph if k[0] == pid]:
            del self.eph[k]
        self.cpools[p] = self.cc.init_fs(4096)
        assert self.cpools[p] >= 0

    # frontswap
    @rule(t=st.integers(0, 1), off=st.one_of(st.integers(0, 600), st.integers(0, 2**32 + 5)),
          page=st.integers(0, len(PAGE_POOL) - 1))
    def fs_store(self, t, off, page):
        ret = self.fs.store(t, off, Page(PAGE_POOL[page]))
        if off >= 2**32:
            assert ret == -1
        if ret == 0:
            self.pers[(t, off)] = PAGE_POOL[page]
        else:
            # the frontend clears its bit on a failed store; zcache keeps nothing new
            self.pers.pop((t, off), None)
            self.host.frontswap_ops.invalidate_page(t, off)

    @rule(t=st.integers(0, 1), start=st.integers(0, 590),
          first=st.integers(0, len(PAGE_POOL) - 1))
    def fs_fill(self, t, start, first):
        for n in range(6):
            self.fs_store(t, start + n, (first + n) % len(PAGE_POOL))

    @rule(t=st.integers(0, 1), off=st.integers(0, 600))
    def fs_load(self, t, off):
        pg = Page()
        ret = self.fs.load(t, off, pg)
        expect = self.pers.get((t, off))
        if expect is None:
            assert ret == -1
        else:
            assert ret == 0 and pg.data == expect
            if self.exclusive:
                del self.pers[(t, off)]

    @rule(t=st.integers(0, 1), off=st.integers(0, 600))
    def fs_invalidate_page(self, t, off):
        self.fs.invalidate_page(t, off)
        self.pers.pop((t, off), None)

    @rule(t=st.integers(0, 1))
    def fs_invalidate_area(self, t):
        self.fs.invalidate_area(t)
        for k in [k for k in self.pers if k[0] == t]:
            del self.pers[k]

    @precondition(lambda self: hasattr(self, "host"))
    @rule(keep=st.integers(0, 6))
    def shrink(self, keep):
        self.host.shrink(keep)
        assert self.host.counters.zcache.eph_pageframes <= keep

    @invariant()
    def consistent(self):
        if not hasattr(self, "host"):
            return
        self.host.check()
        assert self.frames.in_use == self.host.zpool.pageframes <= self.LIMIT
        zc = self.host.counters.zcache
        assert zc.pers_zpages == len(self.pers)
        assert zc.eph_zpages <= len(self.eph)


class ZsmallocMachine(HostMachine):
    ZPOOL = "zsmalloc"


TestHostStateful = HostMachine.TestCase
TestHostStateful.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestZsmallocStateful = ZsmallocMachine.TestCase
TestZsmallocStateful.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
