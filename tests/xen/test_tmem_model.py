"""The hypervisor's tmem pools against a plain reference model (hypothesis).

With a host big enough that nothing is evicted, a private ephemeral pool is a
dict whose get removes, a persistent pool a dict whose get keeps; a shared
ephemeral pool keeps too. Every step checks the return value, the bytes and
that host memory still adds up.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu.xen.abi import EEMPTY, PAGE_SIZE

from .helpers import balanced, flush, flush_obj, get, host, new_pool, page, put

OIDS = st.sampled_from([(1, 0, 0), (2, 0, 0), (7, 3, 9)])
INDEXES = st.integers(0, 300)
OPS = st.lists(st.tuples(st.sampled_from(["put", "get", "flush", "flush_obj"]), OIDS, INDEXES,
                         st.integers(0, 5)), max_size=60)
KINDS = st.sampled_from([("private-eph", False, False), ("persistent", True, False),
                         ("shared-eph", False, True)])


@settings(max_examples=150)
@given(kind=KINDS, ops=OPS, cmdline=st.sampled_from(["tmem", "tmem tmem_compress",
                                                      "tmem tmem_dedup tmem_compress",
                                                      "tmem tmem_dedup tmem_tze"]))
def test_pool_matches_reference(kind, ops, cmdline):
    _, persistent, shared = kind
    hv = host(256, cmdline)
    dom = hv.domain_create("g", 8192, 16384)
    pid = new_pool(hv, dom, persistent=persistent, shared=shared,
                   uuid=(0x1234, 0x5678) if shared else (0, 0))
    assert pid == 0
    ref: dict = {}
    for op, oid, index, tag in ops:
        key = (oid, index)
        if op == "put":
            # tags 0/1 are compressible (and identical, for dedup); the others are not
            data = page(0, fill=tag) if tag < 2 else page(tag * 1000 + index)
            assert put(hv, dom, pid, oid, index, data) == 1
            ref[key] = data
        elif op == "get":
            rc, data = get(hv, dom, pid, oid, index)
            if not ref:
                assert rc == -EEMPTY
            elif key in ref:
                assert rc == 1 and data == ref[key] and len(data) == PAGE_SIZE
                if not (persistent or shared):
                    del ref[key]
            else:
                assert rc == 0
        elif op == "flush":
            assert flush(hv, dom, pid, oid, index) == 1
            ref.pop(key, None)
        else:
            assert flush_obj(hv, dom, pid, oid) == 1
            for k in [k for k in ref if k[0] == oid]:
                del ref[k]
        assert balanced(hv)
        pool = dom.tmem.pools[pid]
        assert pool.pgp_count == len(ref)
        assert sum(len(o.pages) for o in pool.objs.values()) == len(ref)
    # everything left reads back, then the domain's death gives every frame back
    for (oid, index), data in list(ref.items()):
        assert get(hv, dom, pid, oid, index) == (1, data)
    free_before = hv.heap.free_pages
    hv.domain_destroy(dom)
    acc = hv.accounting()
    assert acc.balanced and acc.tmem_ephemeral == 0 and acc.tmem_persistent == 0
    assert hv.heap.free_pages >= free_before + 8192


@settings(max_examples=60)
@given(puts=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 400)), min_size=1,
                     max_size=400))
def test_eviction_keeps_accounting_and_never_returns_wrong_bytes(puts):
    """A host with little free memory: ephemeral pages vanish, but a hit is always right."""
    hv = host(64, "tmem dom0_mem=16M")
    a = hv.domain_create("a", 6000, 6000)
    b = hv.domain_create("b", hv.heap.free_pages - 300, 20000)
    pools = {a: new_pool(hv, a), b: new_pool(hv, b)}
    stored = {}
    for who, index in puts:
        dom = a if who == 0 else b
        data = page(who * 100000 + index)
        rc = put(hv, dom, pools[dom], (1, 0, 0), index, data)
        assert rc in (1, -12)
        if rc == 1:
            stored[(dom.domid, index)] = data
        assert balanced(hv)
    for (domid, index), data in stored.items():
        dom = hv.domains[domid]
        rc, got = get(hv, dom, pools[dom], (1, 0, 0), index)
        assert rc in (0, 1, -EEMPTY)
        if rc == 1:
            assert got == data
        assert balanced(hv)
