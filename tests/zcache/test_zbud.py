"""zbud on its own: placement, size policy, LRU, eviction, shrinker and counters."""

from __future__ import annotations

import pytest

from conftest import BoundedFrames, zmod

zbud_m = zmod("zbud")
zpage_m = zmod("zpage")
counters_m = zmod("debug")

H = zpage_m.TMEM_HANDLE_SIZE


class Rig:
    def __init__(self, limit=1000):
        self.frames = BoundedFrames(limit)
        self.c = counters_m.Counters()
        self.flushed = []
        self.pool = zbud_m.ZbudPool(self.frames, self.c.zcache, self.c.zbud, self._flush)

    def _flush(self, client_id, pool_id, oid, index):
        self.flushed.append((client_id, pool_id, oid, index))
        # tmem frees the pampd it held: zbud must ignore it (the frame is dying)
        for pampd, th in list(self.live.items()):
            if th == (client_id, pool_id, oid, index):
                self.pool.free(pampd, True)
                del self.live[pampd]

    live: dict

    def put(self, eph, clen, oid=1, index=0, pool_id=0, fill=None):
        if not hasattr(self, "live"):
            self.live = {}
        data = bytes([fill if fill is not None else (index & 0xFF)]) * clen
        pampd = self.pool.create(eph, data, oid, index, pool_id, 0xFFFF)
        if pampd is not None:
            self.live[pampd] = (0xFFFF, pool_id, oid, index)
            assert bytes(self.pool.read(pampd)) == data
        self.pool.check()
        return pampd

    def free(self, pampd, eph=True):
        self.pool.free(pampd, eph)
        del self.live[pampd]
        self.pool.check()


def test_limits():
    assert zbud_m.NCHUNKS == 64
    assert zbud_m.MAX_BUDDY_SIZE == 63 * 64 - 32 == 4000
    assert zpage_m.MAX_ZSIZE == 3584 and zpage_m.MAX_MEAN_ZSIZE == 2560


def test_ephemeral_size_policy():
    r = Rig()
    assert r.put(True, 4000) is not None
    assert r.put(True, 4001) is None
    assert r.c.zcache.compress_poor == 1


def test_persistent_size_policy_and_mean():
    r = Rig()
    assert r.put(False, 3585) is None
    assert r.c.zcache.compress_poor == 1
    assert r.put(False, 3584, index=1) is not None   # first one: no mean yet
    assert r.put(False, 3000, index=2) is None        # mean 3584 > 2560
    assert r.c.zcache.mean_compress_poor == 1
    assert r.put(False, 2560, index=3) is not None    # small enough: mean not asked
    assert r.put(False, 100, index=4) is not None
    # mean is now (3584 + 2560 + 100) / 3 = 2081 <= 2560: large ones pass again
    assert r.put(False, 3000, index=5) is not None


def test_two_buddies_share_a_frame_and_land_at_both_ends():
    r = Rig()
    a = r.put(True, 2000, index=1, fill=0xAA)          # 2032 B -> 32 chunks
    b = r.put(True, 2000, index=2, fill=0xBB)
    assert a >> 1 == b >> 1 and (a & 1, b & 1) == (0, 1)
    assert r.frames.in_use == 1
    c = r.put(True, 2000, index=3)
    assert c >> 1 != a >> 1 and r.frames.in_use == 2
    # buddy 0 starts the frame with its handle; buddy 1 ends it
    buf, base = r.pool._offset(a >> 1, 0, 2032)
    assert base % 4096 == 0
    assert zpage_m.unpack_handle(buf, base) == (0xFFFF, 0, 1, 1)
    buf, base1 = r.pool._offset(b >> 1, 1, 2032)
    assert base1 - base == 4096 - 2048
    assert zpage_m.unpack_handle(buf, base1) == (0xFFFF, 0, 1, 2)
    zb = r.c.zbud
    assert zb.eph_buddied_count == 1 and zb.eph_unbuddied_count == 1
    assert zb.eph_zbytes == 3 * 2032 and zb.eph_zpages == 3
    assert r.c.zcache.eph_zbytes == 6000 and r.c.zcache.eph_pageframes == 2


