"""``read_and_free``, the one call a freeing get makes, against ``read`` then ``free``.

Two allocators of the same kind get the same traffic; on every freeing get one
of them reads then frees, the other calls ``read_and_free``. The bytes handed
back, the counters, the frames and the allocator's own invariants must agree
after every step — including pampds of a frame being evicted and bad pampds.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BoundedFrames, zmod

zbud_m = zmod("zbud")
zsmalloc_m = zmod("zsmalloc")
counters_m = zmod("debug")

POOLS = {"zbud": zbud_m.ZbudPool, "zsmalloc": zsmalloc_m.ZsmallocPool}


class Side:
    """One allocator with its counters and a bounded RAM (so eviction happens)."""

    def __init__(self, kind: str, limit: int, fused: bool):
        self.fused = fused
        self.dying = 0  # frees of zpages whose frame was being evicted
        self._oid: dict[int, int] = {}
        self.frames = BoundedFrames(limit)
        self.c = counters_m.Counters()
        self.live: dict[int, bytes] = {}
        self.pool = POOLS[kind](self.frames, self.c.zcache, self.c.zbud, self._flush)

    def _flush(self, client_id, pool_id, oid, index):
        # tmem frees what it held for an evicted zpage; the allocator ignores it
        for pampd in [p for p in self.live if self._oid[p] == oid]:
            self.dying += 1
            if self.fused:
                assert self.pool.read_and_free(pampd, True) is None  # the frame is dying
            else:
                assert self.pool.read(pampd) is None
                self.pool.free(pampd, True)
            del self.live[pampd]
            del self._oid[pampd]

    def put(self, eph: bool, data: bytes, oid: int) -> int | None:
        pampd = self.pool.create(eph, data, oid, 0, 0, 0xFFFF)
        if pampd is not None:
            self.live[pampd] = data
            self._oid[pampd] = oid
        return pampd

    def state(self):
        return (self.c.zcache.as_dict(), self.c.zbud.as_dict(), sorted(self.frames.used),
                sorted(self.live))


def _sha(buf) -> str:
    return hashlib.sha256(bytes(buf)).hexdigest()


@pytest.mark.parametrize("kind", sorted(POOLS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_read_and_free_is_read_then_free(kind, data):
    limit = data.draw(st.integers(2, 12), label="frames")
    a, b = Side(kind, limit, False), Side(kind, limit, True)
    for step in range(data.draw(st.integers(1, 120), label="steps")):
        if a.live and data.draw(st.booleans(), label="get"):
            pampd = data.draw(st.sampled_from(sorted(a.live)), label="pampd")
            eph = data.draw(st.booleans(), label="eph flag")  # the frame decides; the flag must not
            want = a.live.pop(pampd)
            del a._oid[pampd], b._oid[pampd]
            got_a = a.pool.read(pampd)
            a.pool.free(pampd, eph)
            got_b = b.pool.read_and_free(pampd, eph)
            b.live.pop(pampd)
            assert type(got_b) is bytearray
            assert _sha(got_a) == _sha(got_b) == _sha(want)
        else:
            eph = data.draw(st.booleans(), label="ephemeral")
            size = data.draw(st.integers(1, 4000), label="clen")
            page = bytes([step & 0xFF]) * size
            assert a.put(eph, page, step) == b.put(eph, page, step)
        a.pool.check()
        b.pool.check()
        assert a.state() == b.state()


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_read_and_free_errors_match_free(kind):
    side = Side(kind, 8, True)
    p = side.put(True, b"x" * 500, 1)
    q = side.put(True, b"y" * 700, 2)
    assert bytes(side.pool.read_and_free(p, True)) == b"x" * 500
    with pytest.raises(RuntimeError, match="double free|unused"):
        side.pool.read_and_free(p, True)
    assert side.pool.read_and_free(q, True, False) is None  # copy=False: free() itself
    assert side.pool.stats()["zpages"] == 0 and side.frames.in_use == 0
    # metadata-only pampds are zcache's: nothing to copy, only unaccounted
    zc = side.c.zcache
    zc.eph_zpages = zc.zero_filled_pages = 1
    assert side.pool.read_and_free(-1, True) is None
    assert (zc.eph_zpages, zc.zero_filled_pages) == (0, 0)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_read_and_free_of_an_evicted_frame_returns_nothing_and_frees_nothing(kind):
    """RAM for one zspage (or four zbud frames): ephemeral puts evict, and tmem's
    frees of the evicted zpages reach read_and_free while their frame is dying."""
    side = Side(kind, 4, True)
    for n in range(20):
        side.put(True, bytes([n]) * 3000, n)
        side.pool.check()
    assert side.dying > 0
    assert side.c.zcache.evicted_eph_zpages == side.dying
    for pampd, data in side.live.items():  # what is left is intact
        assert bytes(side.pool.read(pampd)) == data
