"""RAMster's core against the fake zcache: remotify, fetch back, flush, failures, knobs."""

from __future__ import annotations

import errno
import hashlib
import random

import pytest

from kmodemu.errors import KernelError
from kmodemu_plugins.ramster.debug import RamsterCounters
from kmodemu_plugins.ramster.zcache_side import RemotePampd

from .fakes import Node
from .test_tcp import make_nodes, up_all, wait_for

SYS = "/sys/kernel/mm/ramster"
EPH, PERS = 0, 1
OID = (1, 2, 3)


def page(i: int) -> bytes:
    rng = random.Random(i)
    return bytes(rng.getrandbits(8) for _ in range(512)) * 8   # compressible, distinct


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def cluster(n: int = 2, target: int = 1, **kw) -> list[Node]:
    nodes = make_nodes(n, **kw)
    up_all(nodes)
    for node in nodes:
        if node.num != target:
            node.write(f"{SYS}/remote_target_nodenum", str(target))
        node.zc.new_pool(EPH, True)
        node.zc.new_pool(PERS, False)
    return nodes


@pytest.fixture
def pair():
    nodes = cluster()
    yield nodes
    for n in nodes:
        n.close()


def enable(node: Node, eph: bool = True, pers: bool = True) -> None:
    node.write(f"{SYS}/eph_remotify_enable", "1" if eph else "0")
    node.write(f"{SYS}/pers_remotify_enable", "1" if pers else "0")


def test_debugfs_and_sysfs_names(pair):
    n0, _ = pair
    k = n0.kernel
    assert k.vfs.listdir("/sys/kernel/debug/ramster") == [n for n, _ in RamsterCounters().items()]
    assert k.vfs.listdir(SYS) == ["interface_revision", "remote_pers_pages", "manual_node_up",
                                  "remote_target_nodenum", "pers_remotify_enable",
                                  "eph_remotify_enable"]
    assert n0.read(f"{SYS}/interface_revision") == "5\n"
    assert n0.read(f"{SYS}/remote_target_nodenum") == "1\n"
    assert "ramster: node 1 set as remotification target" in n0.dmesg()


def test_target_quirks():
    n = Node(0, "127.0.0.1", 7777)
    try:
        with pytest.raises(KernelError) as e:
            n.write(f"{SYS}/remote_target_nodenum", "-1")
        assert e.value.errno == errno.EINVAL and "ramster: bad strtoul?" in n.dmesg()
        with pytest.raises(KernelError):
            n.write(f"{SYS}/remote_target_nodenum", "8")
        assert "ramster: bad node_num=8?" in n.dmesg()
        n.write(f"{SYS}/remote_target_nodenum", "3")       # not up: logged, accepted, ignored
        assert "ramster: node 3 not up, ignoring setting of remotification target" in n.dmesg()
        assert n.read(f"{SYS}/remote_target_nodenum") == "unset\n"
        n.write(f"{SYS}/manual_node_up", "3")              # no cluster yet
        assert "ramster: cluster not alive, node_up_manual ignored" in n.dmesg()
        with pytest.raises(KernelError) as e:
            n.write(f"{SYS}/remote_target_nodenum", "3")   # up, but not in configfs
        assert e.value.errno == errno.EINVAL
        assert "ramster: bad num to node node_num=3?" in n.dmesg()
        with pytest.raises(KernelError):
            n.write(f"{SYS}/eph_remotify_enable", "yes")
    finally:
        n.close()


def test_worker_timing_and_batch(pair):
    n0, n1 = pair
    enable(n0)
    for i in range(500):
        n0.zc.put(PERS, OID, i, page(i))
    n0.sleep(59)                      # boot + commands took < 1 s; the first run is at 60 s
    assert n0.counter("pers_pages_remoted") == 0
    n0.sleep(1)
    assert n0.counter("pers_pages_remoted") == 200     # 100 pageframes of 2 zpages
    assert n1.counter("foreign_pers_pages") == 200
    assert n0.read(f"{SYS}/remote_pers_pages") == "200\n"
    n0.sleep(1)
    assert n0.counter("pers_pages_remoted") == 400
    n0.sleep(1)
    assert n0.counter("pers_pages_remoted") == 500
    assert n1.counter("foreign_pers_pages") == n1.counter("foreign_pers_pages_max") == 500
    # LRU order: the oldest pageframes went first
    assert all(isinstance(n0.zc.entries[(PERS, OID, i)], RemotePampd) for i in range(500))


