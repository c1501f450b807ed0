"""fail_peer: an r2net send to a peer fails as if the peer died with the message in flight.

The send returns -EHOSTDOWN (R2NET_ERR_DIED), nothing reaches the peer and the
link stays up, so the next send goes through. RAMster reacts as Linux 3.10
does: a failed remotify leaves the zpage local (counted, never retried), a
failed get of a remote ephemeral page is a miss, a failed get of a remote
persistent page is zcache_get_page's WARN_ONCE. The first half drives RAMster
over the fake zcache (exact counters); the second half runs two machines with
the real zcache, frontswap and cleancache (sha256 of what comes back).
"""

from __future__ import annotations

import errno

import pytest

from kmodemu_plugins.ramster.r2net import RMSTR_KEY, RMSTR_TMEM_FLUSH, XHandle
from kmodemu_plugins.ramster.zcache_side import RemotePampd

from .fakes import Local, Node, page, sha
from .test_tcp import IPS, free_port, up_all
from .test_zcache_link import M, file_to_peer, swap_to_peer, two_nodes, up

SYS = "/sys/kernel/mm/ramster"
DBG = "/sys/kernel/debug/ramster"
FP = "/sys/kernel/debug/fail_peer"
EPH, PERS = 0, 1
OID = (7, 0, 0)
FORCED = "FAULT_INJECTION: forcing a failure"
WARN = ["------------[ cut here ]------------",
        "WARNING: at drivers/staging/zcache/zcache-main.c zcache_get_page()",
        "zcache_get fails on persistent pool, bad things are very likely to happen soon"]


@pytest.fixture
def pair():
    """Node 0 remotifies to node 1; both show the fail_peer knobs (armed with nothing)."""
    port = free_port(*IPS[:2])
    nodes = [Node(i, IPS[i], port, cmdline="fail_peer=1,0,0,-1") for i in range(2)]
    for n in nodes:
        n.configure("c", nodes)
    up_all(nodes)
    n0, n1 = nodes
    n0.write(f"{SYS}/remote_target_nodenum", "1")
    for n in nodes:
        n.zc.new_pool(EPH, True)
        n.zc.new_pool(PERS, False)
    yield nodes
    for n in nodes:
        n.close()


def arm(node: Node, times: int, probability: int = 100) -> None:
    node.write(f"{FP}/probability", str(probability))
    node.write(f"{FP}/times", str(times))


def forced(node: Node) -> int:
    return node.dmesg().count(FORCED)


def remotify(node: Node, pool: int, pages: int, *, times: int | None = None) -> None:
    """Put ``pages`` test pages into ``pool`` and let one remotify run (60 s) take them;
    with ``times``, fail_peer is armed for that many sends first."""
    for i in range(pages):
        node.zc.put(pool, OID, i, page(i))
    if times is not None:
        arm(node, times=times)
    node.write(f"{SYS}/{'pers' if pool == PERS else 'eph'}_remotify_enable", "1")
    node.sleep(60)


def test_the_knobs_are_those_of_every_fault_point(pair):
    n0, _ = pair
    assert n0.kernel.vfs.listdir(FP) == ["probability", "interval", "times", "space", "verbose",
                                         "injected"]
    assert [n0.read(f"{FP}/{k}") for k in ("probability", "interval", "times", "space")] == \
        ["0\n", "1\n", "-1\n", "0\n"]
    plain = Node(2, "127.0.0.3", 7777)                 # not named on the command line: no dir
    try:
        assert not plain.kernel.vfs.exists(FP)
    finally:
        plain.close()


def test_a_failed_send_is_ehostdown_reaches_nobody_and_the_link_stays(pair):
    n0, n1 = pair
    n0.zc.put(PERS, OID, 0, page(0))
    n0.write(f"{SYS}/pers_remotify_enable", "1")
    n0.sleep(60)
    assert n1.counter("foreign_pers_pages") == 1
    arm(n0, times=1)
    xh = XHandle(0, PERS, OID, 0)
    assert n0.rs.net.send_message(RMSTR_TMEM_FLUSH, RMSTR_KEY, xh.pack(), 1) == \
        (-errno.EHOSTDOWN, 0)
    assert n1.counter("foreign_pers_pages") == 1       # the flush never arrived
    assert n0.rs.net.node_state(1) == (True, 0)        # nothing was torn down
    assert n0.read(f"{FP}/injected") == "1\n" and n0.read(f"{FP}/times") == "0\n"
    assert forced(n0) == 1
    assert n0.rs.net.send_message(RMSTR_TMEM_FLUSH, RMSTR_KEY, xh.pack(), 1) == (0, 0)
    assert n1.counter("foreign_pers_pages") == 0


