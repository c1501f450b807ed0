"""tmem's return codes and pool rules, one behaviour per test (Xen common/tmem.c, public/tmem.h)."""

from __future__ import annotations

import errno

import pytest

from kmodemu.errors import KernelError
from kmodemu.xen import abi
from kmodemu.xen.abi import EEMPTY, EFROZEN
from kmodemu.xen.hypervisor import Hypervisor
from kmodemu.xen.tmem import FREE_TARGET_PAGES

from .helpers import MB, Frame, balanced, flush, flush_obj, get, host, new_pool, page, put

O = (5, 0, 0)


def test_tmem_off_is_enodev():
    hv = host(128, "")
    dom = hv.domain_create("g", 1000, 1000)
    assert new_pool(hv, dom) == -errno.ENODEV
    assert put(hv, dom, 0, O, 0, page(1)) == -errno.ENODEV
    assert "tmem: initialized" not in hv.console.read()


def test_uncreated_pool_and_dying_domain_are_enodev():
    hv = host()
    dom = hv.domain_create("g", 1000, 1000)
    assert put(hv, dom, 3, O, 0, page(1)) == -errno.ENODEV
    assert "tmem: operation requested on uncreated pool" in hv.console.read()
    pid = new_pool(hv, dom)
    hv.domain_kill(dom)
    assert put(hv, dom, pid, O, 0, page(1)) == -errno.ENODEV
    assert new_pool(hv, dom) == -errno.ENODEV


def test_private_ephemeral_get_is_exclusive_and_empty_pool_is_eempty():
    hv = host()
    dom = hv.domain_create("g", 1000, 1000)
    pid = new_pool(hv, dom)
    assert get(hv, dom, pid, O, 0) == (-EEMPTY, None)
    assert put(hv, dom, pid, O, 0, page(1)) == 1
    assert put(hv, dom, pid, O, 1, page(2)) == 1
    assert get(hv, dom, pid, O, 0) == (1, page(1))
    assert get(hv, dom, pid, O, 0) == (0, None)
    assert get(hv, dom, pid, O, 1) == (1, page(2))
    assert get(hv, dom, pid, O, 1) == (-EEMPTY, None)


def test_persistent_get_keeps_and_is_billed_to_the_domain():
    hv = host()
    dom = hv.domain_create("g", 1000, 1003)
    pid = new_pool(hv, dom, persistent=True)
    for i in range(3):
        assert put(hv, dom, pid, O, i, page(i)) == 1
    assert dom.tot_pages == 1003 and dom.tmem_pages == 3
    # at max_pages: a persistent put fails although the host has plenty free
    assert put(hv, dom, pid, O, 3, page(3)) == -errno.ENOMEM
    assert hv.heap.free_pages > 10000
    assert get(hv, dom, pid, O, 1) == (1, page(1))
    assert get(hv, dom, pid, O, 1) == (1, page(1))
    assert flush(hv, dom, pid, O, 1) == 1
    assert dom.tmem_pages == 2 and dom.tot_pages == 1002
    assert balanced(hv)


def test_frozen_client_refuses_new_puts_but_flushes_and_dup_puts_work():
    hv = host()
    dom = hv.domain_create("g", 1000, 1000)
    pid = new_pool(hv, dom)
    assert put(hv, dom, pid, O, 0, page(1)) == 1
    assert put(hv, dom, pid, O, 1, page(2)) == 1
    assert hv.tmem_control(abi.TMEMC_FREEZE, dom.domid) == (0, None)
    assert put(hv, dom, pid, O, 5, page(5)) == -EFROZEN
    assert put(hv, dom, pid, O, 0, page(9)) == 1          # duplicate: replaced
    assert flush(hv, dom, pid, O, 1) == -EFROZEN           # performed, still -EFROZEN
    assert flush_obj(hv, dom, pid, (9, 9, 9)) == -EFROZEN
    assert hv.tmem_control(abi.TMEMC_THAW, dom.domid) == (0, None)
    assert get(hv, dom, pid, O, 1) == (0, None)
    assert get(hv, dom, pid, O, 0) == (1, page(9))
    assert "tmem: all pools frozen for domid=1" in hv.console.read()