def test_lru_order(pair):
    n0, n1 = pair
    for i in range(300):
        n0.zc.put(EPH, OID, i, page(i))
    enable(n0, pers=False)
    n0.sleep(60)
    remote = [i for i in range(300) if isinstance(n0.zc.entries[(EPH, OID, i)], RemotePampd)]
    assert remote == list(range(200))
    assert n0.counter("eph_pages_remoted") == 200 == n1.counter("foreign_eph_pages")


def test_round_trip_sha256_and_counters(pair):
    n0, n1 = pair
    for i in range(10):
        n0.zc.put(EPH, OID, i, page(i))
        n0.zc.put(PERS, OID, i, page(100 + i))
    enable(n0)
    n0.sleep(60)
    assert n0.counter("eph_pages_remoted") == 10 and n0.counter("pers_pages_remoted") == 10
    pampd = n0.zc.entries[(PERS, OID, 3)]
    assert isinstance(pampd, RemotePampd) and pampd.node == 1
    assert pampd.packed & 0b110 == 0b100 and (pampd.packed >> 3) & 0xFF == 1
    with n0.kernel.bkl:
        for i in range(10):
            assert sha(n0.zc.get(EPH, OID, i)) == sha(page(i))
            assert sha(n0.zc.get(PERS, OID, i)) == sha(page(100 + i))
        assert n0.zc.get(EPH, OID, 0) is None          # ephemeral gets are exclusive
    assert n0.counter("remote_eph_pages_succ_get") == 10
    assert n0.counter("remote_pers_pages_succ_get") == 10
    assert n1.counter("foreign_eph_pages") == 0 and n1.counter("foreign_pers_pages") == 0
    assert n1.counter("foreign_eph_pages_max") == 10
    assert n0.read(f"{SYS}/remote_pers_pages") == "0\n"


def test_failed_put_is_never_retried(pair):
    n0, n1 = pair
    n1.zc.foreign_put = lambda *a: -1                   # the remote store refuses everything
    for i in range(4):
        n0.zc.put(PERS, OID, i, page(i))
    enable(n0)
    n0.sleep(60)
    assert n0.counter("pers_pages_remote_failed") == 2   # one per pageframe, then it stops
    assert n0.counter("pers_pages_remoted") == 0
    n0.sleep(5)
    assert n0.counter("pers_pages_remote_failed") == 2   # zombies are not picked again
    assert not any(isinstance(p, RemotePampd) for p in n0.zc.entries.values())
    with n0.kernel.bkl:
        assert n0.zc.get(PERS, OID, 0) == page(0)       # the data stayed local


def test_remote_store_rejects_poor_compression(pair):
    n0, n1 = pair
    rng = random.Random(5)
    n0.zc.put(PERS, OID, 0, bytes(rng.getrandbits(8) for _ in range(4096)))
    enable(n0)
    n0.sleep(60)
    assert n0.counter("pers_pages_remote_failed") == 1
    assert n1.counter("foreign_pers_pages") == 0


def test_target_down_fails_fast(pair):
    n0, n1 = pair
    for i in range(2):
        n0.zc.put(EPH, OID, i, page(i))
    enable(n0)
    n1.close()
    assert wait_for(lambda: not n0.rs.net.nodes[1].sc_valid)
    n0.sleep(60)
    assert n0.counter("eph_pages_remote_failed") == 1


