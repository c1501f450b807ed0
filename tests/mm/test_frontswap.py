"""Frontswap frontend: mm/frontswap.c behaviour, the per-device lazy-init states and the edge cases
of docs/frontends.md (3.10 and 3.9)."""

from __future__ import annotations

import errno

import pytest

from kmodemu.errors import KernelError
from kmodemu.hookspecs import hookimpl
from kmodemu.mm.frontswap import MAX_SWAPFILES, Frontswap, is_err
from kmodemu.mm.frontswap import test_bit as bit_set
from kmodemu.mm.page import Page

from .fakes import FakeBackend, page_of, swapon_stub


@pytest.fixture
def fs(kernel):
    """A standalone frontend on a booted kernel (its own swap_info; no swap layer)."""
    return Frontswap(kernel)


@pytest.fixture
def fs39(kernel39):
    return Frontswap(kernel39)


def bits(sis) -> int:
    return sum(bin(b).count("1") for b in sis.frontswap_map)


def test_defines_and_initial_state(fs, fs39):
    assert MAX_SWAPFILES == 29
    assert fs.FRONTSWAP_HAS_LAZY_INIT is True and fs39.FRONTSWAP_HAS_LAZY_INIT is False
    assert fs.FRONTSWAP_HAS_EXCLUSIVE_GETS is True
    assert fs.counters() == {"loads": 0, "succ_stores": 0, "failed_stores": 0, "invalidates": 0}


def test_swapon_before_backend_is_pending_then_replayed_in_type_order(kernel, fs):
    events = []

    class Obs:
        @hookimpl
        def kmodemu_tmem_replay(self, kernel, frontend, index, shared, pool_id):
            events.append((frontend, index))

    kernel.pm.register(Obs())
    s3 = swapon_stub(fs, 3)
    s0 = swapon_stub(fs, 0)
    assert s3.frontswap_map is not None and s0.frontswap_map is not None  # map kept regardless
    assert fs.pending_types() == [0, 3]
    b = FakeBackend()
    seen = []
    orig = b.init
    b.init = lambda t: (seen.append(fs.ops), orig(t))[1]
    assert fs.register_ops(b) is None
    assert b.log == [("init", 0), ("init", 3)] and seen == [None, None]
    assert fs.pending_types() == [] and fs.ops is b
    assert events == [("frontswap", 0), ("frontswap", 3)]


def test_pending_device_does_nothing(fs):
    """A device swapon'd before any backend (need_init set): store/load/invalidate fail or do nothing, counting nothing."""
    sis = swapon_stub(fs, 0)
    assert fs.store(0, 5, page_of(1)) == -1
    assert fs.load(0, 5, Page()) == -1
    fs.invalidate_page(0, 5)
    assert fs.counters() == {"loads": 0, "succ_stores": 0, "failed_stores": 0, "invalidates": 0}
    assert bits(sis) == 0 and sis.frontswap_pages == 0


def test_store_load_invalidate_with_exact_counters(fs, backend):
    fs.register_ops(backend)
    sis = swapon_stub(fs, 0)
    assert backend.log == [("init", 0)]
    assert fs.store(0, 7, page_of(4)) == 0
    assert bit_set(sis.frontswap_map, 7) and sis.frontswap_pages == 1
    p = Page()
    assert fs.load(0, 7, p) == 0 and p.data == bytes([4]) * 4096 and not p.dirty
    assert fs.load(0, 8, Page()) == -1  # bit not set: backend not asked
    fs.invalidate_page(0, 7)
    fs.invalidate_page(0, 7)  # second time: bit clear, nothing
    assert fs.counters() == {"loads": 1, "succ_stores": 1, "failed_stores": 0, "invalidates": 1}
    assert sis.frontswap_pages == 0 and bits(sis) == 0
    assert [c for c in backend.log if c[0] in ("load", "invalidate_page")] == [
        ("load", 0, 7), ("invalidate_page", 0, 7)]


def test_swapoff_before_registration_clears_need_init(fs, backend):
    """edge case 7: no backend call; the replay skips the type; swapon again sets it again."""
    swapon_stub(fs, 1)
    fs.invalidate_area(1)
    assert fs.pending_types() == []
    swapon_stub(fs, 2)
    fs.invalidate_area(2)
    swapon_stub(fs, 2)
    fs.register_ops(backend)
    assert backend.log == [("init", 2)]