def test_full_frame_of_64_chunks():
    r = Rig()
    a = r.put(True, 63 * 64 - H)   # 63 chunks
    b = r.put(True, 64 - H)        # 1 chunk fills the frame
    assert a >> 1 == b >> 1
    assert r.put(True, 1) >> 1 != a >> 1


def test_match_takes_the_fullest_frame_that_fits():
    r = Rig()
    a1 = r.put(True, 54 * 64 - H, index=0)      # frame A: 54 + 10 chunks
    small = r.put(True, 10 * 64 - H, index=1)
    assert small >> 1 == a1 >> 1
    big = r.put(True, 40 * 64 - H, index=2)     # frame B: 40 chunks
    r.free(a1)                                  # A keeps 10 chunks used
    mid = r.put(True, 20 * 64 - H, index=3)     # fits both: goes to the 40-chunk frame
    assert mid >> 1 == big >> 1
    wide = r.put(True, 50 * 64 - H, index=4)    # only the 10-chunk frame fits
    assert wide >> 1 == small >> 1
    assert r.frames.in_use == 2
    assert r.c.zbud.eph_buddied_count == 2


def test_kinds_never_share_frames():
    r = Rig()
    a = r.put(True, 500)
    b = r.put(False, 500, index=1)
    assert a >> 1 != b >> 1
    assert r.c.zbud.eph_pageframes == 1 and r.c.zbud.pers_pageframes == 1
    assert r.c.zcache.pers_pageframes == 1


def test_lru_moves_on_add_not_on_remove():
    r = Rig()
    a = r.put(True, 3000, index=1)
    b = r.put(True, 1500, index=2)
    c = r.put(True, 3000, index=3)
    fa, fb, fc = a >> 1, b >> 1, c >> 1
    assert r.pool.lru(True) == [fa, fb, fc]
    d = r.put(True, 1000, index=4)   # buddies with b's frame (fullest that fits)
    assert d >> 1 == fb
    assert r.pool.lru(True) == [fa, fc, fb]
    r.free(d)
    assert r.pool.lru(True) == [fa, fc, fb]


def test_free_returns_empty_frames():
    r = Rig()
    a = r.put(True, 1000, index=1)
    b = r.put(True, 1000, index=2)
    r.free(a)
    assert r.frames.in_use == 1
    assert r.c.zbud.eph_unbuddied_count == 1 and r.c.zbud.eph_buddied_count == 0
    r.free(b)
    assert r.frames.in_use == 0 and r.c.zbud.eph_pageframes == 0
    assert r.c.zcache.eph_pageframes == 0 and r.c.zcache.eph_pageframes_max == 1
    assert r.c.zbud.eph_cumul_zpages == 2 and r.c.zbud.eph_cumul_zbytes == 2 * 1032
    with pytest.raises(RuntimeError):
        r.pool.free(a, True)


def test_zero_filled_uses_no_space():
    r = Rig()
    z = zpage_m.account_filled(r.c.zcache, False, zpage_m.ZERO_FILLED)
    assert z == zpage_m.ZERO_FILLED
    assert r.frames.in_use == 0
    zc = r.c.zcache
    assert zc.zero_filled_pages == 1 and zc.pers_zpages == 1 and zc.pers_zbytes == 0
    r.pool.free(z, False)
    assert zc.zero_filled_pages == 0 and zc.pers_zpages == 0 and zc.zero_filled_pages_max == 1