def test_eph_miss_when_the_remote_evicted_it():
    nodes = cluster(eph_limit=4)
    n0, n1 = nodes
    try:
        for i in range(8):
            n0.zc.put(EPH, OID, i, page(i))
        enable(n0, pers=False)
        n0.sleep(60)
        assert n0.counter("eph_pages_remoted") == 8
        assert n1.counter("foreign_eph_pages") == 4         # the first 4 were evicted
        with n0.kernel.bkl:
            assert n0.zc.get(EPH, OID, 0) is None
            assert n0.zc.get(EPH, OID, 7) == page(7)
        assert n0.counter("remote_eph_pages_unsucc_get") == 1
        assert (EPH, OID, 0) not in n0.zc.entries             # the stale descriptor is gone
    finally:
        for n in nodes:
            n.close()


def test_lost_persistent_page_is_a_bug(pair):
    n0, n1 = pair
    n0.zc.put(PERS, OID, 0, page(0))
    enable(n0)
    n0.sleep(60)
    n1.zc.foreign.clear()                                   # the remote copy is gone
    with n0.kernel.bkl:
        assert n0.zc.get(PERS, OID, 0) is None              # that swap-in fails
    assert "kernel BUG at drivers/staging/zcache/ramster/ramster.c!" in n0.dmesg()
    assert "D" in n0.kernel.taint


def test_flushes_are_queued_and_sent_before_the_next_step(pair):
    n0, n1 = pair
    for i in range(4):
        n0.zc.put(PERS, OID, i, page(i))
        n0.zc.put(EPH, (9, 9, 9), i, page(50 + i))
    enable(n0)
    n0.sleep(60)
    assert n1.counter("foreign_pers_pages") == 4 and n1.counter("foreign_eph_pages") == 4
    n0.zc.flush_page(PERS, OID, 0)
    n0.zc.flush_page(EPH, (9, 9, 9), 0)                     # ephemeral: nothing is sent
    assert n0.read(f"{SYS}/remote_pers_pages") == "3\n"
    assert n1.counter("foreign_pers_pages") == 4            # not yet: at the worker's next run
    n0.sleep(1)
    assert n0.counter("remote_pages_flushed") == 1
    assert n1.counter("foreign_pers_pages") == 3
    assert n1.counter("foreign_eph_pages") == 4             # stale foreign eph page lingers
    n0.zc.flush_object(PERS, OID)
    n0.sleep(1)
    assert n0.counter("remote_objects_flushed") == 1
    assert n1.counter("foreign_pers_pages") == 0


def test_flush_to_a_dead_node_counts_a_failure(pair):
    n0, n1 = pair
    n0.zc.put(PERS, OID, 0, page(0))
    enable(n0)
    n0.sleep(60)
    n0.zc.flush_page(PERS, OID, 0)
    n1.close()
    assert wait_for(lambda: not n0.rs.net.nodes[1].sc_valid)
    n0.sleep(1)
    assert n0.counter("remote_page_flushes_failed") == 1


def test_get_races(pair):
    """A flush or a duplicate put landing while the reply is on its way."""
    n0, n1 = pair
    for i in range(4):
        n0.zc.put(EPH, OID, i, page(i))
    enable(n0, pers=False)
    n0.sleep(60)
    real = n1.zc.foreign_get

    def racing_flush(*a):
        n0.zc.entries.pop((EPH, OID, 0), None)             # the local entry vanishes
        return real(*a)
    n1.zc.foreign_get = racing_flush
    with n0.kernel.bkl:
        assert n0.zc.get(EPH, OID, 0) is None
    assert n0.counter("remote_eph_pages_unsucc_get") == 1

    def racing_put(*a):
        n0.zc.entries[(EPH, OID, 1)] = type(n0.zc.entries[(EPH, OID, 2)])  # any local pampd
        return real(*a)
    n1.zc.foreign_get = racing_put
    with n0.kernel.bkl:
        pampd = n0.zc.entries[(EPH, OID, 1)]
        ret, _ = n0.rs.repatriate(EPH, OID, 1, pampd, True)
    assert ret == -1                                        # -EEXIST becomes a failed get
    assert n0.counter("remote_eph_pages_unsucc_get") == 2