def test_destroy_subop_thaws_as_xen_does():
    hv = host()
    dom = hv.domain_create("g", 1000, 1000)
    pid = new_pool(hv, dom)
    hv.tmem_control(abi.TMEMC_FREEZE)
    assert put(hv, dom, pid, O, 0, page(1)) == -EFROZEN
    assert hv.tmem_control(abi.TMEMC_DESTROY)[0] == 0
    assert put(hv, dom, pid, O, 0, page(1)) == 1
    assert "tmem: all pools destroyed for all domains" in hv.console.read()


def test_pool_slots_and_shared_slots_run_out_with_eperm():
    hv = host()
    dom = hv.domain_create("g", 1000, 1000)
    assert [new_pool(hv, dom) for _ in range(16)] == list(range(16))
    assert new_pool(hv, dom) == -errno.EPERM
    assert "no more pool slots available for this domain" in hv.console.read()
    other = hv.domain_create("h", 1000, 1000)
    ids = [new_pool(hv, other, shared=True, uuid=(i + 1, 0)) for i in range(16)]
    assert ids == list(range(16))
    third = hv.domain_create("k", 1000, 1000)
    assert new_pool(hv, third, shared=True, uuid=(99, 0)) == -errno.EPERM
    # a known uuid still joins
    assert new_pool(hv, third, shared=True, uuid=(3, 0)) == 0


def test_shared_pool_joined_by_uuid_is_seen_by_both_and_get_keeps():
    hv = host()
    a = hv.domain_create("a", 1000, 1000)
    b = hv.domain_create("b", 1000, 1000)
    u = abi.uuid_halves(bytes(range(16)))
    pa = new_pool(hv, a, shared=True, uuid=u)
    new_pool(hv, b)                                   # b's slot 0 is private
    pb = new_pool(hv, b, shared=True, uuid=u, persistent=True)   # the flag is ignored
    assert (pa, pb) == (0, 1)
    assert a.tmem.pools[pa] is b.tmem.pools[pb] and not a.tmem.pools[pa].persistent
    assert put(hv, a, pa, O, 7, page(7)) == 1
    assert get(hv, a, pa, O, 7) == (1, page(7))
    assert get(hv, b, pb, O, 7) == (1, page(7))      # b touched it last
    text = hv.tmem_control(abi.TMEMC_LIST, arg1=8192)[1]
    assert f"S=SI:0,PT:ES,U0:{u[0]:x},U1:{u[1]:x},SC:1,SC:2\n" in text
    # the owner leaves: the pool is reassigned, objects b touched last stay for b
    hv.domain_destroy(a)
    assert get(hv, b, pb, O, 7) == (1, page(7))
    assert "reassigned shared pool from domid=1 to domid=2 pool_id=1" in hv.console.read()
    hv.domain_destroy(b)
    assert hv.tmem.shared_pools == [None] * 16
    assert balanced(hv) and hv.tmem.eph_frames == 0


def test_all_ones_uuid_and_unauthorised_client_get_private_pools():
    hv = host(256, "tmem tmem_shared_auth")
    a = hv.domain_create("a", 1000, 1000)
    m = 0xFFFFFFFFFFFFFFFF
    assert new_pool(hv, a, shared=True, uuid=(m, m)) == 0
    assert not a.tmem.pools[0].shared
    assert new_pool(hv, a, shared=True, uuid=(4, 4)) == 1
    assert not a.tmem.pools[1].shared
    # xl tmem-shared-auth: authorised, the next pool is shared
    op = abi.TmemOp(abi.TMEM_AUTH, uuid=(4, 4), flags=1, arg1=a.domid)
    assert hv.tmem_op(hv.dom0, op) == 1
    assert new_pool(hv, a, shared=True, uuid=(4, 4)) == 2
    assert a.tmem.pools[2].shared


def test_bad_spec_version_and_pagesize_are_eperm():
    hv = host()
    a = hv.domain_create("a", 1000, 1000)
    op = abi.TmemOp(abi.TMEM_NEW_POOL, flags=abi.pool_flags(False, False, version=2))
    assert hv.tmem_op(a, op) == -errno.EPERM
    op = abi.TmemOp(abi.TMEM_NEW_POOL, flags=abi.pool_flags(False, False, pageshift=13))
    assert hv.tmem_op(a, op) == -errno.EPERM
    log = hv.console.read()
    assert "failed... unsupported spec version" in log
    assert "failed... unsupported pagesize 8192" in log