def test_a_failed_remotify_leaves_the_pages_local_and_is_never_retried(pair):
    n0, n1 = pair
    remotify(n0, PERS, 10, times=1)   # 5 pageframes of 2 zpages; the first put of the run fails
    assert n0.counter("pers_pages_remote_failed") == 1
    assert n0.counter("pers_pages_remoted") == 8
    assert n0.read(f"{SYS}/remote_pers_pages") == "8\n"
    assert n1.counter("foreign_pers_pages") == 8
    # the oldest pageframe (pages 0 and 1) went first, failed, and stays a local zombie
    kinds = [type(n0.zc.entries[(PERS, OID, i)]) for i in range(10)]
    assert kinds == [Local] * 2 + [RemotePampd] * 8
    n0.sleep(5)                                        # five more runs: never retried
    assert n0.counter("pers_pages_remote_failed") == 1
    assert n0.counter("pers_pages_remoted") == 8
    assert forced(n0) == 1
    for i in range(10):                                # local and remote alike: intact
        assert sha(n0.zc.get(PERS, OID, i)) == sha(page(i))
    assert n0.counter("remote_pers_pages_succ_get") == 8
    assert n1.counter("foreign_pers_pages") == 0


def test_every_send_failing_remotifies_nothing(pair):
    n0, n1 = pair
    remotify(n0, EPH, 6, times=-1)
    # one failed put per pageframe taken off the LRU (three of them), then the LRU is empty
    assert n0.counter("eph_pages_remote_failed") == 3
    assert n0.counter("eph_pages_remoted") == 0
    assert n0.read(f"{FP}/injected") == "3\n"
    assert n1.counter("foreign_eph_pages") == 0
    assert [sha(n0.zc.get(EPH, OID, i)) for i in range(6)] == [sha(page(i)) for i in range(6)]


def test_a_failed_ephemeral_get_is_a_miss_and_the_entry_stays(pair):
    n0, n1 = pair
    remotify(n0, EPH, 2)
    assert n1.counter("foreign_eph_pages") == 2
    arm(n0, times=1)
    assert n0.zc.get(EPH, OID, 0) is None              # a miss: the page is read from disk
    assert isinstance(n0.zc.entries[(EPH, OID, 0)], RemotePampd)
    assert n1.counter("foreign_eph_pages") == 2        # the peer never saw the request
    # localify never ran: neither a successful nor an unsuccessful remote get
    assert n0.counter("remote_eph_pages_succ_get") == 0
    assert n0.counter("remote_eph_pages_unsucc_get") == 0
    assert not any(line in n0.dmesg() for line in WARN)   # an ephemeral miss warns nobody
    assert sha(n0.zc.get(EPH, OID, 0)) == sha(page(0))   # the fault is spent: the page comes
    assert n0.counter("remote_eph_pages_succ_get") == 1
    assert n1.counter("foreign_eph_pages") == 1


def test_a_failed_persistent_get_is_zcache_get_pages_warn_once(pair):
    n0, n1 = pair
    remotify(n0, PERS, 2)
    assert n0.read(f"{SYS}/remote_pers_pages") == "2\n"
    assert "W" not in n0.kernel.taint
    arm(n0, times=2)
    assert n0.zc.get(PERS, OID, 0) is None
    assert n0.zc.get(PERS, OID, 1) is None
    log = n0.dmesg()
    assert log[-5:] == [FORCED] + WARN + [FORCED]      # WARN_ONCE: the first failure only
    assert sum(line == WARN[2] for line in log) == 1
    assert forced(n0) == 2
    assert "W" in n0.kernel.taint and "D" not in n0.kernel.taint
    assert "kernel BUG at drivers/staging/zcache/ramster/ramster.c!" not in log
    # nothing moved: still remote here, still foreign there
    assert n0.read(f"{SYS}/remote_pers_pages") == "2\n"
    assert n1.counter("foreign_pers_pages") == 2
    assert n0.counter("remote_pers_pages_unsucc_get") == 0
    assert [sha(n0.zc.get(PERS, OID, i)) for i in range(2)] == [sha(page(i)) for i in range(2)]
    assert n0.counter("remote_pers_pages_succ_get") == 2