def test_two_objects_nodes_must_match(pair):
    n0, _ = pair
    assert n0.rs._track(PERS, OID, 1)
    assert not n0.rs._track(PERS, OID, 2)
    assert "D" in n0.kernel.taint


def test_preload_without_exclusive_gets():
    nodes = cluster(exclusive_gets=False)
    n0, n1 = nodes
    try:
        n0.zc.put(PERS, OID, 0, page(0))
        enable(n0)
        n0.sleep(60)
        with n0.kernel.bkl:
            assert n0.zc.get(PERS, OID, 0, exclusive=False) == page(0)
        assert n1.counter("foreign_pers_pages") == 0        # freed remotely: repatriated
        assert not isinstance(n0.zc.entries[(PERS, OID, 0)], RemotePampd)
        with n0.kernel.bkl:
            assert n0.zc.get(PERS, OID, 0, exclusive=False) == page(0)   # now local
        assert n0.read(f"{SYS}/remote_pers_pages") == "0\n"
    finally:
        for n in nodes:
            n.close()


def test_ram_server_topology():
    nodes = cluster(3, target=0)
    try:
        for n in nodes[1:]:
            for i in range(6):
                n.zc.put(PERS, OID, i, page(10 * n.num + i))
            enable(n)
        for n in nodes[1:]:
            n.sleep(60)
        server = nodes[0]
        assert server.counter("foreign_pers_pages") == 12
        assert sum(n.counter("pers_pages_remoted") for n in nodes[1:]) == 12
        # the server files them under each sender's node number
        assert {k[0] for k in server.zc.foreign} == {1, 2}
        for n in nodes[1:]:
            with n.kernel.bkl:
                for i in range(6):
                    assert n.zc.get(PERS, OID, i) == page(10 * n.num + i)
        assert server.counter("foreign_pers_pages") == 0
    finally:
        for n in nodes:
            n.close()


def test_symmetric_three_node_counters_agree():
    nodes = cluster(3, target=0)
    try:
        nodes[0].write(f"{SYS}/remote_target_nodenum", "2")
        for n in nodes:
            for i in range(4):
                n.zc.put(EPH, OID, i, page(i))
            enable(n, pers=False)
        for n in nodes:
            n.sleep(60)
        assert nodes[2].counter("foreign_eph_pages") == nodes[0].counter("eph_pages_remoted")
        assert nodes[0].counter("foreign_eph_pages") == (
            nodes[1].counter("eph_pages_remoted") + nodes[2].counter("eph_pages_remoted"))
    finally:
        for n in nodes:
            n.close()


class FakeFrontswap:
    def __init__(self, pages: int):
        self.pages = pages
        self.registered = True
        self.shrinks: list[int] = []

    def curr_pages(self) -> int:
        return self.pages

    def shrink(self, target: int) -> None:
        self.shrinks.append(target)
        self.pages = min(self.pages, target)


def test_frontswap_selfshrink_timing_hysteresis_inertia():
    n = Node(0, "127.0.0.1", 7777, selfshrink=True)
    try:
        assert "ramster: Initializing frontswap selfshrink driver." in n.dmesg()
        fs = FakeFrontswap(100)
        n.kernel.frontswap = fs
        n.sleep(5)       # first look: pages grew from 0 -> inertia reset
        assert fs.shrinks == []
        n.sleep(10)      # inertia 3: two more quiet runs are not enough
        assert fs.shrinks == []
        n.sleep(5)
        assert fs.shrinks == [95]             # 100 - 100 // 20
        n.sleep(5)
        assert fs.shrinks == [95, 91]
        fs.pages = 15
        n.sleep(5)
        assert fs.shrinks[-1] == 0            # at or under the hysteresis: everything
        fs.registered = False
        n.sleep(5)
        assert not n.rs.selfshrink_timer.pending   # frontswap off: not rescheduled
    finally:
        n.close()
