"""The memory model's console commands: output, the real tools' error words and exit codes."""

from __future__ import annotations

import hashlib

import pytest

from kmodemu.console import is_readonly
from kmodemu.machine import Machine, MachineDef


@pytest.fixture
def m():
    with Machine(MachineDef(mem="64M")) as machine:
        yield machine


def run(m, *argv):
    return m.capture(list(argv))


def test_mount_and_errors(m):
    assert run(m, "mount", "/dev/sda1", "/mnt", "-t", "ext4") == (0, "", "")
    rc, out, _ = run(m, "mount")
    assert "/dev/sda1 on /mnt type ext4 (rw)" in out.splitlines()
    assert run(m, "mount", "/dev/sda2", "/nope", "-t", "ext4") == (
        32, "", "mount: /nope: mount point does not exist.\n")
    assert run(m, "mount", "/dev/sda2", "/srv", "-t", "foo") == (
        32, "", "mount: /srv: unknown filesystem type 'foo'.\n")
    assert run(m, "mount", "/dev/bogus", "/srv", "-t", "ext4") == (
        32, "", "mount: /srv: special device /dev/bogus does not exist.\n")
    # mount_bdev/sget: a second mount of the device shares its superblock (fs/super.c)
    assert run(m, "mount", "/dev/sda1", "/srv", "-t", "ext4") == (0, "", "")
    assert run(m, "mount", "/dev/sda1", "/opt", "-t", "xfs") == (
        32, "", "mount: /opt: /dev/sda1 already mounted or mount point busy.\n")
    assert run(m, "umount", "/srv") == (0, "", "")
    assert run(m, "umount", "/mnt") == (0, "", "")
    rc, _, err = run(m, "mount", "/dev/sda1", "/srv", "-t", "xfs")
    assert rc == 32 and err.startswith("mount: /srv: wrong fs type, bad option, bad superblock on /dev/sda1")
    assert run(m, "umount", "/mnt") == (32, "", "umount: /mnt: not mounted.\n")
    assert run(m, "umount", "/nowhere") == (32, "", "umount: /nowhere: no mount point specified.\n")
    assert "/proc/mounts" and "rootfs / rootfs rw 0 0" in run(m, "cat", "/proc/mounts")[1]


def test_nested_mount_makes_parent_busy(m):
    run(m, "mount", "/dev/sda1", "/mnt", "-t", "ext4")
    assert run(m, "mkdir", "/mnt/sub")[0] == 0
    assert run(m, "mount", "tmpfs", "/mnt/sub", "-t", "tmpfs")[0] == 0
    assert run(m, "umount", "/mnt") == (32, "", "umount: /mnt: target is busy.\n")
    assert run(m, "umount", "/mnt/sub")[0] == 0
    assert run(m, "umount", "/dev/sda1")[0] == 0


def test_swap_commands(m):
    rc, out, _ = run(m, "mkswap", "/dev/sdb1", "65536")
    assert rc == 0 and out.startswith("Setting up swapspace version 1, size = 64 MiB (67104768 bytes)\n")
    assert run(m, "swapon", "/dev/sdb1") == (0, "", "")
    assert run(m, "swapon", "/dev/sdb1") == (
        255, "", "swapon: /dev/sdb1: swapon failed: Device or resource busy\n")
    assert run(m, "swapon", "/dev/sdc1") == (255, "", "swapon: /dev/sdc1: read swap header failed\n")
    assert run(m, "swapon", "/tmp/nope") == (
        255, "", "swapon: cannot open /tmp/nope: No such file or directory\n")
    rc, out, _ = run(m, "swapon")
    assert out.splitlines() == ["NAME      TYPE      SIZE USED PRIO", "/dev/sdb1 partition  64M   0B   -1"]
    assert "/dev/sdb1" in run(m, "cat", "/proc/swaps")[1]
    assert "Adding 65532k swap on /dev/sdb1.  Priority:-1" in run(m, "dmesg")[1]
    assert run(m, "swapoff", "/dev/sdb1") == (0, "", "")
    assert run(m, "swapoff", "/dev/sdb1") == (
        4, "", "swapoff: /dev/sdb1: swapoff failed: Invalid argument\n")
    assert run(m, "swapoff")[0] == 16


def test_free_format(m):
    rc, out, _ = run(m, "free")
    lines = out.splitlines()
    assert lines[0] == "              total        used        free      shared  buff/cache   available"
    assert lines[1].split() == ["Mem:", "61440", "0", "61440", "0", "0", "61440"]
    assert lines[2].split() == ["Swap:", "0", "0", "0"]
    assert run(m, "free", "-m")[1].splitlines()[1].split()[1] == "60"


