"""Cleancache frontend: mm/cleancache.c behaviour, the slot state machine and the edge cases of
docs/frontends.md (3.10 and 3.9)."""

from __future__ import annotations

import pytest

from kmodemu.hookspecs import hookimpl
from kmodemu.mm.cleancache import (FAKE_FS_POOLID_OFFSET, FAKE_SHARED_FS_POOLID_OFFSET,
                                   FS_NO_BACKEND, FS_UNKNOWN, MAX_INITIALIZABLE_FS, Cleancache,
                                   ino_filekey)
from kmodemu.mm.page import PAGE_SIZE, Page

from .fakes import FakeBackend, inode_stub, page_of, sb_stub

UUID = bytes(range(16))


@pytest.fixture
def cc(kernel):
    return kernel.cleancache


def counters(cc):
    return cc.counters()


def test_constants_and_initial_state(cc):
    assert (MAX_INITIALIZABLE_FS, FAKE_FS_POOLID_OFFSET, FAKE_SHARED_FS_POOLID_OFFSET) == (32, 1000, 2000)
    assert (FS_NO_BACKEND, FS_UNKNOWN) == (-1, -2)
    assert cc.fs_poolid_map == [FS_UNKNOWN] * 32 and cc.shared_fs_poolid_map == [FS_UNKNOWN] * 32
    assert cc.ops is None and cc.CLEANCACHE_HAS_LAZY_INIT is True
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}


def test_filekey_is_ino_first_zero_padded():
    key = ino_filekey(0x1122334455)
    assert len(key) == 24 and key[:8] == (0x1122334455).to_bytes(8, "little") and key[8:] == bytes(16)


def test_mount_without_backend_takes_fake_ids(cc):
    a, b, s = sb_stub(), sb_stub(), sb_stub()
    cc.init_fs(a)
    cc.init_fs(b)
    cc.init_shared_fs(UUID, s)
    assert (a.cleancache_poolid, b.cleancache_poolid, s.cleancache_poolid) == (1000, 1001, 2000)
    assert cc.fs_poolid_map[:3] == [FS_NO_BACKEND, FS_NO_BACKEND, FS_UNKNOWN]
    assert cc.shared_fs_poolid_map[0] == FS_NO_BACKEND and cc.uuids[0] is UUID


def test_register_replays_by_slot_interleaving_private_and_shared(kernel, cc):
    events = []

    class Obs:
        @hookimpl
        def kmodemu_tmem_replay(self, kernel, frontend, index, shared, pool_id):
            events.append((frontend, index, shared, pool_id))

        @hookimpl
        def kmodemu_tmem_backend_registered(self, kernel, frontend, ops, old):
            events.append(("registered", frontend, ops, old))

    kernel.pm.register(Obs())
    p0, s0, p1, s1 = sb_stub(), sb_stub(), sb_stub(), sb_stub()
    cc.init_fs(p0)
    cc.init_fs(p1)
    cc.init_shared_fs(UUID, s0)
    uuid2 = bytes(16)
    cc.init_shared_fs(uuid2, s1)
    b = FakeBackend()
    seen_ops_during_replay = []
    orig = b.init_fs
    b.init_fs = lambda ps: (seen_ops_during_replay.append(cc.ops), orig(ps))[1]
    assert cc.register_ops(b) is None
    assert [c[0] for c in b.log] == ["init_fs", "init_shared_fs", "init_fs", "init_shared_fs"]
    assert b.log[1][1] is UUID and b.log[3][1] is uuid2 and b.log[0][1] == PAGE_SIZE
    assert seen_ops_during_replay == [None, None]  # edge case 9: ops published only after the replay
    assert cc.fs_poolid_map[:2] == [0, 2] and cc.shared_fs_poolid_map[:2] == [1, 3]
    # the superblocks keep their fake ids; only the map changed
    assert (p0.cleancache_poolid, s0.cleancache_poolid) == (1000, 2000)
    assert events == [("cleancache", 0, False, 0), ("cleancache", 0, True, 1),
                      ("cleancache", 1, False, 2), ("cleancache", 1, True, 3),
                      ("registered", "cleancache", b, None)]