def test_out_of_ram_evicts_lru_ephemeral_frame():
    r = Rig(limit=2)
    a = r.put(True, 3000, oid=10, index=1)
    b = r.put(True, 3000, oid=11, index=2)
    assert r.frames.in_use == 2
    c = r.put(True, 3000, oid=12, index=3)        # RAM full: a's frame is eaten
    assert c is not None and c >> 1 == a >> 1
    assert r.flushed == [(0xFFFF, 0, 10, 1)]
    zc = r.c.zcache
    assert zc.failed_getfreepages == 1 and zc.eph_ate_tail == 1
    assert zc.evicted_eph_zpages == 1 and zc.evicted_eph_pageframes == 1
    assert r.c.zbud.eph_evicted_pageframes == 1
    assert zc.eph_pageframes == 2 and zc.eph_zpages == 2 and zc.eph_zbytes == 6000
    assert r.pool.read(b) is not None
    # both frames have 48 chunks used: d buddies with the older list entry, b's
    d = r.put(True, 800, oid=13, index=4)
    assert d >> 1 == b >> 1
    assert r.pool.lru(True) == [c >> 1, b >> 1]
    # a persistent put eats the LRU ephemeral frame (c's)
    e = r.put(False, 3000, oid=14, index=5)
    assert e is not None and e >> 1 == c >> 1
    assert r.flushed[-1] == (0xFFFF, 0, 12, 3)
    assert zc.pers_ate_eph == 1 and zc.failed_getfreepages == 2
    # b's frame (holding b and d) is the last ephemeral one: both buddies go
    f = r.put(False, 2500, oid=15, index=6)  # under 5/8: no mean check
    assert f is not None
    assert r.flushed[-2:] == [(0xFFFF, 0, 11, 2), (0xFFFF, 0, 13, 4)]
    assert zc.evicted_eph_zpages == 4 and zc.pers_ate_eph == 2
    # nothing ephemeral is left: persistent is never evicted
    assert r.put(False, 2500, oid=16, index=7) is None
    assert zc.pers_ate_eph_failed == 1
    assert r.put(True, 3000, oid=17, index=8) is None
    assert zc.eph_ate_tail_failed == 1
    assert r.pool.read(e) is not None and r.pool.read(f) is not None
    assert zc.pers_pageframes == 2 and zc.eph_pageframes == 0
    assert r.frames.in_use == 2


def test_shrink_keeps_at_most_n_ephemeral_frames():
    r = Rig()
    for i in range(6):
        r.put(True, 3000, index=i)
    r.put(False, 3000, index=99)
    assert r.pool.shrink(2) == 4
    assert r.c.zbud.eph_pageframes == 2 and r.frames.in_use == 3
    assert [f[3] for f in r.flushed] == [0, 1, 2, 3]
    assert r.pool.shrink(0) == 2
    assert r.pool.shrink(0) == 0
    assert r.c.zbud.pers_pageframes == 1
    assert r.c.zcache.evicted_eph_pageframes == 6
    r.pool.check()


def test_arena_grows_past_one_batch():
    r = Rig(limit=10_000)
    n = zbud_m.ARENA_BATCH * 2 + 5
    pampds = [r.put(True, 3000, index=i, fill=i & 0xFF) for i in range(n)]
    assert len(r.pool._arena) == 3
    for i, p in enumerate(pampds):
        assert bytes(r.pool.read(p)) == bytes([i & 0xFF]) * 3000
    for p in pampds[::2]:
        r.free(p)
    again = [r.put(True, 3000, index=1000 + i) for i in range(10)]
    assert all(p is not None for p in again)
    assert len(r.pool._arena) == 3  # freed frame slots are reused


def test_make_zombie_lru_for_ramster():
    """RAMster's remotify takes the LRU frame off every list; frees then empty it."""
    r = Rig()
    a = r.put(False, 900, index=1)
    b = r.put(False, 900, index=2)          # buddied with a
    c = r.put(False, 900, index=3)          # a second frame
    assert r.pool.frame_of(a) == r.pool.frame_of(b) != r.pool.frame_of(c)
    zpages = r.pool.make_zombie_lru(False)
    assert [(th, len(d)) for th, d in zpages] == [((0xFFFF, 0, 1, 1), 900), ((0xFFFF, 0, 1, 2), 900)]
    assert zpages[0][1] == bytes([1]) * 900
    assert r.pool.lru(False) == [r.pool.frame_of(c)]
    assert r.c.zcache.pers_pageframes == 2
    d = r.put(False, 900, index=4)          # never placed in the zombie frame
    assert r.pool.frame_of(d) != r.pool.frame_of(a)
    r.pool.free(a, False)
    assert r.c.zcache.pers_pageframes == 2
    r.pool.free(b, False)                   # empty: the frame goes back to RAM
    assert r.c.zcache.pers_pageframes == 1
    assert r.pool.make_zombie_lru(True) == []
    e = r.pool.create(False, bytes(100), 5, 0, 0, 0xFFFF)
    r.pool.write(e, b"z" * 100)
    assert bytes(r.pool.read(e)) == b"z" * 100
    with pytest.raises(ValueError):
        r.pool.write(e, b"z" * 99)
