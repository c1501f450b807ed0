"""Cleancache at the superblock's life cycle, as Linux 3.10's fs/super.c and fs/ext3/super.c drive it."""

from __future__ import annotations

import errno

import pytest

from kmodemu.errors import KernelError
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import PAGE_SIZE

from .fakes import FakeBackend


def _mkfile(k, path, pages):
    return k.mm.fs.create(path, pages * PAGE_SIZE, Content(k.mm.corpus, "text", 1))


def _counter(k, name):
    return int(k.read(f"/sys/kernel/debug/cleancache/{name}"))


def test_deactivate_locked_super_invalidates_fs_before_kill_sb(kernel):
    """16 cached pages at umount add 0 to invalidates: the pool id is -1 when eviction runs."""
    b = FakeBackend()
    kernel.cleancache.register_ops(b)
    kernel.mm.fs.mount("/dev/sda1", "/mnt", "ext4")
    ino = _mkfile(kernel, "/mnt/f", 16)
    kernel.mm.pagecache.read(ino)
    assert len(ino.pages) == 16
    before = _counter(kernel, "invalidates")
    b.log.clear()
    kernel.mm.fs.umount("/mnt")
    assert _counter(kernel, "invalidates") == before
    assert b.log == [("invalidate_fs", 0)]
    assert kernel.cleancache.fs_poolid_map[0] < 0 and not ino.pages


def test_ext3_setup_super_read_only_skips_cleancache_init_fs(kernel):
    """ext3 ro: no slot, no init_fs, not replayed; ext4 ro still takes a slot (ext4_setup_super)."""
    fs = kernel.mm.fs
    ro3 = fs.mount("/dev/sda1", "/mnt", "ext3", "ro")
    ro4 = fs.mount("/dev/sda2", "/srv", "ext4", "ro")
    assert ro3.cleancache_poolid == -1 and ro4.cleancache_poolid == 1000
    b = FakeBackend()
    kernel.cleancache.register_ops(b)            # replays the recorded slots only
    assert [c[0] for c in b.log] == ["init_fs"]
    ino = _mkfile(kernel, "/mnt/f", 4)
    kernel.mm.pagecache.read(ino)
    kernel.mm.drop_caches()
    assert [c for c in b.log if c[0] == "put_page"] == []
    rw3 = fs.mount("/dev/sdb1", "/opt", "ext3")  # read-write ext3 is enabled as before
    assert rw3.cleancache_poolid == 1001


def test_mount_bdev_sget_shares_the_live_superblock(kernel):
    """A second mount reuses the sb: no second init_fs; invalidate_fs only when s_active reaches 0."""
    b = FakeBackend()
    kernel.cleancache.register_ops(b)
    fs = kernel.mm.fs
    first = fs.mount("/dev/sda1", "/mnt", "ext4")
    second = fs.mount("/dev/sda1", "/srv")
    assert [c[0] for c in b.log] == ["init_fs"]
    assert second.cleancache_poolid == first.cleancache_poolid == 1000
    ino = _mkfile(kernel, "/mnt/f", 4)
    assert fs.lookup("/srv/f") is ino
    kernel.mm.pagecache.read(ino)
    b.log.clear()
    fs.umount("/mnt")                              # s_active 2 -> 1: nothing happens to the sb
    assert b.log == [] and len(ino.pages) == 4 and second.cleancache_poolid == 1000
    kernel.mm.drop_caches()
    assert [c[0] for c in b.log] == ["put_page"] * 4
    st = kernel.mm.pagecache.read(fs.lookup("/srv/f"))
    assert st.cleancache_hits == 4 and st.corrupt == 0
    b.log.clear()
    fs.umount("/srv")                              # the last one: deactivate_locked_super
    assert b.log == [("invalidate_fs", 0)]
    assert "/dev/sda1" not in fs.proc_mounts()


@pytest.mark.parametrize("fstype, options", [("ext3", ""), (None, "ro")])
def test_mount_bdev_refuses_another_type_or_read_only_mismatch(kernel, fstype, options):
    fs = kernel.mm.fs
    fs.mount("/dev/sda1", "/mnt", "ext4")
    before = fs.proc_mounts()
    with pytest.raises(KernelError) as e:
        fs.mount("/dev/sda1", "/srv", fstype, options)
    assert e.value.errno == errno.EBUSY and fs.proc_mounts() == before
