"""Unloading zcache with RAMster linked in (profile 3.10-unload, beyond Linux).

A node's remote persistent pages come back through frontswap's writeback
before it goes; a node keeping another node's persistent pages refuses, and
so does a node whose pages sit on a peer it cannot reach.
"""

from __future__ import annotations

import pytest

from kmodemu.machine import Machine, MachineDef

from unload.helpers import Console, sha
from unload.test_zcache_unload import EBUSY
from .test_zcache_link import APP, SYS, swap_to_peer, two_nodes, up

DBG = "/sys/kernel/debug/ramster"


def expected_sha() -> str:
    """What node A's process holds, computed on a plain machine with no backend."""
    m = Machine(MachineDef(cmdline="quiet"))
    try:
        con = Console(m)
        con("alloc", *APP)
        return sha(con, "app")
    finally:
        m.close()


@pytest.fixture
def pair():
    for nodes in two_nodes("3.10-unload"):
        yield [Console(n.m) for n in nodes]


def remote_swap(pair) -> int:
    """Node A swaps into zcache and remotifies to node B; the number of pages remoted."""
    a, b = pair
    up(pair, "1", "disable_frontswap_selfshrink=1")
    swap_to_peer(a)
    a("sleep", "61")
    remoted = a.num(f"{DBG}/pers_pages_remoted")
    assert remoted > 0 and b.num(f"{DBG}/foreign_pers_pages") == remoted
    return remoted


def test_remote_pages_come_home_and_the_keeper_goes_after(pair):
    a, b = pair
    remoted = remote_swap(pair)
    # B keeps A's swap: it may not go
    b("rmmod", "zcache", rc=1)
    assert b.err == EBUSY
    assert b.log()[-1] == f"ramster: keeping {remoted} persistent pages for other nodes: not unloading"
    assert b.m.kernel.frontswap.registered
    # A goes: its pages on B come back through the writeback's gets
    held = a.m.kernel.frontswap.curr_pages()
    a("rmmod", "zcache")
    assert f"frontswap: backend unregistered, {held} page(s) written back to swap, " \
           "1 swap device(s) wait for the next one" in a.log()
    assert a.m.kernel.frontswap.curr_pages() == 0
    assert b.num(f"{DBG}/foreign_pers_pages") == 0
    assert not a.m.kernel.vfs.exists(SYS) and not a.m.kernel.vfs.exists(DBG)
    assert "cluster" not in a("ls", "/sys/kernel/config")
    out = a("touch-anon", "app")
    assert "CORRUPT" not in out and " 0 from frontswap" in out
    assert sha(a, "app") == expected_sha()
    b("rmmod", "zcache")
    assert b("lsmod") == "Module                  Size  Used by\n"


def test_a_node_whose_pages_sit_on_an_unreachable_peer_refuses(pair):
    a, b = pair
    remoted = remote_swap(pair)
    assert a.num(f"{SYS}/remote_pers_pages") == remoted
    b.m.close()
    a("rmmod", "zcache", rc=1)
    assert a.err.endswith("Device or resource busy\n")
    assert a.log()[-1] == "ramster: node 1 holds persistent pages and is unreachable: not unloading"
    assert a.m.kernel.frontswap.registered
    assert a("lsmod").splitlines()[1].split()[0] == "zcache"
    assert a.num(f"{SYS}/remote_pers_pages") == remoted
