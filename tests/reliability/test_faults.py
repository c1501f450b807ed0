"""Fault injection: the knobs behave as lib/fault-inject.c, and a failed allocation loses nothing."""

from __future__ import annotations

import hashlib

import pytest

from kmodemu.kernel.kernel import Kernel
from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario import Session


def test_knobs_follow_should_fail():
    k = Kernel(cmdline="fail_page_alloc=3,100,0,2")
    k.boot()
    f = k.faults.fail_page_alloc
    assert k.read("/sys/kernel/debug/fail_page_alloc/interval") == "3\n"
    # interval 3: every third call; times 2: then never again
    assert [f.should_fail() for _ in range(12)] == [False, False, True] * 2 + [False] * 6
    assert k.dmesg().count("FAULT_INJECTION: forcing a failure") == 2
    k.vfs.write("/sys/kernel/debug/fail_page_alloc/times", "-1")
    k.vfs.write("/sys/kernel/debug/fail_page_alloc/interval", "1")
    k.vfs.write("/sys/kernel/debug/fail_page_alloc/space", "10")
    assert [f.should_fail(4) for _ in range(4)] == [False, False, True, True]  # space 10 -> 6 -> 2
    k.vfs.write("/sys/kernel/debug/fail_page_alloc/probability", "0")
    assert not any(f.should_fail() for _ in range(100))
    with pytest.raises(Exception):
        k.vfs.write("/sys/kernel/debug/fail_page_alloc/probability", "101")
    assert k.read("/sys/kernel/debug/fail_page_alloc/probability") == "0\n"


def test_probability_is_seeded():
    def draws(seed):
        k = Kernel(cmdline="fail_page_alloc=1,30,0,-1", seed=seed)
        k.boot()
        k.faults.fail_page_alloc.verbose = 0
        return [k.faults.fail_page_alloc.should_fail() for _ in range(200)]
    a = draws(1)
    assert a == draws(1) and a != draws(2) and 30 < sum(a) < 90


def test_knobs_hidden_unless_named_and_bad_arguments():
    k = Kernel(cmdline="fail_page_alloc=x")
    k.boot()
    assert "FAULT_INJECTION: failed to parse arguments" in k.dmesg()
    assert not k.vfs.exists("/sys/kernel/debug/fail_page_alloc")
    assert not Kernel().faults.fail_page_alloc.should_fail()   # DECLARE_FAULT_ATTR: probability 0


@pytest.fixture
def machine():
    m = Machine(MachineDef(cmdline="zcache fail_page_alloc=1,50,0,-1", builtin=["zcache"], mem="64M"))
    m.kernel.faults.fail_page_alloc.verbose = 0
    yield m, Session(m)
    m.close()


def _sha_process(proc) -> tuple[str, str]:
    got = hashlib.sha256(b"".join(p.data for p in proc.pages)).hexdigest()
    want = hashlib.sha256(b"".join(proc.content.page(i) for i in range(len(proc.pages)))).hexdigest()
    return got, want


def test_failed_frontswap_stores_fall_back_to_the_swap_device(machine):
    m, s = machine
    assert s.run("mkswap /dev/sdb 256M").rc == 0 and s.run("swapon /dev/sdb").rc == 0
    assert s.run("alloc p 24M --content mixed").rc == 0
    assert s.run("pressure 4000").rc == 0
    fs = m.kernel.frontswap
    assert fs.failed_stores > 0 and fs.succ_stores > 0        # some stores refused by the fault
    proc = m.kernel.mm.anon.processes["p"]
    st = m.kernel.mm.anon.touch("p")
    assert st.corrupt == 0 and st.from_disk > 0 and st.from_frontswap > 0
    got, want = _sha_process(proc)
    assert got == want
    assert m.kernel.faults.fail_page_alloc.injected > 0


def test_ephemeral_pages_may_be_missing_never_wrong(machine):
    m, s = machine
    assert s.run("mount /dev/sda1 /mnt -t ext4").rc == 0
    assert s.run("mkfile /mnt/f --size 4M --content mixed --seed 7").rc == 0
    before = s.run("sha256sum /mnt/f").stdout
    assert s.run("drop-caches").rc == 0
    after = s.run("sha256sum /mnt/f").stdout
    assert after == before
    cc = m.kernel.cleancache.counters()
    assert m.kernel.faults.fail_page_alloc.injected > 0
    assert cc["succ_gets"] + cc["failed_gets"] > 0 and cc["failed_gets"] > 0


def test_module_init_failing_midway_unwinds():
    m = Machine(MachineDef(cmdline="fail_module_init=1,100,0,1"))
    s = Session(m)
    out = s.run("modprobe zcache")
    assert out.rc == 1 and "Cannot allocate memory" in out.stderr
    assert m.kernel.modules.get("zcache") is None
    assert m.kernel.cleancache.counters() == Machine(MachineDef()).kernel.cleancache.counters()
    assert "FAULT_INJECTION: forcing a failure" in m.kernel.dmesg()
    assert s.run("modprobe zcache").rc == 0                    # times was 1
    assert m.kernel.modules.get("zcache") is not None
    m.close()


def test_a_failing_compressor_refuses_puts_and_nothing_is_lost():
    """fail_compress: zcache's compressor errors on every put; frontswap falls back to the
    swap device (failed stores), cleancache misses, and every byte comes back (sha256)."""
    m = Machine(MachineDef(cmdline="zcache fail_compress=1,100,0,-1", builtin=["zcache"],
                           mem="64M"))
    try:
        s = Session(m)
        for line in ("mount /dev/sda1 /mnt -t ext4", "mkswap /dev/sdb 256M", "swapon /dev/sdb",
                     "alloc p 24M --content mixed", "pressure 4000"):
            assert s.run(line).rc == 0, line
        fs = m.kernel.frontswap
        assert fs.failed_stores > 0
        assert m.kernel.faults.fail_compress.injected == fs.failed_stores + int(
            m.kernel.read("/sys/kernel/debug/zcache/failed_eph_puts"))
        # only zero- and same-filled pages (never compressed) are still kept by zcache
        st = m.kernel.mm.anon.touch("p")
        assert st.corrupt == 0 and st.from_disk > 0
        got, want = _sha_process(m.kernel.mm.anon.processes["p"])
        assert got == want
    finally:
        m.close()
