"""zsmalloc (beyond Linux): size classes, spanning objects, eviction, counters."""

from __future__ import annotations

import pytest

from conftest import BoundedFrames, zmod

zs_m = zmod("zsmalloc")
zpool_m = zmod("zpool")
counters_m = zmod("counters")

H = zpool_m.TMEM_HANDLE_SIZE


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
        pampd = self.pool.create(eph, data, zpool_m.pack_handle(oid, index, 0, 0xFFFF))
        if pampd is not None:
            self.live[pampd] = (0xFFFF, 0, oid, index)
            assert bytes(self.pool.read(pampd)) == data
        self.pool.check()
        return pampd

    def free(self, pampd):
        self.pool.free(pampd, True)
        del self.live[pampd]
        self.pool.check()


def test_size_classes_follow_zsmalloc_rules():
    c = zs_m.class_of(32 + 1)
    assert c.size == 48
    huge = zs_m.class_of(4096)
    assert huge.huge and huge.pages == 1 and huge.objs == 1
    c3000 = zs_m.class_of(3000)
    # 3008 would fit 4 per 3 frames; merged with every size up to 3072 (same layout)
    assert (c3000.size, c3000.pages, c3000.objs) == (3072, 3, 4)
    assert zs_m.class_of(3008) is c3000 and zs_m.class_of(3073) is not c3000
    assert len({id(c) for c in zs_m.CLASSES}) < len(zs_m.CLASSES) // 2
    for c in zs_m.CLASSES:
        assert 1 <= c.pages <= 4 and c.objs == c.pages * 4096 // c.size
        assert c.objs * c.size <= c.pages * 4096
    assert zs_m.MAX_ZSIZE == 4064


def test_objects_span_frame_boundaries_and_round_trip():
    r = Rig()
    ps = [r.put(True, 3000 - H, index=i, fill=i) for i in range(4)]
    assert len({p >> 10 for p in ps}) == 1          # one zspage of 3 frames
    assert r.frames.in_use == 3
    assert [bytes(r.pool.read(p)) for p in ps] == [bytes([i]) * (3000 - H) for i in range(4)]
    assert r.c.zbud.eph_buddied_count == 1 and r.c.zbud.eph_unbuddied_count == 0
    p5 = r.put(True, 3000 - H, index=5)
    assert p5 >> 10 != ps[0] >> 10 and r.frames.in_use == 6
    for p in ps:
        r.free(p)
    assert r.frames.in_use == 3


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
    r = Rig(limit=4)
    a = [r.put(True, 3000 - H, oid=1, index=i) for i in range(4)]   # zspage A: 3 frames
    b = r.put(True, 2048 - H, oid=2, index=0)                        # zspage B: 1 frame
    assert r.frames.in_use == 4 and b >> 10 != a[0] >> 10
    # persistent 2532-byte objects: 3 per zspage of 2 frames
    assert zs_m.class_of(2532).pages == 2 and zs_m.class_of(2532).objs == 3
    c = r.put(False, 2500, oid=3, index=0)
    assert c is not None
    assert [f[2:] for f in r.flushed] == [(1, 0), (1, 1), (1, 2), (1, 3)]   # A was LRU
    zc = r.c.zcache
    assert zc.failed_getfreepages == 1 and zc.pers_ate_eph == 1
    assert zc.evicted_eph_zpages == 4 and zc.evicted_eph_pageframes == 3
    assert r.c.zbud.eph_evicted_pageframes == 3
    assert zc.eph_pageframes == 1 and zc.pers_pageframes == 2 and r.frames.in_use == 3
    assert r.put(False, 2500, oid=3, index=1) >> 10 == c >> 10
    assert r.put(False, 2500, oid=3, index=2) >> 10 == c >> 10
    # the next zspage gets the last free frame, then eats B for the second
    d = r.put(False, 2500, oid=3, index=3)
    assert d is not None and r.flushed[-1][2:] == (2, 0)
    assert zc.pers_ate_eph == 2 and zc.eph_pageframes == 0 and r.frames.in_use == 4
    r.put(False, 2500, oid=3, index=4)
    r.put(False, 2500, oid=3, index=5)
    assert r.put(False, 2500, oid=3, index=6) is None   # persistent never evicted
    assert zc.pers_ate_eph_failed == 1 and r.frames.in_use == 4
    assert zc.pers_zpages == 6


def test_shrink_and_zero():
    r = Rig()
    for i in range(8):
        r.put(True, 2000, index=i)
    r.put(False, 2000, index=100)
    frames_eph = r.c.zbud.eph_pageframes
    freed = r.pool.shrink(0)
    assert freed == frames_eph and r.c.zbud.eph_pageframes == 0
    assert len(r.flushed) == 8
    z = r.pool.create_zero(True)
    assert z == zpool_m.ZERO_FILLED and r.c.zcache.zero_filled_pages == 1
    r.pool.free(z, True)
    assert r.c.zcache.zero_filled_pages == 0
    with pytest.raises(RuntimeError):
        r.pool.free(123 << 10, True)