def test_map_allocation_failure_warns_and_is_not_recorded(kernel, fs):
    """edge case 8 first half: a NULL map at swapon → WARN, no need_init."""
    sis = swapon_stub(fs, 0, with_map=False)
    assert sis.frontswap_map is None and fs.pending_types() == []
    assert "WARNING: at mm/frontswap.c __frontswap_init" in kernel.dmesg()
    assert "W" in kernel.taint.letters()
    b = FakeBackend()
    fs.register_ops(b)
    assert b.log == [] and fs.store(0, 1, page_of(1)) == -1


def test_register_fails_with_einval_part_way(fs, backend):
    """edge case 8 second half: earlier types init'ed, ops not installed, ERR_PTR(-EINVAL)."""
    swapon_stub(fs, 0)
    broken = swapon_stub(fs, 1)
    swapon_stub(fs, 2)
    broken.frontswap_map = None  # the recorded type lost its map
    old = fs.register_ops(backend)
    assert is_err(old) and isinstance(old, KernelError) and old.errno == errno.EINVAL
    assert backend.log == [("init", 0)]
    assert fs.ops is None
    assert fs.pending_types() == [2]  # bits 0 and 1 were test-and-cleared
    assert not is_err(None) and not is_err(backend)


def test_second_backend_replaces_without_replay(fs):
    """edge case 6."""
    b1, b2 = FakeBackend("b1"), FakeBackend("b2")
    swapon_stub(fs, 0)
    fs.register_ops(b1)
    assert fs.register_ops(b2) is b1
    assert b2.log == [] and fs.ops is b2
    fs.store(0, 3, page_of(1))
    assert b2.calls("store") == [("store", 0, 3)] and b1.calls("store") == []


def test_duplicate_store_success_and_failure(fs, backend):
    """edge case 11: failure clears the bit and the count but the backend is not told."""
    fs.register_ops(backend)
    sis = swapon_stub(fs, 0)
    assert fs.store(0, 4, page_of(1)) == 0
    assert fs.store(0, 4, page_of(2)) == 0   # dup success: bit and count unchanged
    assert sis.frontswap_pages == 1 and bits(sis) == 1
    backend.reject_stores = True
    assert fs.store(0, 4, page_of(3)) == -1  # dup failure
    assert sis.frontswap_pages == 0 and bits(sis) == 0
    assert backend.calls("invalidate_page") == [] and (0, 4) in backend.swap  # stale copy stays
    assert fs.store(0, 5, page_of(3)) == -1  # plain failure: nothing to clear
    assert sis.frontswap_pages == 0
    assert fs.counters() == {"loads": 0, "succ_stores": 2, "failed_stores": 2, "invalidates": 0}


def test_writethrough_reports_failure_but_keeps_page(fs, backend):
    """edge case 12."""
    fs.register_ops(backend)
    sis = swapon_stub(fs, 0)
    fs.writethrough(True)
    assert fs.store(0, 1, page_of(5)) == -1
    assert bit_set(sis.frontswap_map, 1) and sis.frontswap_pages == 1
    assert fs.counters()["succ_stores"] == 1 and fs.counters()["failed_stores"] == 0
    p = Page()
    assert fs.load(0, 1, p) == 0 and p.data == bytes([5]) * 4096


def test_exclusive_gets_310(fs, backend):
    """edge case 13: the bit is cleared, the count decremented, the page dirtied."""
    fs.register_ops(backend)
    fs.tmem_exclusive_gets(True)
    sis = swapon_stub(fs, 0)
    fs.store(0, 2, page_of(6))
    p = Page()
    assert fs.load(0, 2, p) == 0 and p.dirty
    assert sis.frontswap_pages == 0 and bits(sis) == 0
    fs.invalidate_page(0, 2)  # nothing left to invalidate
    assert fs.counters()["invalidates"] == 0


def test_exclusive_gets_39_clears_only_the_bit(fs39, backend):
    fs39.register_ops(backend)
    fs39.tmem_exclusive_gets(True)
    sis = swapon_stub(fs39, 0)
    fs39.store(0, 2, page_of(6))
    p = Page()
    assert fs39.load(0, 2, p) == 0 and p.dirty
    assert bits(sis) == 0 and sis.frontswap_pages == 1  # the pre-3.10 count drift


