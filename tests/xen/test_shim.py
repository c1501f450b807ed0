"""The shim's data path over the hypervisor, against a dict (hypothesis): keys, swizzle, skips."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu.mm.page import PAGE_SIZE, Page
from kmodemu.modules.discovery import plugin_package
from kmodemu.xen.hypervisor import Hypervisor

from .helpers import MB, page

shim = plugin_package("xen_tmem").shim


def guest(persistent_room: int = 4096):
    hv = Hypervisor(256 * MB, "tmem dom0_mem=64M")
    dom = hv.domain_create("g", 4096, 4096 + persistent_room)
    return hv, dom, shim.Hypercalls(functools.partial(hv.tmem.do_tmem_op, dom))


OFFSETS = st.one_of(st.integers(0, 600), st.integers(2**32 - 3, 2**32 + 3))
SWAP_OPS = st.lists(st.tuples(st.sampled_from(["store", "load", "inval", "area"]),
                              st.integers(0, 2), OFFSETS, st.integers(0, 50)), max_size=80)


@settings(max_examples=150)
@given(SWAP_OPS)
def test_frontswap_ops_match_a_dict(ops):
    hv, dom, hc = guest()
    fs = shim.TmemFrontswapOps(hc)
    fs.init(0)
    fs.init(1)                      # one pool for every swap type
    assert fs.poolid == 0 and len([p for p in dom.tmem.pools if p]) == 1
    ref: dict = {}
    for op, t, off, tag in ops:
        if op == "store":
            data = page(tag * 7919 + off)
            rc = fs.store(t, off, Page(data))
            if off >= 2**32:
                assert rc == -1     # an offset past 32 bits is never stored
            else:
                assert rc == 0
                ref[(t, off)] = data
        elif op == "load":
            p = Page(bytes(PAGE_SIZE))
            rc = fs.load(t, off, p)
            if (t, off) in ref:
                assert rc == 0 and p.data == ref[(t, off)]   # persistent: the load keeps it
            else:
                assert rc == -1
        elif op == "inval":
            fs.invalidate_page(t, off)
            ref.pop((t, off), None)
        else:
            fs.invalidate_area(t)
            ref = {k: v for k, v in ref.items() if k[0] != t}
        assert dom.tmem_pages == len(ref) and hv.accounting().balanced
    pool = dom.tmem.pools[0]
    for (t, off) in ref:
        assert (t << 4 | off & 15, 0, 0) in pool.objs
        assert (off >> 4) in pool.objs[(t << 4 | off & 15, 0, 0)].pages


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(["put", "get", "inval", "inode"]),
                          st.integers(0, 3), st.one_of(st.integers(0, 300), st.just(2**32)),
                          st.integers(0, 9)), max_size=60))
def test_cleancache_ops_match_a_dict(ops):
    hv, dom, hc = guest()
    cc = shim.TmemCleancacheOps(hc)
    pool = cc.init_fs(PAGE_SIZE)
    assert pool == 0 and cc.init_fs(8192) == -1
    ref: dict = {}
    for op, ino, index, tag in ops:
        key = ino.to_bytes(4, "little") + bytes(20)
        if op == "put":
            data = page(tag * 1000 + index)
            cc.put_page(pool, key, index, Page(data))
            if index < 2**32:
                ref[(ino, index)] = data
        elif op == "get":
            p = Page()
            rc = cc.get_page(pool, key, index, p)
            if (ino, index) in ref:
                assert rc == 0 and p.data == ref.pop((ino, index))   # exclusive
            else:
                assert rc == -1
        elif op == "inval":
            cc.invalidate_page(pool, key, index)
            ref.pop((ino, index), None)
        else:
            cc.invalidate_inode(pool, key)
            ref = {k: v for k, v in ref.items() if k[0] != ino}
        assert dom.tmem.pools[0].pgp_count == len(ref)
    cc.invalidate_fs(pool)
    assert dom.tmem.pools[0] is None and hv.tmem.eph_frames == 0


def test_shared_fs_uuid_halves_and_pool_ids():
    hv, dom, hc = guest()
    cc = shim.TmemCleancacheOps(hc)
    uuid = bytes(range(16))
    assert cc.init_shared_fs(uuid, PAGE_SIZE) == 0
    p = dom.tmem.pools[0]
    assert p.shared and p.uuid == (0x0706050403020100, 0x0F0E0D0C0B0A0908)
    assert cc.init_fs(PAGE_SIZE) == 1
    cc.put_page(-1, bytes(24), 0, Page(page(1)))     # a filesystem without a pool: nothing
    assert cc.get_page(-1, bytes(24), 0, Page()) == -1
