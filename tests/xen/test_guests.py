"""The tmem shim in guests of one emulated Xen host, through console commands.

Both paths (built in with ``tmem``, module after mounts), both profiles,
guests competing for the host's tmem, shared pools by uuid, freeze, the
balloon and self-ballooning/self-shrinking on the virtual clock, and the
bytes: files and swapped memory read back with the same sha256.
"""

from __future__ import annotations

import pytest

from kmodemu.machine.definition import MachineDef
from kmodemu.machine.machine import Machine
from kmodemu.xen import abi

from .helpers import g, ok
from .helpers import xen_host as host

SB = "/sys/devices/system/xen_memory/xen_memory0"




def create(m, name, mem=128, *extra):
    ok(m, "xl", "create", f'name="{name}"', f"memory={mem}", *extra)


def shim_lines(m, name):
    return [l.split("] ", 1)[1] for l in g(m, name, "dmesg").splitlines()
            if "Transcendent" in l or "xen/balloon" in l]


def sha(m, name, path):
    return g(m, name, "sha256sum", path).split()[0]


@pytest.mark.parametrize("profile", ["3.10", "3.9"])
def test_built_in_with_tmem_on_both_profiles(profile):
    m = host()
    create(m, "g", 128, f'profile="{profile}"', 'extra="tmem"', 'builtin="tmem"')
    assert shim_lines(m, "g") == [
        "frontswap enabled, RAM provided by Xen Transcendent Memory",
        "cleancache enabled, RAM provided by Xen Transcendent Memory",
        "xen/balloon: Initializing Xen selfballooning driver.",
        "xen/balloon: Initializing frontswap selfshrinking driver.",
    ]
    g(m, "g", "mkdir", "-p", "/d")
    g(m, "g", "mount", "/dev/sda1", "/d", "-t", "ext4")
    g(m, "g", "mkfile", "/d/f", "--size", "1M", "--content", "text", "--seed", "4")
    before = sha(m, "g", "/d/f")
    g(m, "g", "drop-caches")
    assert g(m, "g", "read", "/d/f") == "/d/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk\n"
    assert sha(m, "g", "/d/f") == before


@pytest.mark.parametrize("flags, lines", [
    ("", []),                                  # built in without `tmem`: registered nothing
    ("tmem nocleancache", ["frontswap enabled, RAM provided by Xen Transcendent Memory",
                           "xen/balloon: Initializing Xen selfballooning driver.",
                           "xen/balloon: Initializing frontswap selfshrinking driver."]),
    ("tmem nofrontswap", ["cleancache enabled, RAM provided by Xen Transcendent Memory",
                          "xen/balloon: Initializing Xen selfballooning driver.",
                          "xen/balloon: Initializing frontswap selfshrinking driver."]),
    # 3.10's shim passes its own (false) disable_* to xen_selfballoon_init: no effect
    ("tmem noselfballooning noselfshrink", [
        "frontswap enabled, RAM provided by Xen Transcendent Memory",
        "cleancache enabled, RAM provided by Xen Transcendent Memory",
        "xen/balloon: Initializing Xen selfballooning driver.",
        "xen/balloon: Initializing frontswap selfshrinking driver."]),
])
def test_boot_flags_310(flags, lines):
    m = host()
    create(m, "g", 64, f'extra="{flags}"', 'builtin="tmem"')
    assert shim_lines(m, "g") == lines


def test_selfballoon_boot_flags_work_on_39():
    m = host()
    create(m, "g", 64, 'profile="3.9"', 'extra="tmem noselfballooning"', 'builtin="tmem"')
    assert shim_lines(m, "g")[-1] == "xen/balloon: Initializing frontswap selfshrinking driver."
    assert "selfballooning driver" not in " ".join(shim_lines(m, "g"))


def test_module_params_read_only_and_39_refusal():
    m = host()
    create(m, "new", 64)
    g(m, "new", "modprobe", "tmem", "disable_cleancache=1", "disable_frontswap_selfshrinking=1")
    assert shim_lines(m, "new") == ["frontswap enabled, RAM provided by Xen Transcendent Memory",
                                    "xen/balloon: Initializing Xen selfballooning driver."]
    assert g(m, "new", "cat", "/sys/module/tmem/parameters/disable_cleancache") == "Y\n"
    rc, _, err = m.capture(["xen-guest", "new", "write",
                            "/sys/module/tmem/parameters/disable_cleancache", "N"])
    assert rc == 1 and "Permission denied" in err
    create(m, "old", 64, 'profile="3.9"')
    rc, _, err = m.capture(["xen-guest", "old", "modprobe", "tmem"])
    assert (rc, err) == (1, "modprobe: ERROR: could not insert 'tmem': Invalid argument\n")