def test_init_with_backend_goes_straight_to_backend(cc, backend):
    cc.register_ops(backend)
    sb = sb_stub()
    cc.init_fs(sb)
    assert sb.cleancache_poolid == 1000 and cc.fs_poolid_map[0] == 0
    assert backend.log == [("init_fs", PAGE_SIZE, 0)]


def test_put_get_round_trip_and_exact_counters(cc, backend):
    cc.register_ops(backend)
    sb = sb_stub()
    cc.init_fs(sb)
    ino = inode_stub(sb)
    cc.put_page(ino, 3, page_of(7))
    p = Page()
    assert cc.get_page(ino, 3, p) == 0 and p.data == bytes([7]) * 4096
    assert cc.get_page(ino, 3, Page()) == -1  # exclusive: the hit removed it
    cc.invalidate_page(ino, 3)
    cc.invalidate_inode(ino)
    assert counters(cc) == {"succ_gets": 1, "failed_gets": 1, "puts": 1, "invalidates": 1}
    assert backend.calls("invalidate_inode") == [("invalidate_inode", 0, ino.cleancache_key)]


def test_debugfs_files_show_live_counters(kernel, cc):
    sb = sb_stub()
    cc.init_fs(sb)
    cc.put_page(inode_stub(sb), 0, page_of(1))
    assert kernel.vfs.listdir("/sys/kernel/debug/cleancache") == ["succ_gets", "failed_gets", "puts",
                                                                  "invalidates"]
    assert kernel.read("/sys/kernel/debug/cleancache/puts") == "1\n"
    assert kernel.vfs.mode("/sys/kernel/debug/cleancache/puts") & 0o777 == 0o444


def test_counters_without_backend(cc):
    """edge case 5: puts and failed_gets move although nothing is stored; invalidates do not."""
    sb = sb_stub()
    cc.init_fs(sb)
    ino = inode_stub(sb)
    cc.put_page(ino, 0, page_of(1))
    cc.put_page(ino, 1, page_of(1))
    assert cc.get_page(ino, 0, Page()) == -1
    cc.invalidate_page(ino, 0)
    cc.invalidate_inode(ino)
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 1, "puts": 2, "invalidates": 0}


def test_key_failure_skips_ops_and_counts_nothing(cc, backend):
    cc.register_ops(backend)
    sb = sb_stub()
    cc.init_fs(sb)
    ino = inode_stub(sb, key=None)
    cc.put_page(ino, 0, page_of(1))
    assert cc.get_page(ino, 0, Page()) == -1
    cc.invalidate_page(ino, 0)
    cc.invalidate_inode(ino)
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}
    assert [c[0] for c in backend.log] == ["init_fs"]


def test_33rd_filesystem_gets_no_slot_before_or_after_registration(cc, backend):
    """edge case 1: the 33rd stays at -1 forever; its hooks are filtered out; shared counts apart."""
    sbs = [sb_stub() for _ in range(32)]
    for sb in sbs:
        cc.init_fs(sb)
    late = sb_stub()
    cc.init_fs(late)
    assert late.cleancache_poolid == -1
    shared = [sb_stub() for _ in range(32)]
    for sb in shared:
        cc.init_shared_fs(UUID, sb)
    assert [s.cleancache_poolid for s in shared] == list(range(2000, 2032))
    cc.register_ops(backend)
    assert late.cleancache_poolid == -1
    after = sb_stub()
    cc.init_fs(after)  # limit applies with a backend too
    assert after.cleancache_poolid == -1
    for sb in (late, after):
        ino = inode_stub(sb)
        cc.put_page(ino, 0, page_of(1))
        assert cc.get_page(ino, 0, Page()) == -1
        cc.invalidate_page(ino, 0)
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}
    assert len(backend.calls("init_fs")) == 32 and len(backend.calls("init_shared_fs")) == 32


def test_umount_before_registration_frees_slot_for_reuse(cc, backend):
    """edge case 2: mount → umount → register."""
    a, b = sb_stub(), sb_stub()
    cc.init_fs(a)
    cc.init_fs(b)
    cc.invalidate_fs(a)
    assert a.cleancache_poolid == -1 and cc.fs_poolid_map[0] == FS_UNKNOWN
    c = sb_stub()
    cc.init_fs(c)
    assert c.cleancache_poolid == 1000  # the fake id is reused
    cc.invalidate_fs(c)
    cc.register_ops(backend)
    assert backend.log == [("init_fs", PAGE_SIZE, 0)]  # only b's slot was replayed
    assert cc.fs_poolid_map[:2] == [FS_UNKNOWN, 0]


