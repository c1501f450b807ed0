"""The 19 edge cases of docs/frontends.md ("Edge cases"), as a user sees them: console commands on a machine.

Each test is named after its case and drives mount/swapon/insmod/read/
pressure and friends, then checks exact counters and dmesg lines. The
frontend objects are touched only where no console path reaches the case
(a NULL frontswap map, a duplicate store, offsets ≥ 2^32, frontswap_shrink).
The second backend is ``tests/mm/plugins/tmem_dict``, which logs every pool.
The unit-level versions live in test_cleancache.py and test_frontswap.py.
"""

from __future__ import annotations

import random

import pytest

from kmodemu.mm.page import Page

from .machines import PROFILES, boot, debugfs, dmesg, dmesg_of, run, sb, sh, sh_all, stat_lines, vmstat

ZEROS = {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}
FS_ZEROS = {"loads": 0, "succ_stores": 0, "failed_stores": 0, "invalidates": 0}
ZCACHE_ENABLED = [
    "zcache: using zstd compressor",
    "zcache: cleancache enabled using kernel transcendent memory and compression buddies",
    "zcache: frontswap enabled using kernel transcendent memory and compression buddies",
]


@pytest.fixture
def machine():
    made = []

    def make(profile: str = "3.10", **kw):
        m = boot(profile, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def dev(i: int) -> str:
    """The i-th spare disk: /dev/vda, /dev/vdb, … /dev/vdz, /dev/vdaa, …"""
    letters = chr(97 + i) if i < 26 else chr(96 + i // 26) + chr(97 + i % 26)
    return f"/dev/vd{letters}"


def mount_n(m, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        sh_all(m, f"mkdir /mnt/d{i}", f"mount {dev(i)} /mnt/d{i} -t ext4")


def read_drop_read(m, path: str, size: str = "64K") -> tuple[str, str]:
    """mkfile, read (cold), drop-caches, read again: the second read shows cleancache."""
    sh(m, f"mkfile {path} --size {size} --content text --seed 1")
    first = sh(m, f"read {path}")
    sh(m, "drop-caches")
    return first, sh(m, f"read {path}")


def swap_out(m, size: str = "64K", frames: int = 16) -> str:
    """A process whose pages reclaim pushes out; returns what pressure printed."""
    sh(m, f"alloc app {size} --content text --seed 2")
    return sh(m, f"pressure {frames}")


# -- 1-10: the frontends' lazy init -----------------------------------------------------------

def test_edge_01_more_than_32_filesystems_33rd_never_gets_cleancache(machine):
    m = machine()
    mount_n(m, 33)                                   # 32 slots, then one too many
    assert [sb(m, f"/mnt/d{i}").cleancache_poolid for i in (0, 31, 32)] == [1000, 1031, -1]
    sh(m, "insmod tmem_dict")
    replayed = dmesg_of(m, "tmem_dict: init_fs")
    assert len(replayed) == 32 and replayed[-1] == "tmem_dict: init_fs: pool 31 (ops published: no)"
    mount_n(m, 1, start=33)                          # after registration: still no slot
    assert sb(m, "/mnt/d33").cleancache_poolid == -1
    assert len(dmesg_of(m, "tmem_dict: init_fs")) == 32
    for i in (32, 33):                               # every hook filtered: no counter moves
        assert read_drop_read(m, f"/mnt/d{i}/f")[1] == (
            f"/mnt/d{i}/f: 16 pages, 0 cached, 0 from cleancache, 16 from disk\n")
    assert debugfs(m, "cleancache") == ZEROS
    # the shared table is counted separately: an ocfs2 mount still gets a slot
    sh_all(m, "mkdir /mnt/shared", "mount /dev/sdb1 /mnt/shared -t ocfs2")
    assert sb(m, "/mnt/shared").cleancache_poolid == 2000
    assert "  slots: 32 private, 1 shared in use; 0 without a backend pool" in stat_lines(m)


def test_edge_01_39_has_no_slot_table_so_no_limit(machine):
    """3.9 differs: the backend's pool id goes straight into the superblock, no 32 limit."""
    m = machine("3.9")
    sh(m, "insmod tmem_dict")
    mount_n(m, 33)
    assert sb(m, "/mnt/d32").cleancache_poolid == 32
    assert read_drop_read(m, "/mnt/d32/f")[1].endswith("16 from cleancache, 0 from disk\n")


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_02_umount_before_registration_frees_the_slot(machine, profile):
    m = machine(profile)
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "umount /mnt")
    if profile == "3.10":
        assert "  slots: 0 private, 0 shared in use; 0 without a backend pool" in stat_lines(m)
    sh(m, "insmod tmem_dict")
    assert dmesg_of(m, "tmem_dict") == ["tmem_dict: loading out-of-tree module taints kernel."]
    sh(m, "mount /dev/sdb1 /srv -t ext4")            # the freed fake id is reused
    assert sb(m, "/srv").cleancache_poolid == (1000 if profile == "3.10" else 0)
    assert dmesg_of(m, "tmem_dict: init_fs") == ["tmem_dict: init_fs: pool 0 (ops published: yes)"]


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_03_umount_of_never_enabled_or_failed_fs_calls_invalidate_fs_minus_one(machine, profile):
    m = machine(profile)
    sh(m, "insmod tmem_dict max_pools=1")
    sh_all(m, "mkdir /mnt/t", "mount tmpfs /mnt/t -t tmpfs", "umount /mnt/t")
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdb1 /srv -t ext4")  # 2nd init fails
    sh_all(m, "umount /srv", "umount /mnt")
    told = dmesg_of(m, "tmem_dict: invalidate_fs")
    if profile == "3.10":   # 3.10 tells the backend about every umount, even with -1
        assert told == ["tmem_dict: invalidate_fs: pool -1 unknown, ignored",
                        "tmem_dict: invalidate_fs: pool -1 unknown, ignored",
                        "tmem_dict: invalidate_fs: pool 0 destroyed"]
    else:                   # 3.9 only about superblocks with a pool
        assert told == ["tmem_dict: invalidate_fs: pool 0 destroyed"]


def test_edge_03_zcache_ignores_negative_pool_ids(machine):
    m = machine()
    sh(m, "insmod zcache")
    sh_all(m, "mkdir /mnt/t", "mount tmpfs /mnt/t -t tmpfs", "umount /mnt/t")
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "umount /mnt")
    assert dmesg_of(m, "zcache: created", "zcache: destroyed") == [
        "zcache: created ephemeral local tmem pool, id=0", "zcache: destroyed local pool id=0"]


def test_edge_04_backend_init_failure_then_second_registration_reinits_only_that_slot(machine):
    m = machine()
    mount_n(m, 17)                                   # zcache has 16 pools per client
    sh(m, "insmod zcache")
    pools = dmesg_of(m, "zcache: created", "zcache: pool")
    assert len(pools) == 17 and pools[-1] == "zcache: pool creation failed: max exceeded"
    cc = m.kernel.cleancache
    assert cc.fs_poolid_map[15:17] == [15, -1]       # -1 is also FS_NO_BACKEND
    # the 17th fs: a get counts failed_gets, a put stores nothing and counts nothing
    sh(m, "mkfile /mnt/d16/f --size 64K --content text --seed 1")
    sh(m, "read /mnt/d16/f")
    assert debugfs(m, "cleancache") == {**ZEROS, "failed_gets": 16}
    sh(m, "drop-caches")
    assert debugfs(m, "cleancache") == {**ZEROS, "failed_gets": 16}
    # a second backend re-inits that slot, and only that one
    sh(m, "insmod tmem_dict")
    assert dmesg_of(m, "tmem_dict: init_fs", "tmem_dict: cleancache") == [
        "tmem_dict: init_fs: pool 0 (ops published: no)", "tmem_dict: cleancache_ops overridden"]
    assert cc.fs_poolid_map[15:17] == [15, 0]
    sh(m, "read /mnt/d16/f")
    sh(m, "drop-caches")
    assert sh(m, "read /mnt/d16/f") == "/mnt/d16/f: 16 pages, 0 cached, 16 from cleancache, 0 from disk\n"


def test_edge_04_39_failed_init_switches_the_fs_off_for_good(machine):
    m = machine("3.9", builtin=["zcache"], cmdline="zcache")
    mount_n(m, 17)
    assert sb(m, "/mnt/d16").cleancache_poolid == -1
    assert dmesg_of(m, "zcache: pool")[-1:] == ["zcache: pool creation failed: max exceeded"]
    read_drop_read(m, "/mnt/d16/f")
    assert debugfs(m, "cleancache") == ZEROS         # filtered by the inline guard
    sh(m, "insmod tmem_dict")
    assert dmesg_of(m, "tmem_dict: init_fs") == []   # nothing to re-init on 3.9
    assert sb(m, "/mnt/d16").cleancache_poolid == -1


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_05_counters_without_backend(machine, profile):
    m = machine(profile)
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    pressure = swap_out(m)
    read_drop_read(m, "/mnt/f")
    assert pressure == "reclaimed 16 frames: 0 file pages evicted, 16 anon pages swapped, 0 from shrinkers\n"
    assert sh(m, "touch-anon app") == "app: 16 pages, 0 resident, 0 from frontswap, 16 from swap disk\n"
    if profile == "3.10":   # puts and failed gets count although nothing is stored
        assert debugfs(m, "cleancache") == {**ZEROS, "failed_gets": 32, "puts": 16}
    else:                   # 3.9: the fs never got a pool, so its hooks are filtered
        assert debugfs(m, "cleancache") == ZEROS
    assert debugfs(m, "frontswap") == FS_ZEROS       # 3.10 counts nothing without a backend
    assert vmstat(m)["pswpout"] == 16 and vmstat(m)["pswpin"] == 16


def test_edge_06_second_backend_replaces_ops_without_replay(machine):
    """3.10: tmem_dict gets the replay; zcache registered second gets nothing, so its
    frontswap pool stays -1 and every store fails."""
    m = machine()
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    sh_all(m, "insmod tmem_dict", "insmod zcache")
    assert dmesg_of(m, "tmem_dict: init", "tmem_dict: frontswap init") == [
        "tmem_dict: init_fs: pool 0 (ops published: no)", "tmem_dict: frontswap init: swap type 0"]
    assert dmesg_of(m, "zcache: c", "zcache: f") == [
        "zcache: cleancache enabled using kernel transcendent memory and compression buddies",
        "zcache: cleancache_ops overridden",
        "zcache: frontswap enabled using kernel transcendent memory and compression buddies",
        "zcache: frontswap_ops overridden"]             # and no "created … pool" line
    swap_out(m)
    assert read_drop_read(m, "/mnt/f")[1].endswith("0 from cleancache, 16 from disk\n")
    assert debugfs(m, "frontswap") == {**FS_ZEROS, "failed_stores": 16}
    assert debugfs(m, "cleancache") == {**ZEROS, "failed_gets": 32, "puts": 16}  # pool 0 unknown to zcache
    assert vmstat(m)["pswpout"] == 16


def test_edge_06_39_second_backend_gets_foreign_ids_too(machine):
    m = machine("3.9", builtin=["zcache"], cmdline="zcache")
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    sh(m, "insmod tmem_dict")
    assert dmesg_of(m, "tmem_dict")[1:] == ["tmem_dict: cleancache_ops overridden",
                                            "tmem_dict: frontswap_ops overridden"]
    swap_out(m)
    assert debugfs(m, "frontswap") == {**FS_ZEROS, "failed_stores": 16}  # type 0 never init'ed


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_07_swapoff_before_registration_clears_need_init(machine, profile):
    m = machine(profile)
    sh_all(m, "mkswap /dev/sdb1 16M", "swapon /dev/sdb1", "swapoff /dev/sdb1")
    sh_all(m, "mkswap /dev/sdc1 16M", "swapon /dev/sdc1", "swapoff /dev/sdc1", "swapon /dev/sdc1")
    if profile == "3.10":
        assert "  swap types waiting for a backend: 0" in stat_lines(m)
    sh(m, "insmod tmem_dict")
    # sdb1 (type 0, off again) is skipped; sdc1, swapped on again, was recorded again (3.10)
    assert dmesg_of(m, "tmem_dict: frontswap") == (
        ["tmem_dict: frontswap init: swap type 0"] if profile == "3.10" else [])


def test_edge_08_swapon_with_null_map_warns_and_register_fails_part_way(machine):
    m = machine()
    m.kernel.mm.swap.fail_next_map_alloc = True      # vzalloc of the frontswap map fails
    for d in ("sdb1", "sdc1", "sdd1", "sde1"):
        sh_all(m, f"mkswap /dev/{d} 1M", f"swapon /dev/{d}")
    assert "WARNING: at mm/frontswap.c __frontswap_init: no frontswap map" in dmesg(m)
    assert sh(m, "cat /proc/sys/kernel/tainted") == "512\n"      # W
    assert "  swap types waiting for a backend: 1 2 3" in stat_lines(m)  # type 0 not recorded
    m.kernel.mm.swap.swap_info[2].frontswap_map = None           # a recorded type loses its map
    sh(m, "mount /dev/sda1 /mnt -t ext4")
    assert run(m, "insmod zcache") == (
        1, "", "insmod: ERROR: could not insert module zcache: Invalid parameters\n")
    # cleancache was registered before frontswap failed; type 1 was init'ed, 2 dropped, 3 waits
    lines = stat_lines(m)
    assert "cleancache: backend registered, lazy init yes" in lines
    assert "frontswap: backend none, lazy init yes" in lines
    assert "  swap types waiting for a backend: 3" in lines
    assert dmesg_of(m, "zcache: created") == ["zcache: created ephemeral local tmem pool, id=0",
                                              "zcache: created persistent local tmem pool, id=1"]
    assert sh(m, "lsmod") == "Module                  Size  Used by\n"


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_09_replay_order_slots_interleaved_then_swap_types(machine, profile):
    m = machine(profile)
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdb1 /srv -t ocfs2",
           "mount /dev/sdc1 /data -t ext4", "mount /dev/sdd1 /opt -t ocfs2")
    sh_all(m, "mkswap /dev/sde1 16M", "swapon /dev/sde1", "mkswap /dev/sdf1 16M", "swapon /dev/sdf1")
    sh(m, "insmod tmem_dict")
    replay = [x for x in dmesg_of(m, "tmem_dict") if "init" in x]
    if profile == "3.9":
        assert replay == []
        return
    uuid = [sb(m, p).uuid.hex() for p in ("/srv", "/opt")]
    assert replay == [   # by slot: private 0, shared 0, private 1, shared 1; then type 0, 1
        "tmem_dict: init_fs: pool 0 (ops published: no)",
        f"tmem_dict: init_shared_fs: uuid {uuid[0]}",
        "tmem_dict: init_fs: pool 1 (ops published: no)",
        "tmem_dict: init_fs: pool 2 (ops published: no)",
        f"tmem_dict: init_shared_fs: uuid {uuid[1]}",
        "tmem_dict: init_fs: pool 3 (ops published: no)",
        "tmem_dict: frontswap init: swap type 0",
        "tmem_dict: frontswap init: swap type 1"]
    sh(m, "mount /dev/sdg1 /home -t ext4")
    assert dmesg_of(m, "tmem_dict: init_fs")[-1] == "tmem_dict: init_fs: pool 4 (ops published: yes)"


