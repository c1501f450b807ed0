"""The tmem core on its own: pools, clients, put/get/flush semantics, counters.

A literal 64-way radix tree (explicit nodes, extend on insert, free empty nodes
and shrink the root on delete) checks the objnode model of tmem.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import zmod

tmem_m = zmod("tmem")
counters_m = zmod("debug")
Tmem = tmem_m.Tmem
LOCAL = tmem_m.LOCAL_CLIENT


class FakePamops:
    """pampd -> bytes; records every free so tests can see the order."""

    def __init__(self):
        self.data: dict[int, bytes] = {}
        self.freed: list[int] = []
        self.next = 100

    def create(self, data: bytes) -> int:
        self.next += 1
        self.data[self.next] = data
        return self.next

    def get_data(self, pampd, pool):
        return self.data[pampd]

    def get_data_and_free(self, pampd, pool):
        self.freed.append(pampd)
        return self.data.pop(pampd)

    def free(self, pampd, pool):
        self.freed.append(pampd)
        del self.data[pampd]


@pytest.fixture
def core():
    pam = FakePamops()
    zc = counters_m.ZcacheCounters()
    return Tmem(pam, zc), pam, zc


def put(t, pam, pool, oid, index, data):
    return t.put(pool, oid, index, pam.create(data))


# ------------------------------------------------------------ pools/clients

def test_pool_ids_lowest_free_and_sixteen_max(core):
    t, _, _ = core
    ids = [t.new_pool(LOCAL, 0) for _ in range(16)]
    assert ids == list(range(16))
    assert t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST) == -1
    assert t.destroy_pool(LOCAL, 5) == 0
    assert t.destroy_pool(LOCAL, 5) == -1
    assert t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST) == 5
    assert t.get_pool(LOCAL, 5).persistent
    assert t.get_pool(LOCAL, 16) is None and t.get_pool(LOCAL, -1) is None


def test_pool_flags():
    t = Tmem(FakePamops(), counters_m.ZcacheCounters())
    p = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST | tmem_m.TMEM_POOL_SHARED))
    assert p.persistent and p.shared and not p.ephemeral
    e = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    assert e.ephemeral and not e.shared


def test_remote_clients(core):
    t, _, _ = core
    assert t.new_client(3) == 0
    assert t.new_client(3) == -1
    assert t.new_client(16) == -1
    assert t.new_client(LOCAL) == -1  # the host exists from the start
    assert t.new_pool(16, 0) == -1
    assert t.new_pool(15, 0) == 0
    assert t.new_pool(LOCAL, 0) == 0  # clients have their own pool ids
    assert t.get_pool(15, 0) is not t.get_pool(LOCAL, 0)
    assert t.get_pool(7, 0) is None


# ------------------------------------------------------------ data path

def test_ephemeral_get_is_exclusive(core):
    t, pam, _ = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    put(t, pam, pool, 7, 3, b"a")
    assert t.get(pool, 7, 3, 0) == b"a"
    assert t.get(pool, 7, 3, 0) is None
    assert not pool.objs


def test_persistent_get_keeps_unless_asked(core):
    t, pam, _ = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST))
    put(t, pam, pool, 7, 3, b"a")
    assert t.get(pool, 7, 3, 0) == b"a"
    assert t.get(pool, 7, 3, -1) == b"a"
    assert t.get(pool, 7, 3, 1) == b"a"
    assert t.get(pool, 7, 3, -1) is None


def test_ephemeral_get_and_free_minus_one_keeps(core):
    t, pam, _ = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    put(t, pam, pool, 1, 1, b"x")
    assert t.get(pool, 1, 1, -1) == b"x"
    assert t.get(pool, 1, 1, 1) == b"x"
    assert t.get(pool, 1, 1, -1) is None


def test_duplicate_put_frees_old_first(core):
    t, pam, zc = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST))
    put(t, pam, pool, 9, 0, b"old")
    old = next(iter(pam.data))
    put(t, pam, pool, 9, 0, b"new")
    assert pam.freed == [old]
    assert t.get(pool, 9, 0, -1) == b"new"
    assert zc.obj_count == 1 and pool.page_count() == 1


def test_flush_page_and_object(core):
    t, pam, zc = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST))
    for i in range(5):
        put(t, pam, pool, 1, i, bytes([i]))
        put(t, pam, pool, 2, i, bytes([i]))
    assert zc.obj_count == 2
    assert t.flush_page(pool, 1, 3) == 0
    assert t.flush_page(pool, 1, 3) == -1
    assert t.flush_page(pool, 99, 0) == -1
    assert t.get(pool, 1, 3, -1) is None
    assert t.flush_object(pool, 2) == 0
    assert t.flush_object(pool, 2) == -1
    assert zc.obj_count == 1 and len(pam.data) == 4
    t.check()


def test_destroy_pool_frees_everything(core):
    t, pam, zc = core
    pid = t.new_pool(LOCAL, 0)
    pool = t.get_pool(LOCAL, pid)
    for i in range(70):
        put(t, pam, pool, i % 3, i * 100, b"z")
    assert zc.obj_count == 3 and zc.objnode_count > 0
    assert t.destroy_pool(LOCAL, pid) == 0
    assert not pam.data and zc.obj_count == 0 and zc.objnode_count == 0
    assert zc.obj_count_max == 3
    assert t.get_pool(LOCAL, pid) is None


def test_failed_get_stays_failed_until_put(core):
    t, pam, _ = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    assert t.get(pool, 1, 1, 0) is None
    assert t.get(pool, 1, 1, 0) is None
    put(t, pam, pool, 1, 1, b"p")
    assert t.get(pool, 1, 1, 0) == b"p"
    assert t.get(pool, 1, 1, 0) is None


def test_failed_free_read_still_forgets(core):
    """A get that frees but cannot read (dying data) must not leave the entry behind."""
    t, pam, _ = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    put(t, pam, pool, 1, 1, b"p")
    pam.get_data_and_free = lambda pampd, pool: None
    assert t.get(pool, 1, 1, 0) is None
    assert t.get(pool, 1, 1, -1) is None


def test_take_and_peek(core):
    t, pam, zc = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    put(t, pam, pool, 9, 1, b"a")
    put(t, pam, pool, 9, 2, b"b")
    put(t, pam, pool, 9, 3, b"c")
    p = t.peek(pool, 9, 2)
    assert pam.data[p] == b"b" and t.peek(pool, 9, 2) == p      # peek keeps
    assert t.peek(pool, 8, 2) is None and t.peek(pool, 9, 4) is None
    assert t.take(pool, 9, 2) == p and t.take(pool, 9, 2) is None
    assert pam.freed == []                                      # the caller frees
    assert zc.obj_count == 1 and zc.objnode_count == 1
    t.take(pool, 9, 1)
    t.take(pool, 9, 3)
    assert zc.obj_count == 0 and zc.objnode_count == 0 and not pool.objs
    assert t.take(pool, 9, 3) is None
    t.check()


def test_flush_handle_by_numbers(core):
    t, pam, _ = core
    pid = t.new_pool(LOCAL, 0)
    pool = t.get_pool(LOCAL, pid)
    put(t, pam, pool, 5, 6, b"q")
    assert t.flush_handle(LOCAL, pid, 5, 6) == 0
    assert t.flush_handle(LOCAL, pid, 5, 6) == -1
    assert t.flush_handle(LOCAL, 9, 5, 6) == -1
    assert t.flush_handle(3, 0, 5, 6) == -1


def test_oid_packing():
    key = bytes(range(24))
    oid = tmem_m.oid_from_key(key)
    words = [int.from_bytes(key[i:i + 8], "little") for i in (0, 8, 16)]
    assert oid == tmem_m.oid_pack(*words)
    assert tmem_m.oid_unpack(oid) == tuple(words)
    assert tmem_m.oid_pack(2**64 - 1, 2**64 - 1, 2**64 - 1) == 2**192 - 1


# ------------------------------------------------------------ objnode model

@pytest.mark.parametrize("indices, nodes", [
    ([0], 0),                 # index 0 lives in the root pointer
    ([1], 1),
    ([0, 1], 1),
    ([63], 1),
    ([64], 2),                # height 2: one leaf and the root
    ([0, 64], 3),
    ([0, 1, 2, 63], 1),
    ([4096], 3),              # height 3
    ([0, 4096], 5),
    (list(range(200)), 5),    # leaves 0..3 and a root
    ([2**32 - 1], 6),         # height 6 for the largest u32
])
def test_objnode_counts_by_hand(core, indices, nodes):
    t, pam, zc = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, 0))
    for i in indices:
        put(t, pam, pool, 1, i, b"")
    assert zc.objnode_count == nodes == tmem_m.obj_objnodes(pool, 1)
    t.check()


def test_objnode_root_shrinks_on_delete(core):
    t, pam, zc = core
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST))
    for i in (0, 4096):
        put(t, pam, pool, 1, i, b"")
    assert zc.objnode_count == 5
    t.flush_page(pool, 1, 4096)
    assert zc.objnode_count == 0  # {0}: back to height 0
    assert zc.objnode_count_max == 5
    put(t, pam, pool, 1, 5, b"")
    assert zc.objnode_count == 1
    t.check()


class RadixTree:
    """A literal 64-way tree with the kernel's grow/shrink rules, for cross-checking."""

    def __init__(self):
        self.root = None  # a pampd (height 0) or a node dict {slot: child}
        self.height = 0
        self.nodes = 0

    @staticmethod
    def maxindex(h):
        return (1 << (6 * h)) - 1 if h else 0

    def insert(self, i):
        if i > self.maxindex(self.height):
            h = self.height
            while i > self.maxindex(h):
                h += 1
            if self.root is None:
                self.height = h
            else:
                while self.height < h:
                    self.root = {0: self.root}
                    self.nodes += 1
                    self.height += 1
        if self.height == 0:
            self.root = "p"
            return
        if self.root is None:
            self.root = {}
            self.nodes += 1
        node = self.root
        for level in range(self.height - 1, 0, -1):
            slot = (i >> (6 * level)) & 63
            if slot not in node:
                node[slot] = {}
                self.nodes += 1
            node = node[slot]
        node[i & 63] = "p"

    def delete(self, i):
        if self.height == 0:
            self.root = None
            return
        path = []
        node = self.root
        for level in range(self.height - 1, -1, -1):
            slot = (i >> (6 * level)) & 63
            path.append((node, slot))
            node = node.get(slot) if level else node
        for depth in range(len(path) - 1, -1, -1):
            node, slot = path[depth]
            del node[slot]
            if node:
                if depth == 0:
                    while self.height > 0 and len(self.root) == 1 and 0 in self.root:
                        self.root = self.root[0]
                        self.height -= 1
                        self.nodes -= 1
                return
            self.nodes -= 1
        self.root = None
        self.height = 0


index_st = st.one_of(st.integers(0, 70), st.integers(0, 5000), st.integers(0, 2**32 - 1))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), index_st), max_size=60))
def test_objnode_model_matches_literal_tree(ops):
    t = Tmem(FakePamops(), counters_m.ZcacheCounters())
    pam = t.pamops
    pool = t.get_pool(LOCAL, t.new_pool(LOCAL, tmem_m.TMEM_POOL_PERSIST))
    tree = RadixTree()
    present = set()
    peak = 0
    for is_put, i in ops:
        if is_put or not present:
            if i not in present:
                tree.insert(i)
                present.add(i)
            put(t, pam, pool, 42, i, b"")
        else:
            victim = sorted(present)[i % len(present)]
            tree.delete(victim)
            present.discard(victim)
            if victim & 1:   # the host's path: take the pampd, free it itself
                assert t.take(pool, 42, victim) is not None
            else:
                assert t.flush_page(pool, 42, victim) == 0
        peak = max(peak, tree.nodes)
        assert t.zc.objnode_count == tree.nodes, (sorted(present), tree.height)
    assert t.zc.objnode_count_max == peak
    t.check()
