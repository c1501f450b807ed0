"""fail_hypervisor: the hypervisor out of memory for a domain's tmem puts; the shim falls back.

The point is the guest kernel's (``fail_hypervisor=interval,probability,space,times``
on its command line, knobs under its /sys/kernel/debug/fail_hypervisor/);
platform.attach hands it to the domain, and tmem consults it at each frame or
sub-page allocation a put of that domain makes — where tmem.c's
``tmem_alloc_page``/``tmem_malloc`` get NULL from Xen's heap. The put then
fails as tmem.c fails it (-ENOMEM counted in Pf or Af and px; a duplicate put
-ENOSPC with the old copy flushed, pd), frontswap writes the page to swap and
cleancache drops it: every byte comes back (sha256).
"""

from __future__ import annotations

import errno
import hashlib

import pytest

from kmodemu.kernel.fault_inject import NOT_WIRED, WIRED
from kmodemu.xen import abi
from kmodemu.xen.abi import EEMPTY

from .helpers import balanced, flush, g, get, host, new_pool, ok, page, put, xen_host

SB = "/sys/devices/system/xen_memory/xen_memory0"
O = (3, 0, 0)


class Script:
    """A fault hook failing the calls whose numbers are in ``fail`` (1-based); counts calls."""

    def __init__(self, *fail: int):
        self.fail = set(fail)
        self.calls = 0

    def __call__(self, size: int) -> bool:
        assert size == 1
        self.calls += 1
        return self.calls in self.fail


def test_fail_hypervisor_is_wired():
    assert "fail_hypervisor" in WIRED and "fail_hypervisor" not in NOT_WIRED


def test_a_failed_allocation_refuses_the_put_as_tmem_c_does():
    hv = host(256, "tmem dom0_mem=64M")
    dom = hv.domain_create("g", 4096, 4096 + 16)
    eph, pers = new_pool(hv, dom), new_pool(hv, dom, persistent=True)
    hook = dom.fail_hypervisor = Script(1, 2, 4)
    free0 = hv.heap.free_pages
    assert put(hv, dom, eph, O, 0, page(1)) == -errno.ENOMEM      # call 1
    assert put(hv, dom, pers, O, 0, page(2)) == -errno.ENOMEM     # call 2
    assert put(hv, dom, pers, O, 1, page(3)) == 1                 # call 3
    assert hv.heap.free_pages == free0 - 1 and dom.tmem_pages == 1
    # gets, flushes and pool creation allocate nothing: the point is not consulted
    assert get(hv, dom, pers, O, 1) == (1, page(3))
    assert get(hv, dom, eph, O, 0) == (-EEMPTY, None)
    assert flush(hv, dom, eph, O, 0) == 1
    assert new_pool(hv, dom) == 2
    assert hook.calls == 3
    # a duplicate put that cannot get its frame flushes the old copy: -ENOSPC
    assert put(hv, dom, pers, O, 1, page(4)) == -errno.ENOSPC     # call 4
    assert get(hv, dom, pers, O, 1) == (-EEMPTY, None)
    tm = hv.tmem
    assert (tm.alloc_page_failed, tm.alloc_failed) == (3, 0)
    e, p = dom.tmem.pools[eph], dom.tmem.pools[pers]
    assert (e.puts, e.good_puts, e.no_mem_puts) == (1, 0, 1)
    assert (p.puts, p.good_puts, p.no_mem_puts, p.dup_puts_flushed) == (3, 1, 1, 1)
    assert dom.tmem_pages == 0 and hv.heap.free_pages + tm.freelist == free0
    rc, text = hv.tmem_control(abi.TMEMC_LIST, abi.CLI_ID_NULL, 32768, 1)
    assert rc == 0 and text is not None and ",Pf:3," in text and ",Af:0," in text
    assert "pt:3,pd:1,pr:0,px:1," in text
    assert balanced(hv)


def test_a_compressed_put_fails_in_tmem_malloc_af_and_cm():
    hv = host(256, "tmem tmem_compress dom0_mem=64M")
    dom = hv.domain_create("g", 4096, 4096)
    pid = new_pool(hv, dom)
    dom.fail_hypervisor = Script(1)
    assert put(hv, dom, pid, O, 0, page(0, fill=7)) == -errno.ENOMEM
    assert put(hv, dom, pid, O, 1, page(0, fill=7)) == 1
    c = dom.tmem.pools[pid].client
    assert (hv.tmem.alloc_failed, hv.tmem.alloc_page_failed) == (1, 0)
    assert (c.compress_nomem, c.compressed_pages) == (1, 1)
    assert get(hv, dom, pid, O, 1) == (1, page(0, fill=7))


# -- through a guest kernel ----------------------------------------------------------




def guest(m, name, extra, mem=32):
    ok(m, "xl", "create", f'name="{name}"', f"memory={mem}", "maxmem=256",
       f'extra="{extra}"', 'builtin="tmem"')
    g(m, name, "write", f"{SB}/selfballoon/selfballooning", "0")
    g(m, name, "write", f"{SB}/selfballoon/frontswap_selfshrinking", "0")
    return m.xen.hv.domain_by_name(name)


def debugfs(m, name, knob) -> int:
    return int(g(m, name, "cat", f"/sys/kernel/debug/{knob}"))


def swap_out(m, name, size="48M"):
    g(m, name, "mkswap", "/dev/sdb1", "64M")
    g(m, name, "swapon", "/dev/sdb1")
    g(m, name, "alloc", "p", size, "--content", "mixed", "--seed", "5")