def test_invalidate_area_with_backend(fs, backend):
    fs.register_ops(backend)
    sis = swapon_stub(fs, 0)
    for off in (1, 2, 3):
        fs.store(0, off, page_of(off))
    fs.invalidate_area(0)
    assert backend.calls("invalidate_area") == [("invalidate_area", 0)]
    assert sis.frontswap_pages == 0 and bits(sis) == 0
    assert fs.counters()["invalidates"] == 0  # area invalidations are not counted


def test_invalidate_area_with_detached_map_returns_early(fs, backend):
    """edge case 19: the backend is not called and need_init is not cleared."""
    fs.register_ops(backend)
    sis = swapon_stub(fs, 4)
    fs.need_init |= 1 << 4  # as if recorded
    sis.frontswap_map = None
    fs.invalidate_area(4)
    assert backend.calls("invalidate_area") == [] and fs.pending_types() == [4]


def test_no_backend_counts_nothing(fs):
    """edge case 5 (3.10): no failed_stores without a backend."""
    sis = swapon_stub(fs, 0)
    for off in range(5):
        assert fs.store(0, off, page_of(1)) == -1
    assert fs.counters() == {"loads": 0, "succ_stores": 0, "failed_stores": 0, "invalidates": 0}
    assert sis.frontswap_pages == 0


def test_device_state_machine(fs, backend):
    """Device states OFF→PENDING→ACTIVE→OFF and OFF→ACTIVE (__frontswap_init, frontswap_register_ops, __frontswap_invalidate_area)."""
    sis = swapon_stub(fs, 0)                 # OFF --swapon, no backend--> PENDING
    assert fs.pending_types() == [0]
    fs.register_ops(backend)                 # PENDING --register--> ACTIVE
    assert backend.log == [("init", 0)]
    fs.store(0, 1, page_of(1))
    fs.invalidate_area(0)                    # ACTIVE --swapoff--> OFF
    sis.frontswap_map = None
    fs.swap_info[0] = None
    swapon_stub(fs, 0)                       # OFF --swapon, backend--> ACTIVE
    assert backend.log[-1] == ("init", 0) and fs.pending_types() == []


def test_curr_pages_and_shrink_one_device_per_call(fs, backend):
    """edge case 15 with a stand-in swap layer recording try_to_unuse."""
    fs.register_ops(backend)
    a = swapon_stub(fs, 0)
    b = swapon_stub(fs, 1)
    for off in range(1, 6):
        fs.store(0, off, page_of(1))
    for off in range(1, 4):
        fs.store(1, off, page_of(1))
    assert fs.curr_pages() == 8 and a.frontswap_pages == 5 and b.frontswap_pages == 3

    class SwapStub:
        refused: set[int] = set()
        unused: list[tuple] = []

        def swap_list(self):
            return [0, 1]

        def enough_memory(self, pages):
            return pages not in self.refused

        def try_to_unuse(self, type, frontswap, pages):
            self.unused.append((type, frontswap, pages))

    stub = SwapStub()
    fs.swap = stub
    fs.shrink(8)
    fs.shrink(100)
    assert stub.unused == []                 # target ≥ current: no-op
    fs.shrink(6)
    assert stub.unused == [(0, True, 2)]     # device 0 holds more than needed: unuse exactly 2
    fs.shrink(0)
    assert stub.unused[-1] == (0, True, 0)   # needs 8 ≥ 5: all of device 0, one device only
    stub.refused = {5}
    fs.shrink(0)
    assert stub.unused[-1] == (1, True, 0)   # device 0 refused for memory: skipped
    stub.refused = {5, 3}
    n = len(stub.unused)
    fs.shrink(0)
    assert len(stub.unused) == n             # none suitable


def test_shrink_picks_an_empty_device_first(fs, backend):
    """An empty device at the head of the list passes the memory check with 0 pages."""
    fs.register_ops(backend)
    swapon_stub(fs, 0)
    swapon_stub(fs, 1)
    fs.store(1, 1, page_of(1))
    unused = []

    class SwapStub:
        def swap_list(self):
            return [0, 1]

        def enough_memory(self, pages):
            return True

        def try_to_unuse(self, type, frontswap, pages):
            unused.append((type, pages))

    fs.swap = SwapStub()
    fs.shrink(0)
    assert unused == [(0, 0)]