def test_a_failed_remote_flush_is_counted_and_the_peer_keeps_the_page(pair):
    n0, n1 = pair
    remotify(n0, PERS, 2)
    n0.zc.flush_page(PERS, OID, 0)                     # queued; the worker sends it
    arm(n0, times=1)
    n0.sleep(1)
    assert n0.counter("remote_page_flushes_failed") == 1
    assert n0.counter("remote_pages_flushed") == 0
    assert n1.counter("foreign_pers_pages") == 2       # a stale foreign page, as in Linux
    assert n0.read(f"{SYS}/remote_pers_pages") == "1\n"


def test_another_send_error_is_logged_as_untested(pair):
    """r2net_remote_async_get logs errors other than -ENOTCONN/-EHOSTDOWN/-EAGAIN."""
    n0, n1 = pair
    remotify(n0, EPH, 1)
    n1.rs.net.unregister_handlers()                    # node 1 answers "no handler"
    assert n0.zc.get(EPH, OID, 0) is None
    assert n0.dmesg()[-1] == f"UNTESTED ret<0 in ramster_remote_async_get: ret=-{errno.ENOPROTOOPT}"


# -- two machines, the real zcache, frontswap and cleancache ------------------------------------

@pytest.fixture
def machines():
    """Two machines with the real zcache and RAMster, fail_peer armed on the command line."""
    for nodes in two_nodes(cmdline="quiet fail_peer=1,0,0,-1"):
        up(nodes, "1", "disable_frontswap_selfshrink=1")
        yield nodes


def marm(a: M, times: int) -> None:
    a("write", f"{FP}/probability", "100")
    a("write", f"{FP}/times", str(times))


def test_cleancache_pages_stay_intact_when_every_remote_put_fails(machines):
    a, b = machines
    before = file_to_peer(a)
    marm(a, -1)
    a("sleep", "60")
    failed = a.n("eph_pages_remote_failed")
    assert failed > 0
    assert int(a("cat", f"{FP}/injected")) == failed   # one failed put per pageframe tried
    assert a.n("eph_pages_remoted") == 0
    assert b.n("foreign_eph_pages") == 0
    assert a("sha256sum", "/mnt/f") == before
    assert a.n("remote_eph_pages_succ_get") == 0


def test_cleancache_gets_that_fail_are_misses_read_from_disk(machines):
    a, b = machines
    before = file_to_peer(a)
    a("sleep", "60")
    remoted = a.n("eph_pages_remoted")
    assert remoted > 0 and b.n("foreign_eph_pages") == remoted
    a("write", f"{SYS}/eph_remotify_enable", "0")
    marm(a, -1)
    assert a("sha256sum", "/mnt/f") == before          # every remote page: a miss, from disk
    injected = int(a("cat", f"{FP}/injected"))
    assert injected == remoted                         # one failed get per remote page read
    assert a.n("remote_eph_pages_succ_get") == 0
    assert a.n("remote_eph_pages_unsucc_get") == 0
    assert b.n("foreign_eph_pages") == remoted         # the peer never saw a request
    assert WARN[2] not in a("dmesg")


def test_swap_pages_stay_intact_when_every_remote_put_fails(machines):
    a, b = machines
    swap_to_peer(a)
    marm(a, -1)
    a("sleep", "61")
    failed = a.n("pers_pages_remote_failed")
    assert failed > 0 and int(a("cat", f"{FP}/injected")) == failed
    assert a.n("pers_pages_remoted") == 0 and b.n("foreign_pers_pages") == 0
    assert a("cat", f"{SYS}/remote_pers_pages") == "0\n"
    out = a("touch-anon", "app")
    assert "CORRUPT" not in out
    assert WARN[2] not in a("dmesg")


def test_a_failed_swap_page_get_is_lost_and_warned_as_linux_does(machines):
    """Linux's frontswap then reads the swap slot, which never held the data: one page lost."""
    a, b = machines
    swap_to_peer(a)
    a("sleep", "61")
    remoted = a.n("pers_pages_remoted")
    assert remoted > 1
    a("write", f"{SYS}/pers_remotify_enable", "0")
    marm(a, 1)
    out = a("touch-anon", "app", rc=1)
    assert out.rstrip().endswith(", 1 CORRUPT")
    log = a("dmesg").splitlines()
    texts = [line.split("] ", 1)[1] for line in log if "] " in line]
    at = texts.index(WARN[0])
    assert texts[at:at + 3] == WARN and texts.count(WARN[2]) == 1
    assert "kernel BUG at drivers/staging/zcache/ramster/ramster.c!" not in texts
    assert int(a("cat", "/proc/sys/kernel/tainted")) & 512      # TAINT_WARN
    assert a.n("remote_pers_pages_succ_get") == remoted - 1
    assert b.n("foreign_pers_pages") == 1              # the page the request never reached
