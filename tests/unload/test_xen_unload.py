"""Unloading the Xen tmem shim in a guest (profile 3.10-unload, beyond Linux).

The guest's persistent pages come back from the hypervisor to its swap device
before its pools are destroyed; the host sees the memory freed; zcache loaded
next in the same guest serves the filesystems mounted all along.
"""

from __future__ import annotations

from kmodemu.machine.definition import MachineDef
from kmodemu.machine.machine import Machine

SB = "/sys/devices/system/xen_memory/xen_memory0/selfballoon"


def ok(m, *argv, rc=0):
    got, out, err = m.capture(list(argv))
    assert got == rc, (argv, out, err)
    return out


def g(m, *argv, rc=0):
    return ok(m, "xen-guest", "g", *argv, rc=rc)


def glog(m):
    return [line.split("] ", 1)[1] for line in g(m, "dmesg").splitlines()]


def guest_with_disks(m, module: str) -> None:
    """Guest g of host m (3.10-unload): /d mounted, a swap device on, then ``module``."""
    ok(m, "xl", "create", 'name="g"', "memory=64", "maxmem=256", 'profile="3.10-unload"')
    g(m, "mkdir", "-p", "/d")
    g(m, "mount", "/dev/sda1", "/d", "-t", "ext4")
    g(m, "mkswap", "/dev/sdb1", "128M")
    g(m, "swapon", "/dev/sdb1")
    g(m, "modprobe", module)


def test_tmem_goes_and_zcache_takes_over_without_a_reboot():
    m = Machine(MachineDef(mem="512M", xen=True, xen_cmdline="tmem"))
    try:
        guest_with_disks(m, "tmem")
        g(m, "write", f"{SB}/selfballooning", "0")
        g(m, "write", f"{SB}/frontswap_selfshrinking", "0")
        g(m, "mkfile", "/d/f", "--size", "1M", "--content", "text", "--seed", "1")
        fsum = g(m, "sha256sum", "/d/f")
        g(m, "read", "/d/f")
        g(m, "drop-caches")
        assert g(m, "read", "/d/f") == "/d/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk\n"
        g(m, "alloc", "p", "80M", "--content", "mixed", "--seed", "2")
        psum = g(m, "touch-anon", "p", "--sha256").splitlines()[-1]
        dom = m.xen.hv.domain_by_name("g")
        held = m.xen.guest("g").kernel.frontswap.curr_pages()
        assert held > 1000
        assert sum(p.pgp_count for p in dom.tmem.pools if p is not None and p.persistent) == held
        assert dom.tmem_pages > 0
        g(m, "rmmod", "tmem")
        log = glog(m)
        assert log[-3:] == [
            f"frontswap: backend unregistered, {held} page(s) written back to swap, "
            "1 swap device(s) wait for the next one",
            "cleancache: backend unregistered, 1 filesystem(s) wait for the next one",
            "xen tmem: unloaded: cleancache and frontswap are free for another backend"]
        assert dom.tmem_pages == 0 and not any(p is not None for p in dom.tmem.pools)
        assert m.xen.hv.accounting().balanced
        assert "P=" not in ok(m, "xl", "tmem-list", "g")
        assert g(m, "cat", f"{SB}/selfballooning") == "0\n"
        assert g(m, "lsmod") == "Module                  Size  Used by\n"
        assert g(m, "touch-anon", "p", "--sha256").splitlines()[-1] == psum
        # zcache in the same guest: the filesystem mounted all along is replayed
        g(m, "modprobe", "zcache")
        g(m, "read", "/d/f")
        g(m, "drop-caches")
        assert g(m, "read", "/d/f") == "/d/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk\n"
        assert g(m, "sha256sum", "/d/f") == fsum
    finally:
        m.close()


def test_the_faithful_guest_keeps_the_shim():
    m = Machine(MachineDef(mem="512M", xen=True, xen_cmdline="tmem"))
    try:
        ok(m, "xl", "create", 'name="g"', "memory=64")
        g(m, "modprobe", "tmem")
        g(m, "rmmod", "tmem", rc=1)
        assert g(m, "lsmod").splitlines()[1].split()[:3] == ["tmem", "16384", "0"]
        k = m.xen.guest("g").kernel
        assert k.frontswap.registered and k.cleancache.registered
    finally:
        m.close()