def test_only_xen_kernels_export_the_xen_symbols():
    from kmodemu.xen.platform import XEN_SYMBOLS
    bare = Machine(MachineDef(mem="64M"))
    m = host()
    create(m, "g", 64)
    guest_kernel = m.xen.hv.domain_by_name("g").kernel
    for name in XEN_SYMBOLS:
        assert bare.kernel.modules.symbol_value(name) is None
        assert guest_kernel.modules.symbol_value(name) is not None
        assert m.kernel.modules.symbol_value(name) is not None      # dom0 is a Xen kernel
    assert guest_kernel.modules.symbol_value("xen_initial_domain")() is False
    assert m.kernel.modules.symbol_value("xen_initial_domain")() is True


def test_bare_metal_module_does_not_load_and_built_in_is_silent():
    m = Machine(MachineDef(mem="128M"))
    rc, _, err = m.capture(["modprobe", "tmem"])
    assert rc == 1 and "Unknown symbol in module" in err
    assert "Unknown symbol xen_domain" in ok(m, "dmesg") or "Unknown symbol" in ok(m, "dmesg")
    b = Machine(MachineDef(mem="128M", cmdline="tmem", builtin=["tmem"]))
    assert "Transcendent" not in ok(b, "dmesg")
    rc, out, err = b.capture(["xl", "list"])
    assert rc == 1 and err.endswith("cannot init xl context\n")


def test_module_after_mounts_gets_the_replayed_pool_and_shared_pools_by_uuid():
    m = host()
    uuid = "0123456789abcdef0123456789abcdef"
    for name in ("a", "b"):
        create(m, name, 96)
        g(m, name, "mkdir", "-p", "/c")
        g(m, name, "mount", "/dev/sdc1", "/c", "-t", "ocfs2", "-o", f"uuid={uuid}")
        g(m, name, "modprobe", "tmem")
    tm = m.xen.hv.tmem
    shared = [p for p in tm.shared_pools if p is not None]
    assert len(shared) == 1 and [c.cli_id for c in shared[0].sharers] == [1, 2]
    assert abi.uuid_halves(bytes.fromhex(uuid)) == shared[0].uuid
    # a wrote the file; its clean pages are in the shared pool; b (same cluster fs
    # contents, same inode) finds them there
    g(m, "a", "mkfile", "/c/f", "--size", "256K", "--content", "text", "--seed", "9")
    g(m, "b", "mkfile", "/c/f", "--size", "256K", "--content", "text", "--seed", "9")
    g(m, "a", "read", "/c/f")
    g(m, "a", "drop-caches")
    assert g(m, "b", "drop-caches")
    out = g(m, "b", "read", "/c/f")
    assert out == "/c/f: 64 pages, 0 cached, 64 from cleancache, 0 from disk\n"
    assert sha(m, "a", "/c/f") == sha(m, "b", "/c/f")
    text = ok(m, "xl", "tmem-list", "-a")
    assert f"S=SI:0,PT:ES,U0:{shared[0].uuid[0]:x},U1:{shared[0].uuid[1]:x},SC:1,SC:2" in text


def test_freeze_makes_puts_fail_and_thaw_restores():
    m = host()
    create(m, "g", 128, 'extra="tmem"', 'builtin="tmem"')
    g(m, "g", "mkdir", "-p", "/d")
    g(m, "g", "mount", "/dev/sda1", "/d", "-t", "ext4")
    g(m, "g", "mkfile", "/d/f", "--size", "256K", "--content", "text", "--seed", "1")
    g(m, "g", "read", "/d/f")
    ok(m, "xl", "tmem-freeze", "g")
    g(m, "g", "drop-caches")
    pool = m.xen.hv.domain_by_name("g").tmem.pools[0]
    assert pool.no_mem_puts == 64 and pool.pgp_count == 0        # -EFROZEN, nothing stored
    assert g(m, "g", "read", "/d/f").endswith("0 from cleancache, 64 from disk\n")
    ok(m, "xl", "tmem-thaw", "g")
    g(m, "g", "drop-caches")
    assert g(m, "g", "read", "/d/f").endswith("64 from cleancache, 0 from disk\n")


def test_persistent_puts_fail_at_the_guest_limit_and_fall_back_to_swap():
    m = host()
    # maxmem 4 MB above memory: frontswap may hold at most 1024 pages
    create(m, "g", 64, "maxmem=68", 'extra="tmem"', 'builtin="tmem"')
    g(m, "g", "write", f"{SB}/selfballoon/selfballooning", "0")
    g(m, "g", "write", f"{SB}/selfballoon/frontswap_selfshrinking", "0")
    g(m, "g", "mkswap", "/dev/sdb1", "64M")
    g(m, "g", "swapon", "/dev/sdb1")
    g(m, "g", "alloc", "p", "80M", "--content", "text", "--seed", "3")
    dom = m.xen.hv.domain_by_name("g")
    assert dom.tmem_pages == 1024 and dom.tot_pages == dom.max_pages
    fs = {l.split()[0]: int(l.split()[1]) for l in
          (x.replace(":", " ") for x in [
              f"succ_stores {g(m, 'g', 'cat', '/sys/kernel/debug/frontswap/succ_stores')}",
              f"failed_stores {g(m, 'g', 'cat', '/sys/kernel/debug/frontswap/failed_stores')}"])}
    assert fs["succ_stores"] >= 1024 and fs["failed_stores"] > 0
    out = g(m, "g", "touch-anon", "p")
    assert "corrupt" not in out or " 0 corrupt" in out
    assert m.xen.hv.accounting().balanced


