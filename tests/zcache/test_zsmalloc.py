"""zsmalloc (beyond Linux): mixed-size zspages, best fit, compaction, eviction, counters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BoundedFrames, zmod

zs_m = zmod("zsmalloc")
zpage_m = zmod("zpage")
counters_m = zmod("debug")

H = zpage_m.TMEM_HANDLE_SIZE


class Rig:
    def __init__(self, limit=1000):
        self.frames = BoundedFrames(limit)
        self.c = counters_m.Counters()
        self.flushed = []
        self.live = {}
        self.pool = zs_m.ZsmallocPool(self.frames, self.c.zcache, self.c.zbud, self._flush)

    def _flush(self, client_id, pool_id, oid, index):
        self.flushed.append((client_id, pool_id, oid, index))
        for pampd, th in list(self.live.items()):
            if th == (client_id, pool_id, oid, index):
                self.pool.free(pampd, True)  # ignored: the zspage is dying
                del self.live[pampd]

    def put(self, eph, clen, oid=1, index=0, fill=None):
        data = bytes([fill if fill is not None else (index & 0xFF)]) * clen
        pampd = self.pool.create(eph, data, oid, index, 0, 0xFFFF)
        if pampd is not None:
            self.live[pampd] = (0xFFFF, 0, oid, index)
            assert bytes(self.pool.read(pampd)) == data
        self.pool.check()
        return pampd

    def free(self, pampd):
        self.pool.free(pampd, True)
        del self.live[pampd]
        self.pool.check()


Z = zs_m.ZSPAGE_PAGES        # frames per zspage
SPAN = zs_m.ZSPAGE_SIZE


def test_layout_constants():
    assert SPAN == Z * 4096 and zs_m.MAX_ZSIZE == 4064
    assert zs_m.MAX_OBJS == 1 << zs_m._OBJ_BITS


def test_objects_pack_back_to_back_and_span_frames():
    r = Rig()
    n = SPAN // 3000                                    # 5 objects of 3000 bytes per zspage
    ps = [r.put(True, 3000 - H, index=i, fill=i) for i in range(n)]
    z = r.pool.zspage_of(ps[0])
    assert {r.pool.zspage_of(p) for p in ps} == {z}
    assert r.frames.in_use == Z
    # no size classes: each object starts where the previous one ended
    assert [off for _, off, _ in r.pool.objects(z)] == [3000 * i for i in range(n)]
    assert [bytes(r.pool.read(p)) for p in ps] == [bytes([i]) * (3000 - H) for i in range(n)]
    assert r.c.zbud.eph_buddied_count == 0 and r.c.zbud.eph_unbuddied_count == 1
    extra = r.put(True, 3000 - H, index=n)              # does not fit the 1384 bytes left
    assert r.pool.zspage_of(extra) != z and r.frames.in_use == 2 * Z
    small = r.put(True, 1000 - H, index=n + 1)          # best fit: the fuller zspage
    assert r.pool.zspage_of(small) == z
    for p in ps:
        r.free(p)
    assert r.frames.in_use == 2 * Z                     # z still holds `small`
    r.free(small)
    assert r.frames.in_use == Z


def test_best_fit_prefers_the_fullest_zspage_that_fits():
    r = Rig()
    a = [r.put(True, 4000 - H, oid=1, index=i) for i in range(4)]    # A: 384 bytes left
    b = r.put(True, 2000 - H, oid=2)                                 # B: new zspage
    za, zb = r.pool.zspage_of(a[0]), r.pool.zspage_of(b)
    assert za != zb
    assert r.pool.zspage_of(r.put(True, 300 - H, oid=3)) == za       # fits A's 384
    assert r.pool.zspage_of(r.put(True, 300 - H, oid=4, index=1)) == zb


def test_holes_are_compacted_when_the_tail_is_too_short():
    r = Rig()
    ps = [r.put(True, 3000 - H, index=i, fill=i + 1) for i in range(5)]
    z = r.pool.zspage_of(ps[0])
    r.free(ps[1])
    r.free(ps[3])                                       # holes: 2 x 3000, tail 1384
    big = r.put(True, 4000 - H, index=9, fill=0xAA)     # fits only after compaction
    assert r.pool.zspage_of(big) == z and r.frames.in_use == Z
    offs = sorted(off for _, off, _ in r.pool.objects(z))
    assert offs == [0, 3000, 6000, 9000]                # slid down, no holes
    for i in (0, 2, 4):                                 # pampds still name the same data
        assert bytes(r.pool.read(ps[i])) == bytes([i + 1]) * (3000 - H)
    assert bytes(r.pool.read(big)) == b"\xaa" * (4000 - H)
    r.free(big)                                         # the last object: the tail shrinks
    assert r.pool._tail[z] == 9000 and r.pool._free[z] == SPAN - 9000


def test_slot_table_limits_objects_per_zspage():
    r = Rig()
    ps = [r.put(True, 100 - H, index=i) for i in range(zs_m.MAX_OBJS)]
    z = r.pool.zspage_of(ps[0])
    assert {r.pool.zspage_of(p) for p in ps} == {z}
    assert r.c.zbud.eph_buddied_count == 1              # slots exhausted: full
    other = r.put(True, 100 - H, index=99)
    assert r.pool.zspage_of(other) != z
    r.free(ps[7])
    again = r.put(True, 100 - H, index=100)
    assert r.pool.zspage_of(again) in (z, r.pool.zspage_of(other))


def test_a_new_object_takes_the_lowest_free_slot():
    r = Rig()
    ps = [r.put(True, 100 - H, index=i) for i in range(5)]
    z = r.pool.zspage_of(ps[0])
    assert [p - (z << zs_m._OBJ_BITS) for p in ps] == [0, 1, 2, 3, 4]
    r.free(ps[3])
    r.free(ps[1])
    assert r.put(True, 100 - H, index=10) == ps[1]      # slot 1 before slot 3
    assert r.put(True, 100 - H, index=11) == ps[3]
    assert r.put(True, 100 - H, index=12) == (z << zs_m._OBJ_BITS) | 5


def test_denser_than_zbud_on_mid_sizes():
    r = Rig()
    for i in range(30):
        r.put(True, 1400, index=i)
    # zbud would need 15 frames for 30 zpages of 1432 bytes
    assert r.frames.in_use <= 12
    assert r.c.zbud.eph_zbytes == 30 * 1432


def test_size_policy():
    r = Rig()
    assert r.put(True, 4064) is not None
    assert r.put(True, 4065) is None
    assert r.put(False, 3585) is None
    assert r.c.zcache.compress_poor == 2


def test_eviction_of_lru_zspage():
    r = Rig(limit=2 * Z)
    n = SPAN // 3000
    a = [r.put(True, 3000 - H, oid=1, index=i) for i in range(n)]   # zspage A
    b = r.put(True, 3000 - H, oid=2, index=0)                         # zspage B
    assert r.frames.in_use == 2 * Z and r.pool.zspage_of(b) != r.pool.zspage_of(a[0])
    c = r.put(False, 2500, oid=3, index=0)        # persistent: a zspage of its own
    assert c is not None
    assert [f[2:] for f in r.flushed] == [(1, i) for i in range(n)]   # A was LRU
    zc = r.c.zcache
    assert zc.failed_getfreepages == 1 and zc.pers_ate_eph == 1
    assert zc.evicted_eph_zpages == n and zc.evicted_eph_pageframes == Z
    assert r.c.zbud.eph_evicted_pageframes == Z
    assert zc.eph_pageframes == Z and zc.pers_pageframes == Z and r.frames.in_use == 2 * Z
    per = SPAN // (2500 + H)
    more = [r.put(False, 2500, oid=3, index=i) for i in range(1, per)]
    assert {r.pool.zspage_of(p) for p in more} == {r.pool.zspage_of(c)}
    # the next persistent zspage eats B
    d = r.put(False, 2500, oid=3, index=per)
    assert d is not None and r.flushed[-1][2:] == (2, 0)
    assert zc.pers_ate_eph == 2 and zc.eph_pageframes == 0 and r.frames.in_use == 2 * Z
    for i in range(per + 1, 2 * per):
        assert r.put(False, 2500, oid=3, index=i) is not None
    assert r.put(False, 2500, oid=3, index=2 * per) is None   # persistent never evicted
    assert zc.pers_ate_eph_failed == 1 and r.frames.in_use == 2 * Z
    assert zc.pers_zpages == 2 * per


def test_shrink_and_zero():
    r = Rig()
    for i in range(8):
        r.put(True, 2000, index=i)
    r.put(False, 2000, index=100)
    frames_eph = r.c.zbud.eph_pageframes
    freed = r.pool.shrink(0)
    assert freed == frames_eph and r.c.zbud.eph_pageframes == 0
    assert len(r.flushed) == 8
    z = zpage_m.account_filled(r.c.zcache, True, zpage_m.ZERO_FILLED)
    assert z == zpage_m.ZERO_FILLED and r.c.zcache.zero_filled_pages == 1
    w = zpage_m.account_filled(r.c.zcache, True, ~0x0123456789ABCDEF)
    assert w == ~0x0123456789ABCDEF and r.c.zcache.same_filled_pages == 1
    assert r.c.zcache.eph_zpages == 2 and r.c.zbud.eph_zpages == 0
    r.pool.free(z, True)
    r.pool.free(w, True)
    assert r.c.zcache.zero_filled_pages == 0 and r.c.zcache.same_filled_pages == 0
    with pytest.raises(RuntimeError):
        r.pool.free(123 << 10, True)
    p = r.put(True, 500)
    r.free(p)
    with pytest.raises(RuntimeError):
        r.pool.free(p, True)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.floats(0.2, 0.6))
def test_random_traffic_keeps_data_and_accounting(seed, zspages, free_share):
    """Puts of random sizes and frees in random order, with compaction and
    eviction: every live pampd reads back its bytes, check() holds throughout."""
    rng = random.Random(seed)
    r = Rig(limit=zspages * Z)
    live = {}
    for n in range(300):
        if r.live and rng.random() < free_share:
            victim = rng.choice(sorted(r.live))
            r.free(victim)
            live.pop(victim)
        else:
            clen = rng.choice((rng.randint(1, 300), rng.randint(300, 2500), rng.randint(2500, 4064)))
            fill = n & 0xFF
            p = r.put(True, clen, oid=n, index=0, fill=fill)
            if p is not None:
                live[p] = bytes([fill]) * clen
        for p in [p for p in live if p not in r.live]:      # evicted
            del live[p]
        for p, data in live.items():
            assert bytes(r.pool.read(p)) == data
        assert r.frames.in_use == r.c.zcache.eph_pageframes <= zspages * Z