def test_zcache_goes_and_the_shim_takes_over_in_a_guest():
    m = Machine(MachineDef(mem="512M", xen=True, xen_cmdline="tmem"))
    try:
        guest_with_disks(m, "zcache")
        g(m, "mkfile", "/d/f", "--size", "1M", "--content", "text", "--seed", "1")
        fsum = g(m, "sha256sum", "/d/f")
        g(m, "alloc", "p", "80M", "--content", "mixed", "--seed", "2")
        psum = g(m, "touch-anon", "p", "--sha256").splitlines()[-1]
        g(m, "rmmod", "zcache")
        dom = m.xen.hv.domain_by_name("g")
        assert dom.tmem is None or not any(p is not None for p in dom.tmem.pools)
        g(m, "modprobe", "tmem")
        log = glog(m)
        at = log.index("frontswap enabled, RAM provided by Xen Transcendent Memory")
        assert log[at + 1] == "cleancache enabled, RAM provided by Xen Transcendent Memory"
        assert "zcache: unloaded: cleancache and frontswap are free for another backend" in log[:at]
        g(m, "read", "/d/f")
        g(m, "drop-caches")
        assert g(m, "read", "/d/f") == "/d/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk\n"
        assert g(m, "sha256sum", "/d/f") == fsum
        # the replayed swap device: new swap-outs land in the hypervisor
        g(m, "alloc", "q", "40M", "--content", "mixed", "--seed", "4")
        assert sum(p.pgp_count for p in dom.tmem.pools if p is not None and p.persistent) > 0
        assert g(m, "touch-anon", "p", "--sha256").splitlines()[-1] == psum
        assert m.xen.hv.accounting().balanced
    finally:
        m.close()


def test_a_shared_pool_is_made_again_by_uuid_for_the_next_shim():
    """cleancache keeps a clustered filesystem's uuid through the unload: the shim loaded
    next joins the same shared pool of the hypervisor again."""
    m = Machine(MachineDef(mem="512M", xen=True, xen_cmdline="tmem"))
    uuid = "0123456789abcdef0123456789abcdef"
    try:
        for name in ("a", "b"):
            ok(m, "xl", "create", f'name="{name}"', "memory=96", 'profile="3.10-unload"')
            ok(m, "xen-guest", name, "mkdir", "-p", "/c")
            ok(m, "xen-guest", name, "mount", "/dev/sdc1", "/c", "-t", "ocfs2", "-o", f"uuid={uuid}")
            ok(m, "xen-guest", name, "modprobe", "tmem")
        tm = m.xen.hv.tmem
        shared = [p for p in tm.shared_pools if p is not None]
        assert len(shared) == 1 and [c.cli_id for c in shared[0].sharers] == [1, 2]
        ok(m, "xen-guest", "a", "rmmod", "tmem")
        shared = [p for p in tm.shared_pools if p is not None]
        assert len(shared) == 1 and [c.cli_id for c in shared[0].sharers] == [2]
        ok(m, "xen-guest", "a", "modprobe", "tmem")
        shared = [p for p in tm.shared_pools if p is not None]
        assert len(shared) == 1 and sorted(c.cli_id for c in shared[0].sharers) == [1, 2]
        # b wrote the file's clean pages into the shared pool; a, back on it, finds them
        for name in ("a", "b"):
            ok(m, "xen-guest", name, "mkfile", "/c/f", "--size", "256K", "--content", "text",
               "--seed", "9")
        ok(m, "xen-guest", "b", "read", "/c/f")
        ok(m, "xen-guest", "b", "drop-caches")
        ok(m, "xen-guest", "a", "drop-caches")
        assert ok(m, "xen-guest", "a", "read", "/c/f") == \
            "/c/f: 64 pages, 0 cached, 64 from cleancache, 0 from disk\n"
        assert m.xen.hv.accounting().balanced
    finally:
        m.close()