def test_umount_after_registration_invalidates_real_pool(cc, backend):
    """mount → register → umount and register → mount → umount (__cleancache_invalidate_fs)."""
    a = sb_stub()
    cc.init_fs(a)
    cc.register_ops(backend)
    b = sb_stub()
    cc.init_fs(b)
    cc.invalidate_fs(a)
    cc.invalidate_fs(b)
    assert backend.calls("invalidate_fs") == [("invalidate_fs", 0), ("invalidate_fs", 1)]
    assert cc.fs_poolid_map[:2] == [FS_UNKNOWN, FS_UNKNOWN]
    # slot and real id reuse: the next mount gets fake 1000 and the backend's lowest free pool 0
    c = sb_stub()
    cc.init_fs(c)
    assert c.cleancache_poolid == 1000 and cc.fs_poolid_map[0] == 0


def test_umount_never_enabled_or_failed_sb_calls_backend_with_minus_one(cc):
    """edge case 3: invalidate_fs(-1) reaches the backend."""
    backend = FakeBackend(fail_init={0})
    cc.register_ops(backend)
    never = sb_stub()           # e.g. tmpfs: never called init_fs
    failed = sb_stub()
    cc.init_fs(failed)
    assert failed.cleancache_poolid == 1000 and cc.fs_poolid_map[0] == -1
    cc.invalidate_fs(never)
    cc.invalidate_fs(failed)
    assert backend.calls("invalidate_fs") == [("invalidate_fs", -1), ("invalidate_fs", -1)]
    assert cc.fs_poolid_map[0] == FS_UNKNOWN


def test_backend_init_failure_then_second_registration(cc):
    """edge case 4: get fails and counts, put is silent; a second backend re-inits only that slot."""
    b1 = FakeBackend("b1", fail_init={1})
    good, bad = sb_stub(), sb_stub()
    cc.init_fs(good)
    cc.init_fs(bad)
    cc.register_ops(b1)
    assert cc.fs_poolid_map[:2] == [0, -1]
    ino = inode_stub(bad)
    cc.put_page(ino, 0, page_of(1))
    assert cc.get_page(ino, 0, Page()) == -1
    cc.invalidate_page(ino, 0)
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 1, "puts": 0, "invalidates": 0}
    assert [c[0] for c in b1.log] == ["init_fs", "init_fs"]
    b2 = FakeBackend("b2")
    assert cc.register_ops(b2) is b1
    assert b2.log == [("init_fs", PAGE_SIZE, 0)]  # only the failed slot
    assert cc.fs_poolid_map[:2] == [0, 0]


def test_second_backend_replaces_without_replay_and_gets_foreign_ids(cc):
    """edge case 6: no replay; the new backend is sent pool ids the first one created."""
    b1, b2 = FakeBackend("b1"), FakeBackend("b2")
    sb = sb_stub()
    cc.init_fs(sb)
    cc.register_ops(b1)
    cc.init_fs(sb_stub())
    assert cc.register_ops(b2) is b1
    assert b2.calls("init_fs") == []
    ino = inode_stub(sb)
    cc.put_page(ino, 5, page_of(3))
    assert b2.calls("put_page") == [("put_page", 0, ino.cleancache_key, 5)]
    assert b1.calls("put_page") == []


def test_shared_uuid_is_kept_by_identity_and_cleared_at_umount(cc, backend):
    """edge case 10."""
    uuid = bytearray(UUID)
    s = sb_stub()
    cc.init_shared_fs(uuid, s)
    cc.register_ops(backend)
    assert backend.calls("init_shared_fs")[0][1] is uuid
    cc.invalidate_fs(s)
    assert cc.uuids[0] is None and cc.shared_fs_poolid_map[0] == FS_UNKNOWN
    assert backend.calls("invalidate_fs") == [("invalidate_fs", 0)]


def test_invalidate_fs_sets_sb_poolid_to_minus_one(cc):
    sb = sb_stub()
    cc.init_shared_fs(UUID, sb)
    cc.invalidate_fs(sb)
    assert sb.cleancache_poolid == -1