def test_three_guests_compete_and_nothing_is_lost():
    m = host("256M", "tmem dom0_mem=64M")
    sums = {}
    for i, name in enumerate("abc"):
        create(m, name, 48, 'extra="tmem"', 'builtin="tmem"')
        g(m, name, "mkdir", "-p", "/d")
        g(m, name, "mount", "/dev/sda1", "/d", "-t", "ext4")
        g(m, name, "mkfile", "/d/f", "--size", "16M", "--content", "text", "--seed", str(i))
        sums[name] = sha(m, name, "/d/f")
    for name in "abc":
        g(m, name, "drop-caches")
    tm = m.xen.hv.tmem
    assert tm.evicted_pgs > 0
    a = g(m, "a", "read", "/d/f")
    c = g(m, "c", "read", "/d/f")
    assert "4096 from cleancache" in c and "4096 from cleancache" not in a   # a's oldest went
    for name in "abc":
        assert sha(m, name, "/d/f") == sums[name]
    assert m.xen.hv.accounting().balanced


def test_balloon_target_and_selfballoon_converges():
    m = host()
    create(m, "g", 256, 'extra="tmem"', 'builtin="tmem"')
    dom = m.xen.hv.domain_by_name("g")
    start = dom.tot_pages
    assert g(m, "g", "cat", f"{SB}/info/current_kb") == f"{256 * 1024}\n"
    # the worker ticks every 5 s: the target walks down by 1/8 of the gap per tick
    seen = []
    for _ in range(40):
        g(m, "g", "sleep", "5")
        seen.append(dom.tot_pages)
    assert seen[0] < start and seen == sorted(seen, reverse=True)
    sb = dom.kernel.xen.selfballoon
    floor = sb.floor_pages()
    b = dom.kernel.xen.balloon
    assert abs(b.totalram_pages() - max(floor, sb.goal_pages())) <= 8   # converged
    assert int(g(m, "g", "cat", f"{SB}/target_kb")) == b.target() * 4
    assert m.xen.hv.accounting().balanced
    # a manual target above what it ballooned: it grows back, never above its boot RAM
    g(m, "g", "write", f"{SB}/selfballoon/selfballooning", "0")
    g(m, "g", "write", f"{SB}/target_kb", str(512 * 1024))
    assert dom.tot_pages == start


@pytest.mark.parametrize("knob, value", [("selfballoon_interval", "0"),
                                         ("selfballoon_min_usable_mb", "0"),
                                         ("frontswap_hysteresis", "x"),
                                         ("selfballooning", "2")])
def test_selfballoon_knob_write_rules(knob, value):
    m = host()
    create(m, "g", 64, 'extra="tmem"', 'builtin="tmem"')
    before = g(m, "g", "cat", f"{SB}/selfballoon/{knob}")
    rc, _, err = m.capture(["xen-guest", "g", "write", f"{SB}/selfballoon/{knob}", value])
    assert rc == 1 and "Invalid argument" in err
    assert g(m, "g", "cat", f"{SB}/selfballoon/{knob}") == before


def test_selfballoon_refused_in_dom0():
    m = host()
    ok(m, "modprobe", "tmem")
    assert "xen/balloon: Xen selfballooning driver disabled for domain0." in ok(m, "dmesg")


def test_selfshrink_pulls_pages_back_after_inertia():
    m = host()
    # persistent pages are billed to the domain: it needs room under maxmem for them
    create(m, "g", 64, "maxmem=128", 'extra="tmem"', 'builtin="tmem"')
    g(m, "g", "write", f"{SB}/selfballoon/selfballooning", "0")
    g(m, "g", "mkswap", "/dev/sdb1", "64M")
    g(m, "g", "swapon", "/dev/sdb1")
    g(m, "g", "alloc", "p", "72M", "--content", "text", "--seed", "5")
    fs = m.xen.hv.domain_by_name("g").kernel.frontswap
    n0 = fs.curr_pages()
    assert n0 > 100
    counts = []
    for _ in range(8):
        g(m, "g", "sleep", "5")
        counts.append(fs.curr_pages())
    # three ticks of inertia, then each tick asks for 1/20 of the pages back (a partial
    # swapoff: as many as the guest's free RAM takes), never more
    assert counts[:3] == [n0] * 3
    assert n0 - n0 // 20 <= counts[3] < n0
    # the pages it took back push others out again (frontswap grows): inertia restarts
    grew = next(i for i in range(4, 8) if counts[i] > counts[i - 1])
    assert counts[grew:grew + 3] == [counts[grew]] * len(counts[grew:grew + 3])
    out = g(m, "g", "touch-anon", "p")
    assert m.xen.hv.accounting().balanced and "corrupt" not in out.replace("0 corrupt", "")


