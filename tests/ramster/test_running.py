"""RAMster between two running machines: two processes, peers over loopback TCP.

Each machine is its own ``kmodemu`` process (``running_machine``), configured
as an admin would — /etc/ramster.conf and /etc/hostname on its disk, then
``service ramster start`` — and its swapped pages go to the other machine's
RAM and come back with the same SHA-256.
"""

from __future__ import annotations

import pytest

from .fakes import free_port, write_cluster_files
from .test_zcache_link import CONF

SYS = "/sys/kernel/mm/ramster"
DBG = "/sys/kernel/debug/ramster"


def ok(m, *argv: str) -> str:
    rc, out, err = m.run(*argv)
    assert rc == 0, (argv, rc, err)
    return out


def counter(m, name: str) -> int:
    return int(ok(m, "cat", f"{DBG}/{name}"))


@pytest.fixture
def peers(running_machine):
    a = running_machine("system1", boot=("--cmdline", "quiet"))
    b = running_machine("system2", boot=("--cmdline", "quiet"))
    assert (a.address, b.address) == ("127.0.0.1", "127.0.0.2")
    port = free_port(a.address, b.address)
    conf = CONF.replace("127.0.0.1", a.address).replace("127.0.0.2", b.address)
    write_cluster_files((a.path / "root", b.path / "root"), conf.format(port=port))
    return a, b, port


def test_swapped_pages_round_trip_through_a_peer_process(peers):
    a, b, port = peers
    assert a.pid != b.pid
    for m in (a, b):
        ok(m, "insmod", "zcache", "ramster=1", "disable_frontswap_selfshrink=1")
        assert ok(m, "service", "ramster", "start") == "Starting ramster cluster ramster: OK\n"
    for m in (a, b):
        ok(m, "write", f"{SYS}/manual_node_up", "0")
        ok(m, "write", f"{SYS}/manual_node_up", "1")
    assert (f"ramster: Connected to node system1 (num 0) at {a.address}:{port}"
            in ok(b, "dmesg"))
    assert (f"ramster: Accepted connection from node system2 (num 1) at {b.address}:{port}"
            in ok(a, "dmesg"))

    ok(a, "write", f"{SYS}/remote_target_nodenum", "1")
    ok(a, "write", f"{SYS}/pers_remotify_enable", "1")
    ok(a, "mkswap", "/dev/sdb1", "64M")
    ok(a, "swapon", "/dev/sdb1")
    ok(a, "alloc", "app", "8M", "--content", "mixed", "--seed", "2")
    first = ok(a, "touch-anon", "app", "--sha256").splitlines()
    assert first[0] == "app: 2048 pages, 2048 resident, 0 from frontswap, 0 from swap disk"
    digest = first[1]
    ok(a, "pressure", "4096")
    ok(a, "sleep", "61")                      # the remotify worker: first run 60 s after init

    remoted = counter(a, "pers_pages_remoted")
    assert remoted > 0
    assert counter(b, "foreign_pers_pages") == remoted      # in the other process's RAM
    assert int(ok(a, "cat", f"{SYS}/remote_pers_pages")) == remoted

    back = ok(a, "touch-anon", "app", "--sha256").splitlines()
    assert "CORRUPT" not in back[0] and " 0 from frontswap" not in back[0]
    assert back[1] == digest                                # the same bytes came back
    assert counter(a, "remote_pers_pages_succ_get") == remoted
    assert counter(b, "foreign_pers_pages") == 0            # exclusive gets freed them there


def test_a_peer_process_that_dies_is_seen_and_its_pages_are_lost(peers):
    a, b, port = peers
    for m in (a, b):
        ok(m, "insmod", "zcache", "ramster=1", "disable_frontswap_selfshrink=1")
        ok(m, "service", "ramster", "start")
    for m in (a, b):
        ok(m, "write", f"{SYS}/manual_node_up", "0")
        ok(m, "write", f"{SYS}/manual_node_up", "1")
    ok(a, "write", f"{SYS}/remote_target_nodenum", "1")
    ok(a, "write", f"{SYS}/eph_remotify_enable", "1")
    ok(a, "mount", "/dev/sda1", "/mnt", "-t", "ext4")
    ok(a, "mkfile", "/mnt/f", "--size", "1M")
    before = ok(a, "sha256sum", "/mnt/f")
    ok(a, "drop-caches")
    ok(a, "sleep", "61")
    assert counter(a, "eph_pages_remoted") > 0
    b.kill()                                                # SIGKILL: the kernel closes its sockets
    assert ok(a, "sha256sum", "/mnt/f") == before           # ephemeral pages: misses, read from disk
    dmesg = ok(a, "dmesg")
    assert f"ramster: No longer connected to node system2 (num 1) at {b.address}:{port}" in dmesg