def test_one_guest_evicts_anothers_ephemeral_pages_oldest_first():
    hv = Hypervisor(128 * MB, "tmem dom0_mem=32M")
    a = hv.domain_create("a", 4096, 4096)
    b = hv.domain_create("b", 4096, 4096)
    pa, pb = new_pool(hv, a), new_pool(hv, b)
    room = hv.heap.free_pages - FREE_TARGET_PAGES
    for i in range(100):
        assert put(hv, a, pa, O, i, page(i)) == 1
    for i in range(room - 100 + 41):
        assert put(hv, b, pb, O, i, page(10000 + i)) == 1
    # b's puts past the 1 MB free target evicted a's 40 oldest pages
    assert hv.tmem.evicted_pgs == 40
    assert [get(hv, a, pa, O, i)[0] for i in (0, 39, 40, 99)] == [0, 0, 1, 1]
    assert hv.heap.free_pages + hv.tmem.freelist >= FREE_TARGET_PAGES
    assert balanced(hv)


def test_weight_makes_an_over_quota_client_evict_its_own_pages():
    hv = Hypervisor(128 * MB, "tmem dom0_mem=32M")
    a = hv.domain_create("a", 4096, 4096)
    b = hv.domain_create("b", 4096, 4096)
    pa, pb = new_pool(hv, a), new_pool(hv, b)
    hv.tmem_control(abi.TMEMC_SET_WEIGHT, a.domid, arg1=1)
    hv.tmem_control(abi.TMEMC_SET_WEIGHT, b.domid, arg1=3)
    room = hv.heap.free_pages - FREE_TARGET_PAGES
    for i in range(room // 2):
        assert put(hv, b, pb, O, i, page(i)) == 1
    for i in range(room // 2 + 50):
        assert put(hv, a, pa, O, i, page(50000 + i)) == 1
    # a (weight 1 of 4) holds half the pages: over quota, it evicts its own oldest
    assert get(hv, b, pb, O, 0) == (1, page(0))
    assert get(hv, a, pa, O, 0)[0] == 0


def test_domain_create_refuses_more_than_the_host_has_and_changes_nothing():
    hv = host(128, "tmem dom0_mem=32M")
    before = hv.accounting()
    with pytest.raises(KernelError) as e:
        hv.domain_create("big", hv.heap.free_pages + 1, hv.heap.free_pages + 1)
    assert e.value.errno == errno.ENOMEM
    assert hv.accounting() == before and list(hv.domains) == [0]
    with pytest.raises(KernelError) as e:
        hv.domain_create("Domain-0", 10, 10)
    assert e.value.errno == errno.EEXIST


def test_domain_create_relinquishes_ephemeral_tmem():
    hv = host(128, "tmem dom0_mem=32M")
    a = hv.domain_create("a", 1000, 1000)
    pa = new_pool(hv, a)
    n = hv.heap.free_pages - FREE_TARGET_PAGES
    for i in range(n):
        assert put(hv, a, pa, O, i, page(i)) == 1
    free = hv.heap.free_pages
    assert hv.tmem_control(abi.TMEMC_QUERY_FREEABLE_MB)[0] == n >> 8
    b = hv.domain_create("b", free + 500, free + 500)
    assert b.tot_pages == free + 500 and hv.tmem.relinq_pgs == 500
    assert balanced(hv)


def test_flush_kb_only_for_all_clients():
    hv = host(128, "tmem")
    a = hv.domain_create("a", 1000, 1000)
    pa = new_pool(hv, a)
    for i in range(300):
        put(hv, a, pa, O, i, page(i))
    assert hv.tmem_control(abi.TMEMC_FLUSH, a.domid, arg1=400)[0] == -1
    assert "domain-specific flush not supported yet, use --all" in hv.console.read()
    assert hv.tmem_control(abi.TMEMC_FLUSH, arg1=400)[0] == 400
    assert hv.tmem.eph_frames == 200 and hv.tmem.freelist == 0
    assert balanced(hv)


def test_duplicate_put_that_cannot_be_stored_flushes_old_and_returns_enospc():
    hv = host(128, "tmem")
    a = hv.domain_create("a", 1000, 1001)
    pp = new_pool(hv, a, persistent=True)
    assert put(hv, a, pp, O, 0, page(0, fill=7)) == 1
    hv.tmem_control(abi.TMEMC_SET_COMPRESS, a.domid, arg1=1)
    # the old page was stored whole; the new one compresses: replaced in place
    assert put(hv, a, pp, O, 0, page(0, fill=8)) == 1
    assert get(hv, a, pp, O, 0) == (1, page(0, fill=8))
    hv.tmem_control(abi.TMEMC_SET_COMPRESS, a.domid, arg1=0)
    a.max_pages = a.tot_pages - 1   # the domain shrank below what tmem holds
    assert put(hv, a, pp, O, 0, page(3)) == -errno.ENOSPC
    assert get(hv, a, pp, O, 0)[0] in (0, -EEMPTY)


def test_compression_shows_in_list_and_memory():
    hv = host(128, "tmem tmem_compress")
    a = hv.domain_create("a", 1000, 1000)
    pa = new_pool(hv, a)
    for i in range(64):
        assert put(hv, a, pa, O, i, page(0, fill=i + 1)) == 1
    assert hv.tmem.eph_frames < 4
    text = hv.tmem_control(abi.TMEMC_LIST, a.domid, arg1=4096, arg2=1)[1]
    assert text.startswith("C=CI:1,ww:0,ca:0,co:1,fr:0,") and ",cp:64," in text
    for i in range(64):
        assert get(hv, a, pa, O, i) == (1, page(0, fill=i + 1))


def test_dedup_shares_one_frame():
    hv = host(128, "tmem tmem_dedup")
    a = hv.domain_create("a", 1000, 1000)
    pa = new_pool(hv, a)
    for i in range(10):
        assert put(hv, a, pa, O, i, page(42)) == 1
    assert hv.tmem.eph_frames == 1 and hv.tmem.deduped_puts == 9
    assert get(hv, a, pa, O, 3) == (1, page(42))
    assert balanced(hv)


def test_list_unknown_client_is_minus_one():
    hv = host()
    assert hv.tmem_control(abi.TMEMC_LIST, 42, arg1=4096) == (-1, None)


def test_list_format_short_and_long():
    hv = host()
    a = hv.domain_create("a", 1000, 1000)
    pa = new_pool(hv, a)
    put(hv, a, pa, O, 0, page(1))
    get(hv, a, pa, O, 0)
    short = hv.tmem_control(abi.TMEMC_LIST, arg1=8192)[1]
    assert short.splitlines() == [
        "G=Tt:4,Te:0,Cf:0,Af:0,Pf:0,Ta:1,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0",
        "C=CI:1,ww:0,ca:0,co:0,fr:0,Tc:2,Ge:1,Pp:0,Gp:0",
        "P=CI:1,PI:0,PT:EP,U0:0,U1:0",
    ]
    long = hv.tmem_control(abi.TMEMC_LIST, a.domid, arg1=8192, arg2=1)[1]
    assert long.splitlines()[1] == ("P=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:0,Pm:1,Oc:0,Om:1,Nc:0,Nm:1,"
                                    "ps:1,pt:1,pd:0,pr:0,px:0,gs:1,gt:1,fs:0,ft:0,os:0,ot:0")


def test_index_radix_nodes_counted():
    hv = host()
    a = hv.domain_create("a", 1000, 1010)
    pa = new_pool(hv, a, persistent=True)
    assert put(hv, a, pa, O, 0, page(1)) == 1
    assert put(hv, a, pa, O, 64, page(2)) == 1
    pool = a.tmem.pools[pa]
    assert pool.objnode_count == 3     # a root over two leaves
    flush(hv, a, pa, O, 64)
    assert pool.objnode_count == 1     # shrunk back to one leaf
    flush(hv, a, pa, O, 0)
    assert pool.objnode_count == 0 and hv.tmem.global_node_count == 0
