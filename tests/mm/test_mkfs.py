"""mkfs and mkfs.TYPE: util-linux/e2fsprogs words and exit codes; a failed mkfs leaves the device as it was."""

from __future__ import annotations

import pytest

from kmodemu.machine import Machine, MachineDef

E2 = "mke2fs 1.47.0 (5-Feb-2023)\n"


@pytest.fixture
def m():
    with Machine(MachineDef(mem="64M")) as machine:
        yield machine


def run(m, line):
    return m.capture(line.split())


def test_mount_without_type_on_a_blank_device_fails_and_says_what_to_do(m):
    rc, out, err = run(m, "mount /dev/sda1 /mnt")
    assert (rc, out) == (32, "")
    assert err.splitlines() == [
        "mount: /mnt: wrong fs type, bad option, bad superblock on /dev/sda1, missing codepage or helper "
        "program, or other error.",
        "kmodemu: mount: /dev/sda1 holds no filesystem yet: make one with 'mkfs -t ext4 /dev/sda1' (or "
        "mkfs.ext4, mkfs.xfs, mkfs.btrfs, mkfs.vfat), or mount it with '-t TYPE', which formats a fresh "
        "device at its first mount."]
    assert "kmodemu:" not in run(m, "dmesg")[1]


@pytest.mark.parametrize("cmd", ["mkfs -t ext4 /dev/sda1", "mkfs.ext4 /dev/sda1", "mkfs --type=ext4 /dev/sda1"])
def test_mkfs_then_mount_without_type(m, cmd):
    rc, out, err = run(m, cmd)
    assert (rc, err) == (0, E2)
    assert out.splitlines()[0].startswith("Filesystem UUID: ")
    assert "Creating journal: done" in out
    assert run(m, "mount /dev/sda1 /mnt") == (0, "", "")
    assert "/dev/sda1 /mnt ext4 rw 0 0" in run(m, "cat /proc/mounts")[1]


def test_mkfs_wipes_the_files(m):
    run(m, "mount /dev/sda1 /mnt -t ext4")
    run(m, "mkfile /mnt/f --size 8K")
    run(m, "umount /mnt")
    assert run(m, "mkfs.ext4 -q /dev/sda1") == (0, "", "")
    run(m, "mount /dev/sda1 /mnt")
    assert run(m, "read /mnt/f")[0] != 0


def test_errors(m):
    run(m, "mount /dev/sda1 /mnt -t ext4")
    assert run(m, "mkfs.ext4 /dev/sda1") == (1, "", E2 + "/dev/sda1 is mounted; will not make a filesystem here!\n")
    assert run(m, "mkfs -t foo /dev/sdb") == (1, "", "mkfs: failed to execute mkfs.foo: No such file or directory\n")
    assert run(m, "mkfs.ext4 /dev/nosuch") == (
        1, "", E2 + "The file /dev/nosuch does not exist and no size was specified.\n")
    rc, _, err = run(m, "mkfs")
    assert rc == 1 and " mkfs [options] [-t <type>] [fs-options] <device> [<size>]" in err
    run(m, "mkswap /dev/sdc")
    run(m, "swapon /dev/sdc")
    assert run(m, "mkfs.ext4 -q /dev/sdc") == (
        1, "", "/dev/sdc is apparently in use by the system; will not make a filesystem here!\n")


def test_xfs_and_btrfs_refuse_to_overwrite_without_f(m):
    assert run(m, "mkfs.xfs /dev/sdb")[0] == 0
    assert run(m, "mkfs.btrfs /dev/sdb") == (1, "btrfs-progs v6.2\n",
        "ERROR: /dev/sdb appears to contain an existing filesystem (xfs)\n"
        "ERROR: use the -f option to force overwrite of /dev/sdb\n")
    assert run(m, "mount /dev/sdb /srv") == (0, "", "")
    run(m, "umount /srv")
    assert run(m, "mkfs.btrfs -f /dev/sdb")[0] == 0
    assert run(m, "mount /dev/sdb /srv") == (0, "", "")
    assert "/dev/sdb /srv btrfs" in run(m, "cat /proc/mounts")[1]