def test_guest_commands_are_journaled_by_the_host_and_replayed(tmp_path):
    path = tmp_path / "h"
    m = Machine.create(path, MachineDef(mem="512M", xen=True, xen_cmdline="tmem"))
    create(m, "g", 96, 'extra="tmem"', 'builtin="tmem"')
    g(m, "g", "mkdir", "-p", "/d")
    g(m, "g", "mount", "/dev/sda1", "/d", "-t", "ext4")
    g(m, "g", "mkfile", "/d/f", "--size", "256K", "--content", "text", "--seed", "1")
    g(m, "g", "read", "/d/f")
    g(m, "g", "drop-caches")
    before = ok(m, "xl", "tmem-list", "-a")
    m.close()
    again = Machine.open(path)
    assert again.guests.names() == ["g"]
    assert ok(again, "xl", "tmem-list", "-a") == before
    assert g(again, "g", "read", "/d/f").endswith("64 from cleancache, 0 from disk\n")
    again.close()


def test_destroy_gives_the_memory_back_and_unregisters():
    m = host()
    free = m.xen.hv.heap.free_pages
    create(m, "g", 64, 'extra="tmem"', 'builtin="tmem"')
    ok(m, "xl", "destroy", "g")
    assert m.guests.names() == [] and m.xen.hv.heap.free_pages == free
    rc, _, err = m.capture(["xen-guest", "g", "dmesg"])
    assert (rc, err) == (1, "kmodemu: g: no such domain\n")


def test_xl_create_from_a_host_file_is_replayed_from_the_machines_copy(tmp_path):
    cfg = tmp_path / "g1.cfg"
    cfg.write_text('# a guest\nname = "g1"\nmemory = 64\nextra = "tmem"\nbuiltin = "tmem"\n')
    path = tmp_path / "h"
    m = Machine.create(path, MachineDef(mem="256M", xen=True, xen_cmdline="tmem"))
    rc, out, err = m.capture(["xl", "create", str(cfg)])
    assert (rc, out, err) == (0, "", f"Parsing config from {cfg}\n")
    m.close()
    cfg.unlink()     # replay reads the copy the machine took, never the host again
    again = Machine.open(path)
    assert again.guests.names() == ["g1"]
    assert "Transcendent" in g(again, "g1", "dmesg")
    rc, _, err = again.capture(["xl", "create", str(cfg)])
    assert rc == 3 and err.endswith("No such file or directory\n")
    again.close()


def test_bad_config_and_unknown_guest_change_nothing(tmp_path):
    m = host()
    bad = tmp_path / "bad.cfg"
    bad.write_text('name = "x"\nmemory = lots\n')
    before = (m.xen.hv.accounting(), list(m.journal))
    rc, _, err = m.capture(["xl", "create", str(bad)])
    assert rc == 1 and "unexpected IDENT" in err and err.endswith("Failed to parse config: "
                                                                   "Invalid argument\n")
    rc, _, err = m.capture(["xl", "create", 'name="y"', 'profile="2.6"'])
    assert rc == 3 and "cannot (re-)build domain" in err
    rc, _, err = m.capture(["xl", "create", 'name="z"', "memory=100000"])
    assert rc == 3 and "Out of memory" in err
    assert (m.xen.hv.accounting(), list(m.journal)) == before
    assert list(m.xen.hv.domains) == [0] and m.guests.names() == []


def test_a_failed_guest_command_that_logged_is_journaled_and_replayed(tmp_path):
    path = tmp_path / "h"
    m = Machine.create(path, MachineDef(mem="256M", xen=True, xen_cmdline="tmem"))
    create(m, "old", 64, 'profile="3.9"')
    rc, _, _ = m.capture(["xen-guest", "old", "modprobe", "tmem"])
    assert rc == 1
    assert m.journal[-1] == ["xen-guest", "old", "modprobe", "tmem"]
    dmesg = g(m, "old", "dmesg")
    rc, _, _ = m.capture(["xen-guest", "old", "cat", "/nonexistent"])   # changed nothing
    assert rc == 1 and m.journal[-1] == ["xen-guest", "old", "modprobe", "tmem"]
    m.close()
    again = Machine.open(path)
    assert g(again, "old", "dmesg") == dmesg
    again.close()