def test_slot_state_machine(cc):
    """Every slot transition: FS_UNKNOWN, FS_NO_BACKEND, a real pool id (mm/cleancache.c)."""
    sb = sb_stub()
    cc.init_fs(sb)
    assert cc.fs_poolid_map[0] == FS_NO_BACKEND            # UNKNOWN --mount--> NO_BACKEND
    cc.invalidate_fs(sb)
    assert cc.fs_poolid_map[0] == FS_UNKNOWN               # NO_BACKEND --umount--> UNKNOWN
    cc.init_fs(sb)
    b = FakeBackend(fail_init={1})
    cc.register_ops(b)
    assert cc.fs_poolid_map[0] == 0                         # --register--> REAL
    sb2 = sb_stub()
    cc.init_fs(sb2)
    assert cc.fs_poolid_map[1] == FS_NO_BACKEND             # UNKNOWN --mount w/ backend--> failed
    cc.invalidate_fs(sb2)                                   # NO_BACKEND --umount w/ backend--> -1
    cc.invalidate_fs(sb)                                    # REAL --umount--> invalidate_fs(id)
    assert b.calls("invalidate_fs") == [("invalidate_fs", -1), ("invalidate_fs", 0)]
    assert cc.fs_poolid_map[:2] == [FS_UNKNOWN, FS_UNKNOWN]


def test_real_poolid_translation(cc, backend):
    sb = sb_stub()
    cc.init_shared_fs(UUID, sb)
    assert cc.real_poolid(sb) == FS_NO_BACKEND
    cc.register_ops(backend)
    assert cc.real_poolid(sb) == 0 and cc.poolid_from_fake(999) == FS_NO_BACKEND


# -- 3.9: no lazy init ------------------------------------------------------------------

def test_39_has_no_lazy_init_define(kernel39):
    assert kernel39.cleancache.CLEANCACHE_HAS_LAZY_INIT is False
    assert kernel39.cleancache.lazy_init is False


def test_39_fs_mounted_before_backend_never_gets_cleancache(kernel39, backend):
    cc = kernel39.cleancache
    early = sb_stub()
    cc.init_fs(early)
    assert early.cleancache_poolid == -1
    cc.put_page(inode_stub(early), 0, page_of(1))  # filtered out: no puts++ unlike 3.10
    assert cc.register_ops(backend) is None
    assert backend.log == []  # no replay
    ino = inode_stub(early)
    cc.put_page(ino, 0, page_of(1))
    assert cc.get_page(ino, 0, Page()) == -1
    assert counters(cc) == {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}
    late = sb_stub()
    cc.init_fs(late)
    assert late.cleancache_poolid == 0  # the backend's id, no fake id
    ino2 = inode_stub(late)
    cc.put_page(ino2, 1, page_of(9))
    p = Page()
    assert cc.get_page(ino2, 1, p) == 0 and p.data == bytes([9]) * 4096
    cc.invalidate_page(ino2, 1)
    assert counters(cc) == {"succ_gets": 1, "failed_gets": 0, "puts": 1, "invalidates": 1}
    cc.invalidate_fs(early)  # never enabled: the backend is not called in 3.9
    cc.invalidate_fs(late)
    assert backend.calls("invalidate_fs") == [("invalidate_fs", 0)]
    assert late.cleancache_poolid == -1


def test_39_has_no_32_filesystem_limit(kernel39, backend):
    cc = kernel39.cleancache
    cc.register_ops(backend)
    sbs = [sb_stub() for _ in range(40)]
    for sb in sbs:
        cc.init_fs(sb)
    assert [s.cleancache_poolid for s in sbs] == list(range(40))


def test_39_failed_backend_init_switches_fs_off(kernel39):
    cc = kernel39.cleancache
    cc.register_ops(FakeBackend(fail_init={0}))
    sb = sb_stub()
    cc.init_fs(sb)
    assert sb.cleancache_poolid == -1
    cc.invalidate_fs(sb)
    assert counters(cc)["failed_gets"] == 0


def test_standalone_frontend_without_kernel():
    cc = Cleancache(None, lazy_init=True)
    sb = sb_stub()
    cc.init_fs(sb)
    cc.register_ops(FakeBackend())
    assert cc.fs_poolid_map[0] == 0