def process_intact(dom) -> None:
    """sha256 of every page as the access sees it (faulted back from frontswap or swap)
    against the generator's, and no page corrupt."""
    proc = dom.kernel.mm.anon.processes["p"]
    got = hashlib.sha256()
    st = dom.kernel.mm.anon.touch("p", digest=got)
    assert st.corrupt == 0 and st.pages == len(proc.pages)
    want = hashlib.sha256(b"".join(proc.content.page(i) for i in range(len(proc.pages))))
    assert got.hexdigest() == want.hexdigest()


def pool_of(dom, persistent):
    pools = [p for p in dom.tmem.pools if p is not None and p.persistent == persistent]
    assert len(pools) == 1
    return pools[0]


def test_every_frontswap_store_refused_goes_to_swap_and_nothing_is_lost():
    m = xen_host()
    try:
        dom = guest(m, "g", "tmem fail_hypervisor=1,100,0,-1")
        assert g(m, "g", "cat", "/sys/kernel/debug/fail_hypervisor/probability") == "100\n"
        swap_out(m, "g")
        failed = debugfs(m, "g", "frontswap/failed_stores")
        assert failed > 0 and debugfs(m, "g", "frontswap/succ_stores") == 0
        injected = debugfs(m, "g", "fail_hypervisor/injected")
        pers = pool_of(dom, True)
        assert injected == failed == pers.no_mem_puts == pers.puts
        assert hv_counter(m, "Pf") == injected and dom.tmem_pages == 0
        assert "FAULT_INJECTION: forcing a failure" in g(m, "g", "dmesg")
        process_intact(dom)
        assert dom.kernel.frontswap.succ_stores == 0
        assert m.xen.hv.accounting().balanced
    finally:
        m.close()


def hv_counter(m, code: str) -> int:
    line = ok(m, "xl", "tmem-list", "-a").splitlines()[0]
    return int(next(f for f in line[2:].split(",") if f.startswith(code + ":")).split(":")[1])


def test_times_limits_the_failures_and_the_rest_are_stored():
    m = xen_host()
    try:
        dom = guest(m, "g", "tmem fail_hypervisor=1,100,0,3")
        swap_out(m, "g")
        assert debugfs(m, "g", "frontswap/failed_stores") == 3
        succ = debugfs(m, "g", "frontswap/succ_stores")
        assert succ > 3 and debugfs(m, "g", "fail_hypervisor/times") == 0
        assert debugfs(m, "g", "fail_hypervisor/injected") == 3
        assert g(m, "g", "dmesg").count("FAULT_INJECTION: forcing a failure") == 3
        pers = pool_of(dom, True)
        assert (pers.no_mem_puts, pers.good_puts) == (3, succ)
        assert hv_counter(m, "Pf") == 3
        process_intact(dom)
    finally:
        m.close()


def test_cleancache_puts_are_dropped_then_kept_once_the_knob_is_cleared():
    m = xen_host()
    try:
        dom = guest(m, "g", "tmem fail_hypervisor=1,100,0,-1", mem=64)
        g(m, "g", "mkdir", "-p", "/d")
        g(m, "g", "mount", "/dev/sda1", "/d", "-t", "ext4")
        g(m, "g", "mkfile", "/d/f", "--size", "1M", "--content", "text", "--seed", "4")
        before = g(m, "g", "sha256sum", "/d/f")
        g(m, "g", "drop-caches")
        eph = pool_of(dom, False)
        assert (eph.puts, eph.no_mem_puts, eph.pgp_count) == (256, 256, 0)
        assert debugfs(m, "g", "fail_hypervisor/injected") == 256
        assert g(m, "g", "read", "/d/f") == \
            "/d/f: 256 pages, 0 cached, 0 from cleancache, 256 from disk\n"
        assert g(m, "g", "sha256sum", "/d/f") == before
        # the user's knob: the guest's debugfs
        g(m, "g", "write", "/sys/kernel/debug/fail_hypervisor/probability", "0")
        g(m, "g", "drop-caches")
        assert (eph.good_puts, eph.no_mem_puts) == (256, 256)
        assert debugfs(m, "g", "fail_hypervisor/injected") == 256
        assert g(m, "g", "read", "/d/f") == \
            "/d/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk\n"
        assert g(m, "g", "sha256sum", "/d/f") == before
    finally:
        m.close()


def test_the_point_is_per_domain():
    m = xen_host()
    try:
        a = guest(m, "a", "tmem fail_hypervisor=1,100,0,-1")
        b = guest(m, "b", "tmem")
        rc, _, err = m.capture(["xen-guest", "b", "cat",
                                "/sys/kernel/debug/fail_hypervisor/probability"])
        assert rc == 1 and "No such file or directory" in err   # not named: no knobs
        swap_out(m, "a")
        swap_out(m, "b")
        assert debugfs(m, "a", "frontswap/succ_stores") == 0
        assert debugfs(m, "b", "frontswap/failed_stores") == 0
        assert debugfs(m, "b", "frontswap/succ_stores") > 0
        assert b.kernel.faults.fail_hypervisor.injected == 0
        assert pool_of(b, True).no_mem_puts == 0 and b.tmem_pages > 0
        assert hv_counter(m, "Pf") == a.kernel.faults.fail_hypervisor.injected > 0
        process_intact(a)
        process_intact(b)
    finally:
        m.close()


@pytest.mark.parametrize("value", ["1,100,0", "x,1,0,1"])
def test_a_malformed_boot_value_is_reported_and_nothing_fails(value):
    m = xen_host()
    try:
        dom = guest(m, "g", f"tmem fail_hypervisor={value}")
        assert "FAULT_INJECTION: failed to parse arguments" in g(m, "g", "dmesg")
        swap_out(m, "g", "40M")
        assert debugfs(m, "g", "frontswap/failed_stores") == 0
        assert dom.kernel.faults.fail_hypervisor.injected == 0
    finally:
        m.close()