# -- 3.9: no lazy init -------------------------------------------------------------------

def test_39_device_enabled_before_backend_gets_no_map_and_no_replay(fs39, backend):
    early = swapon_stub(fs39, 0)
    assert early.frontswap_map is None and not fs39.map_wanted()
    assert fs39.store(0, 1, page_of(1)) == -1  # not enabled yet
    assert fs39.register_ops(backend) is None
    assert backend.log == []  # no replay
    late = swapon_stub(fs39, 1)
    assert late.frontswap_map is not None and backend.log == [("init", 1)]
    assert fs39.store(1, 1, page_of(2)) == 0 and late.frontswap_pages == 1
    p = Page()
    assert fs39.load(1, 1, p) == 0 and p.data == bytes([2]) * 4096


def test_39_store_to_mapless_device_reaches_backend_but_is_never_loaded(fs39, backend):
    """The pre-patch hazard: the page is taken but no bit records it."""
    early = swapon_stub(fs39, 0)
    fs39.register_ops(backend)
    assert fs39.store(0, 3, page_of(8)) == 0
    assert (0, 3) in backend.swap and early.frontswap_pages == 1
    assert fs39.load(0, 3, Page()) == -1
    fs39.invalidate_page(0, 3)
    fs39.invalidate_area(0)
    assert backend.calls("invalidate_page") == [] and backend.calls("invalidate_area") == []
    assert fs39.counters() == {"loads": 0, "succ_stores": 1, "failed_stores": 0, "invalidates": 0}


def test_39_counts_failed_stores_only_with_backend(fs39):
    fs39.register_ops(FakeBackend(reject_stores=True))
    swapon_stub(fs39, 0)
    assert fs39.store(0, 1, page_of(1)) == -1
    assert fs39.counters()["failed_stores"] == 1


def test_kernel_exports_frontend_symbols(kernel, backend):
    k = kernel
    for sym in ("cleancache_register_ops", "frontswap_register_ops", "frontswap_writethrough",
                "frontswap_tmem_exclusive_gets", "frontswap_shrink", "frontswap_curr_pages"):
        assert k.modules.owner_of(sym) == ""
    assert k.modules.symbol_value("frontswap_register_ops")(backend) is None
    k.modules.symbol_value("frontswap_writethrough")(True)
    k.modules.symbol_value("frontswap_tmem_exclusive_gets")(True)
    assert k.frontswap.writethrough_enabled and k.frontswap.exclusive_gets_enabled
    assert k.modules.symbol_value("frontswap_curr_pages")() == 0
    assert k.read("/sys/kernel/debug/frontswap/succ_stores") == "0\n"


def test_large_offsets_and_indices_pass_through_unchanged(fs, backend):
    """edge case 14 is the backend's business: the frontends hand any offset/index on as is."""
    from kmodemu.mm.cleancache import Cleancache

    from .fakes import inode_stub, sb_stub

    fs.register_ops(backend)
    swapon_stub(fs, 0, pages=64)
    fs.store(0, 63, page_of(1))
    assert backend.calls("store") == [("store", 0, 63)]
    cc = Cleancache(None)
    cc.register_ops(backend)
    sb = sb_stub()
    cc.init_fs(sb)
    big = 1 << 33
    cc.put_page(inode_stub(sb), big, page_of(2))
    assert cc.get_page(inode_stub(sb), big, Page()) == 0
    assert backend.calls("put_page")[0][3] == big


def test_no_backend_ever_keeps_recording(fs):
    """edge case 17: without a registration the frontends keep pending state for ever."""
    from kmodemu.mm.cleancache import Cleancache

    from .fakes import sb_stub

    cc = Cleancache(None)
    for round_ in range(3):
        sbs = [sb_stub() for _ in range(5)]
        for sb in sbs:
            cc.init_fs(sb)
        assert cc.fs_poolid_map[:5] == [-1] * 5
        for sb in sbs:
            cc.invalidate_fs(sb)
        swapon_stub(fs, round_)
    assert fs.pending_types() == [0, 1, 2] and cc.fs_poolid_map == [-2] * 32