def test_edge_09_zcache_gives_cleancache_the_low_pool_ids(machine):
    m = machine()
    sh_all(m, "mkswap /dev/sde1 16M", "swapon /dev/sde1")   # enabled first, replayed last
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdb1 /srv -t ocfs2")
    sh(m, "insmod zcache")
    assert dmesg_of(m, "zcache: c", "zcache: f") == [
        "zcache: created ephemeral local tmem pool, id=0",
        "zcache: created ephemeral local tmem pool, id=1",
        ZCACHE_ENABLED[1],
        "zcache: created persistent local tmem pool, id=2",
        ZCACHE_ENABLED[2]]
    assert m.kernel.frontswap.exclusive_gets_enabled     # set after registering


def test_edge_10_shared_fs_uuid_is_kept_by_identity_and_replayed(machine):
    m = machine()
    uuid = "0123456789abcdef0123456789abcdef"
    sh(m, f"mount /dev/sdb1 /srv -t ocfs2 -o uuid={uuid}")
    sb_ = sb(m, "/srv")
    cc = m.kernel.cleancache
    assert sb_.cleancache_poolid == 2000 and cc.uuids[0] is sb_.uuid
    sh(m, "insmod tmem_dict")
    assert dmesg_of(m, "tmem_dict: init") == [f"tmem_dict: init_shared_fs: uuid {uuid}",
                                              "tmem_dict: init_fs: pool 0 (ops published: no)"]
    assert read_drop_read(m, "/srv/f")[1].endswith("16 from cleancache, 0 from disk\n")
    sh(m, "umount /srv")
    assert cc.uuids[0] is None and cc.shared_fs_poolid_map[0] == -2
    assert dmesg_of(m, "tmem_dict: invalidate_fs") == ["tmem_dict: invalidate_fs: pool 0 destroyed"]


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_10_zcache_turns_a_shared_fs_into_a_private_pool(machine, profile):
    m = machine(profile, builtin=["zcache"], cmdline="zcache")
    sh(m, "mount /dev/sdb1 /srv -t ocfs2")
    assert sb(m, "/srv").cleancache_poolid == (2000 if profile == "3.10" else 0)
    assert dmesg_of(m, "zcache: created") == ["zcache: created ephemeral local tmem pool, id=0"]
    assert read_drop_read(m, "/srv/f")[1].endswith("16 from cleancache, 0 from disk\n")