def test_files_read_rm_truncate(m):
    run(m, "mount", "/dev/sda1", "/mnt", "-t", "ext4")
    assert run(m, "mkfile", "/mnt/a", "--size", "1M", "--content", "text") == (
        0, "/mnt/a: 1048576 bytes, 256 pages, text\n", "")
    assert run(m, "read", "/mnt/a")[1] == "/mnt/a: 256 pages, 0 cached, 0 from cleancache, 256 from disk\n"
    assert run(m, "read", "/mnt/a")[1] == "/mnt/a: 256 pages, 256 cached, 0 from cleancache, 0 from disk\n"
    assert run(m, "drop-caches") == (0, "dropped 256 page cache pages\n", "")
    assert run(m, "truncate", "-s", "4K", "/mnt/a") == (0, "", "")
    assert run(m, "read", "/mnt/a")[1].startswith("/mnt/a: 1 pages")
    assert run(m, "rm", "/mnt/a") == (0, "", "")
    assert run(m, "rm", "/mnt/a") == (1, "", "rm: cannot remove '/mnt/a': No such file or directory\n")
    assert run(m, "read", "/mnt/a") == (1, "", "read: /mnt/a: No such file or directory\n")
    rc, _, err = run(m, "mkfile", "/mnt/b", "--content", "bogus")
    assert rc == 2 and "unknown content 'bogus'" in err


def test_mkfile_from_host_file(m, tmp_path):
    host = tmp_path / "data"
    host.write_bytes(b"x" * 10000)
    run(m, "mount", "/dev/sda1", "/mnt", "-t", "ext4")
    assert run(m, "mkfile", "/mnt/h", "--size", "1M", "--content", f"host:{host}")[1] == (
        "/mnt/h: 10000 bytes, 3 pages, host\n")
    assert run(m, "read", "/mnt/h")[0] == 0


def test_anon_commands_and_ps(m):
    run(m, "mkswap", "/dev/sdb1", "32M")
    run(m, "swapon", "/dev/sdb1")
    rc, out, _ = run(m, "alloc", "p", "8M", "--content", "text")
    assert rc == 0 and out.startswith("p: 2048 pages, 2048 resident, 0 swapped")
    assert run(m, "alloc", "p", "1M") == (1, "", "alloc: p: process exists\n")
    rc, out, _ = run(m, "pressure", "500")
    assert rc == 0 and out.startswith("reclaimed ") and "anon pages swapped" in out
    rc, out, _ = run(m, "ps")
    assert out.splitlines()[0].split() == ["NAME", "PAGES", "RES", "SWAP", "CONTENT"]
    rc, out, _ = run(m, "touch-anon", "p")
    assert rc == 0 and "from swap disk" in out and "CORRUPT" not in out
    assert run(m, "touch-anon", "q") == (1, "", "touch-anon: q: no such process\n")
    assert run(m, "kill", "p") == (0, "", "")
    assert run(m, "kill", "p") == (1, "", "kill: (p) - No such process\n")


def test_touch_anon_sha256_is_the_memory_as_read_back(m, tmp_path):
    host = tmp_path / "mem"
    host.write_bytes(bytes(range(256)) * 16 * 40)          # 40 pages, each 0..255 sixteen times
    digest = hashlib.sha256(host.read_bytes()).hexdigest()
    run(m, "mkswap", "/dev/sdb1", "32M")
    run(m, "swapon", "/dev/sdb1")
    run(m, "alloc", "p", "160K", "--content", f"host:{host}")
    assert run(m, "touch-anon", "p", "--sha256") == (
        0, f"p: 40 pages, 40 resident, 0 from frontswap, 0 from swap disk\n{digest}  p\n", "")
    run(m, "pressure", "100000")
    rc, out, _ = run(m, "touch-anon", "p", "--sha256")    # every page back from the swap disk
    assert rc == 0 and out.endswith(f" from swap disk\n{digest}  p\n") and " 0 from swap" not in out
    assert run(m, "touch-anon", "q", "--sha256") == (1, "", "touch-anon: q: no such process\n")


def test_stat_and_workload(m):
    run(m, "mount", "/dev/sda1", "/mnt", "-t", "ext4")
    run(m, "mkswap", "/dev/sdb1", "32M")
    run(m, "swapon", "/dev/sdb1")
    rc, out, _ = run(m, "stat")
    assert rc == 0
    assert "cleancache: backend none, lazy init yes" in out
    assert "  slots: 1 private, 0 shared in use; 1 without a backend pool" in out
    assert "  swap types waiting for a backend: 0" in out
    rc, out, _ = run(m, "workload", "--seed", "2", "--files", "4", "--file-size", "1M",
                     "--anon", "4M", "--rounds", "2")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("pages read: ") and lines[2] == "corrupt pages: 0"
    assert lines[3].startswith("cleancache: succ_gets=0 failed_gets=")
    assert lines[4] == "frontswap: loads=0 succ_stores=0 failed_stores=0 invalidates=0"
    assert run(m, "workload", "--dir", "/nope")[0] == 1


def test_readonly_commands_are_not_journaled():
    for name in ("free", "stat", "ps"):
        assert is_readonly([name])
    for name in ("mount", "swapon", "read", "alloc", "workload", "pressure"):
        assert not is_readonly([name])


def test_persistent_machine_replays_memory_state(tmp_path):
    path = tmp_path / "vm"
    m = Machine.create(path, MachineDef(mem="64M"))
    m.run(["mount", "/dev/sda1", "/mnt", "-t", "ext4"])
    m.run(["mkfile", "/mnt/f", "--size", "64K"])
    m.run(["read", "/mnt/f"])
    free1 = m.capture(["free"])[1]
    m.close()
    again = Machine.open(path)
    assert again.capture(["free"])[1] == free1
    assert again.capture(["read", "/mnt/f"])[1] == "/mnt/f: 16 pages, 16 cached, 0 from cleancache, 0 from disk\n"
    again.close()