# -- 11-15, 19: the frontswap page path -------------------------------------------------------

def zcache_swap_machine(machine, profile: str = "3.10", params: str = ""):
    """zcache (a module on 3.10, built in on 3.9) with one 16M swap device."""
    if profile == "3.10":
        m = machine()
        sh(m, f"insmod zcache {params}".strip())
    else:
        m = machine("3.9", builtin=["zcache"], cmdline="zcache")
    sh_all(m, "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    return m


def test_edge_11_duplicate_frontswap_store(machine):
    """Not reachable from the console (a slot is freed before it is reused): the frontend directly."""
    m = zcache_swap_machine(machine)
    fs = m.kernel.frontswap
    text = Page(b"duplicate store " * 256)
    assert fs.store(0, 5, text) == 0 and fs.store(0, 5, Page(b"second copy " * 341 + b"abcd")) == 0
    assert fs.curr_pages() == 1 and fs.test(0, 5)                 # success: bit and count kept
    assert debugfs(m, "zcache")["pers_zpages"] == 1               # tmem freed the older copy
    noise = Page(random.Random(11).randbytes(4096))               # zcache refuses to keep it
    assert fs.store(0, 5, noise) != 0
    assert not fs.test(0, 5) and fs.curr_pages() == 0             # failure: bit and count dropped
    assert debugfs(m, "frontswap") == {**FS_ZEROS, "succ_stores": 2, "failed_stores": 1}
    assert debugfs(m, "zcache")["pers_zpages"] == 1               # ...but zcache kept the stale copy
    sh(m, "swapoff /dev/sdb1")    # sys_swapoff detaches the map before frontswap_invalidate_area,
    assert debugfs(m, "zcache")["pers_zpages"] == 1               # so zcache is never told (3.10)


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_12_writethrough_reports_failure_but_keeps_the_page(machine, profile):
    m = machine(profile)
    sh_all(m, "insmod tmem_dict writethrough=1", "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    swap_out(m)
    assert debugfs(m, "frontswap") == {**FS_ZEROS, "succ_stores": 16}
    assert vmstat(m)["pswpout"] == 16                 # every stored page also went to disk
    assert "  curr_pages    16" in stat_lines(m)      # the bits stay set
    assert sh(m, "touch-anon app") == "app: 16 pages, 0 resident, 16 from frontswap, 0 from swap disk\n"
    assert vmstat(m)["pswpin"] == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_13_exclusive_loads(machine, profile):
    m = zcache_swap_machine(machine, profile)
    swap_out(m)
    assert "  curr_pages    16" in stat_lines(m)
    assert sh(m, "touch-anon app") == "app: 16 pages, 0 resident, 16 from frontswap, 0 from swap disk\n"
    assert debugfs(m, "frontswap") == {**FS_ZEROS, "loads": 16, "succ_stores": 16}
    assert debugfs(m, "zcache")["pers_zpages"] == 0       # get_and_free: zcache let them go
    # 3.10 clears the bit and the count; 3.9 only the bit, so the count goes stale
    assert f"  curr_pages    {0 if profile == '3.10' else 16}" in stat_lines(m)


def test_edge_13_without_exclusive_gets_the_freed_slot_invalidates(machine):
    m = zcache_swap_machine(machine, params="frontswap_has_exclusive_gets=0")
    swap_out(m)
    sh(m, "touch-anon app")
    assert debugfs(m, "frontswap") == {"loads": 16, "succ_stores": 16, "failed_stores": 0,
                                       "invalidates": 16}
    assert "  curr_pages    0" in stat_lines(m)


def test_edge_13_cleancache_hits_are_exclusive_in_tmem(machine):
    m = machine()
    sh_all(m, "insmod zcache", "mount /dev/sda1 /mnt -t ext4")
    sh(m, "mkfile /mnt/f --size 64K --content text --seed 1")
    sh_all(m, "read /mnt/f", "drop-caches")
    assert debugfs(m, "zcache")["eph_zpages"] == 16
    sh(m, "read /mnt/f")
    assert debugfs(m, "zcache")["eph_zpages"] == 0


def test_edge_14_zcache_ignores_offsets_and_indices_of_2_32_and_more(machine):
    m = machine()
    sh_all(m, "insmod zcache", "mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb1 16M",
           "swapon /dev/sdb1")
    sh(m, "mkfile /mnt/f --size 4K --content text --seed 1")
    k = m.kernel
    inode, page = k.mm.fs.lookup("/mnt/f"), Page(b"x" * 2048 + b"y" * 2048)
    cc = k.cleancache
    cc.put_page(inode, 1 << 32, page)          # the frontend counts it, zcache ignores it
    assert cc.get_page(inode, 1 << 32, Page()) == -1
    cc.put_page(inode, (1 << 32) - 1, page)    # the largest index that fits in a u32 is kept
    assert cc.get_page(inode, (1 << 32) - 1, Page()) == 0
    assert debugfs(m, "cleancache") == {"succ_gets": 1, "failed_gets": 1, "puts": 2, "invalidates": 0}
    ops = k.frontswap.ops                      # no swap map reaches 2^32: zcache's ops directly
    assert ops.store(0, 1 << 32, page) == -1 and ops.load(0, 1 << 32, Page()) == -1
    assert debugfs(m, "zcache")["pers_zpages"] == 0


def test_edge_15_frontswap_shrink_unuses_one_device_per_call(machine):
    m = machine(mem="64M")
    sh(m, "insmod zcache")
    sh_all(m, "mkswap /dev/sdb1 64K", "swapon -p 5 /dev/sdb1",    # 15 slots, first in the list
           "mkswap /dev/sdc1 16M", "swapon -p 1 /dev/sdc1")
    swap_out(m, "256K", 64)
    shrink = m.kernel.modules.symbol_value("frontswap_shrink")    # what a backend would call

    def used() -> list[int]:
        return [int(x.split()[3]) // 4 for x in sh(m, "cat /proc/swaps").splitlines()[1:]]

    assert used() == [15, 49]
    assert "  curr_pages    64" in stat_lines(m)
    shrink(54)              # 10 over: the first device holds more than that, gives back exactly 10
    assert used() == [5, 49]
    shrink(0)               # the first device holds less than needed: all of it, and only it
    assert used() == [0, 49]
    shrink(0)               # the empty head device is picked again: unuse "all" of nothing
    assert used() == [0, 49] and "  curr_pages    49" in stat_lines(m)
    shrink(49)              # target ≥ current pages: a no-op
    assert used() == [0, 49]


# -- 16-18: zcache's own load and boot paths -------------------------------------------------

def test_edge_16_unknown_compressor_fails_the_module_load_with_eperm(machine):
    m = machine()
    assert run(m, "insmod zcache zcache_comp_name=lzma") == (
        1, "", "insmod: ERROR: could not insert module zcache: Operation not permitted\n")
    assert dmesg_of(m, "zcache") == [
        "zcache: module is from the staging directory, the quality is unknown, you have been warned.",
        "zcache: lzma not supported", "zcache: compressor initialization failed"]
    assert sh(m, "lsmod") == "Module                  Size  Used by\n"
    assert not m.kernel.cleancache.registered and not m.kernel.frontswap.registered


def test_edge_16_39_refuses_for_lazy_init_before_looking_at_the_compressor(machine):
    m = machine("3.9")
    assert run(m, "insmod zcache zcache_comp_name=lzma")[0] == 1
    assert dmesg_of(m, "zcache")[-1] == "zcache module requires frontswap lazy init"
    rc, _, err = run(m, "insmod zcache zcache_comp_name=lzma disable_cleancache=1 disable_frontswap=1")
    assert rc == 1 and err.endswith("Operation not permitted\n")
    assert dmesg_of(m, "zcache")[-1] == "zcache: compressor initialization failed"


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_16_builtin_bad_name_is_shadowed_by_the_zcache_word(machine, profile):
    """Built in, ``zcache=lzma`` never reaches the compressor check (edge case 18: obsolete_checksetup shadows it)."""
    m = machine(profile, builtin=["zcache"], cmdline="zcache=lzma")
    assert dmesg_of(m, "zcache") == ZCACHE_ENABLED


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_17_builtin_without_boot_parameter_keeps_recording(machine, profile):
    m = machine(profile, builtin=["zcache"])
    assert sh(m, "ls /sys/kernel/debug").split() == ["cleancache", "frontswap", "zcache", "zbud"]
    assert dmesg_of(m, "zcache") == []
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdc1 /srv -t ext4",
           "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    swap_out(m)
    read_drop_read(m, "/mnt/f")
    lines = stat_lines(m)
    assert "cleancache: backend none, lazy init " + ("yes" if profile == "3.10" else "no") in lines
    if profile == "3.10":
        assert "  slots: 2 private, 0 shared in use; 2 without a backend pool" in lines
        assert "  swap types waiting for a backend: 0" in lines
        assert debugfs(m, "cleancache") == {**ZEROS, "failed_gets": 32, "puts": 16}
    else:
        assert sb(m, "/mnt").cleancache_poolid == -1
        assert debugfs(m, "cleancache") == ZEROS
    assert debugfs(m, "frontswap") == FS_ZEROS and debugfs(m, "zcache")["obj_count"] == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_edge_18_boot_parameter_prefix_shadowing(machine, profile):
    # "zcache" consumes "zcache=deflate"; "nofrontswap" consumes "nofrontswapexclusivegets"
    m = machine(profile, builtin=["zcache"], cmdline="zcache=deflate nofrontswapexclusivegets")
    assert dmesg_of(m, "zcache") == ZCACHE_ENABLED[:2]
    assert sh(m, "cat /proc/1/cmdline") == "/sbin/init\0"    # every word was consumed
    sh_all(m, "mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb1 16M", "swapon /dev/sdb1")
    swap_out(m)
    assert read_drop_read(m, "/mnt/f")[1].endswith("16 from cleancache, 0 from disk\n")
    assert debugfs(m, "frontswap") == FS_ZEROS and vmstat(m)["pswpout"] == 16
    # "nocleancache" consumes "nocleancacheignorenonactive"
    m = machine(profile, builtin=["zcache"], cmdline="zcache nocleancacheignorenonactive")
    assert dmesg_of(m, "zcache") == [ZCACHE_ENABLED[0], ZCACHE_ENABLED[2]]


def test_edge_19_invalidate_area_with_detached_map(machine):
    m = zcache_swap_machine(machine)
    swap_out(m)
    assert debugfs(m, "zcache")["pers_zpages"] == 16
    # kmodemu's swapoff invalidates first, then detaches: zcache is told and lets go
    sh(m, "swapoff /dev/sdb1")
    assert debugfs(m, "zcache")["pers_zpages"] == 0
    # the other order (detach, then invalidate) returns early: zcache's pages are stranded
    sh_all(m, "swapon /dev/sdb1", "touch-anon app", "pressure 16")
    assert debugfs(m, "zcache")["pers_zpages"] == 16
    fs = m.kernel.frontswap
    fs.swap_info[0].frontswap_map = None
    fs.invalidate_area(0)
    assert debugfs(m, "zcache")["pers_zpages"] == 16
    assert debugfs(m, "frontswap")["invalidates"] == 0
