"""RAMster linked into zcache: insmod zcache ramster=1 on two machines, pages round trip."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kmodemu import demo_nodes
from kmodemu.machine import Machine, MachineDef

from .fakes import write_cluster_files

SYS = "/sys/kernel/mm/ramster"


def free_port() -> int:
    return demo_nodes.free_port(("127.0.0.1", "127.0.0.2"))


class M:
    def __init__(self, m: Machine):
        self.m = m

    def __call__(self, *argv: str, rc: int = 0) -> str:
        out, err = io.StringIO(), io.StringIO()
        got = self.m.run(list(argv), stdout=out, stderr=err, save=False)
        assert got == rc, (argv, got, err.getvalue())
        return out.getvalue()

    def n(self, counter: str) -> int:
        """A RAMster debugfs counter."""
        return int(self("cat", f"/sys/kernel/debug/ramster/{counter}"))


CONF = """cluster:
\tname = ramster
\tnode_count = 2
node:
\tname = system1
\tcluster = ramster
\tnumber = 0
\tip_address = 127.0.0.1
\tip_port = {port}
node:
\tname = system2
\tcluster = ramster
\tnumber = 1
\tip_address = 127.0.0.2
\tip_port = {port}
"""


def two_nodes(profile: str = "3.10", cmdline: str = "quiet"):
    """Two in-process machines sharing one /etc/ramster.conf (system1, system2); closed after."""
    port = free_port()
    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    ms = [Machine(MachineDef(cmdline=cmdline, profile=profile, module_path=[plugins]))
          for _ in range(2)]
    nodes = [M(m) for m in ms]
    write_cluster_files([m.root for m in ms], CONF.format(port=port))
    try:
        yield nodes
    finally:
        for m in ms:
            m.close()


@pytest.fixture
def pair():
    yield from two_nodes()


APP = ("app", "8M", "--content", "mixed", "--seed", "2")


def file_to_peer(a) -> str:
    """Node ``a`` writes /mnt/f and drops it into cleancache for the worker (``sleep 60``) to
    remotify; the file's sha256sum line."""
    a("write", f"{SYS}/eph_remotify_enable", "1")
    a("mount", "/dev/sda1", "/mnt", "-t", "ext4")
    a("mkfile", "/mnt/f", "--size", "1M")
    before = a("sha256sum", "/mnt/f")
    a("drop-caches")
    return before


def swap_to_peer(a, remotify: bool = True) -> None:
    """Node ``a`` swaps an 8M process into zcache; the worker (``sleep 61``) remotifies it."""
    if remotify:
        a("write", f"{SYS}/pers_remotify_enable", "1")
    a("mkswap", "/dev/sdb1", "64M")
    a("swapon", "/dev/sdb1")
    a("alloc", *APP)
    a("pressure", "4096")


def test_insmod_ramster_and_round_trip(pair):
    a, b = pair
    for n in pair:
        n("insmod", "zcache", "ramster=1")
        assert "ramster: cleancache enabled using kernel transcendent memory and compression buddies" in n("dmesg")
        assert n("service", "ramster", "start") == "Starting ramster cluster ramster: OK\n"
    for n in pair:
        n("write", f"{SYS}/manual_node_up", "0")
        n("write", f"{SYS}/manual_node_up", "1")
    assert "Accepted connection from node system2" in a("dmesg")
    a("write", f"{SYS}/remote_target_nodenum", "1")
    before = file_to_peer(a)
    a("sleep", "60")
    assert int(a("cat", "/sys/kernel/debug/ramster/eph_pages_remoted")) > 0
    assert int(b("cat", "/sys/kernel/debug/ramster/foreign_eph_pages")) == \
        int(a("cat", "/sys/kernel/debug/ramster/eph_pages_remoted"))
    assert a("sha256sum", "/mnt/f") == before
    assert int(a("cat", "/sys/kernel/debug/ramster/remote_eph_pages_succ_get")) > 0


def up(pair, target: str = "1", *args: str) -> None:
    a, b = pair
    for n in pair:
        n("insmod", "zcache", "ramster=1", *args)
        n("service", "ramster", "start")
    for n in pair:
        n("write", f"{SYS}/manual_node_up", "0")
        n("write", f"{SYS}/manual_node_up", "1")
    a("write", f"{SYS}/remote_target_nodenum", target)


def test_swap_pages_go_remote_and_come_back(pair):
    a, b = pair
    up(pair, "1", "disable_frontswap_selfshrink=1")
    swap_to_peer(a)
    a("sleep", "61")
    remoted = int(a("cat", "/sys/kernel/debug/ramster/pers_pages_remoted"))
    assert remoted > 0
    assert int(b("cat", "/sys/kernel/debug/ramster/foreign_pers_pages")) == remoted
    assert int(a("cat", f"{SYS}/remote_pers_pages")) == remoted
    out = a("touch-anon", "app")
    assert "CORRUPT" not in out
    assert int(a("cat", "/sys/kernel/debug/ramster/remote_pers_pages_succ_get")) == remoted
    assert int(b("cat", "/sys/kernel/debug/ramster/foreign_pers_pages")) == 0


def test_modinfo_and_lsmod(pair):
    a, _ = pair
    out = a("modinfo", "zcache")
    assert "parm:           ramster_enabled:enable RAMster" in out
    assert "parm:           ramster:kmodemu alias of ramster_enabled" in out
    a("insmod", "zcache", "ramster_enabled=1")
    assert a("cat", "/sys/module/zcache/parameters/ramster_enabled") == "Y\n"
    assert a("cat", f"{SYS}/interface_revision") == "5\n"
    assert a("lsmod").splitlines()[1].split()[0] == "zcache"


def test_selfshrink_drains_the_peer(pair):
    a, b = pair
    up(pair)
    assert "ramster: Initializing frontswap selfshrink driver." in a("dmesg")
    a("write", f"{SYS}/pers_remotify_enable", "1")
    a("mkswap", "/dev/sdb1", "64M")
    a("swapon", "/dev/sdb1")
    a("alloc", "app", "8M", "--content", "mixed", "--seed", "2")
    a("pressure", "4096")
    a("sleep", "61")
    peak = int(b("cat", "/sys/kernel/debug/ramster/foreign_pers_pages"))
    assert peak > 0
    a("write", f"{SYS}/pers_remotify_enable", "0")
    a("sleep", "600")
    assert int(b("cat", "/sys/kernel/debug/ramster/foreign_pers_pages")) < peak // 2
    assert "CORRUPT" not in a("touch-anon", "app")


def test_builtin_boot_zcache_ramster():
    plugins = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "plugins")
    with Machine(MachineDef(cmdline="zcache ramster noselfshrink", builtin=["zcache"],
                            module_path=[plugins])) as m:
        n = M(m)
        log = n("dmesg")
        assert "ramster: cleancache enabled using kernel transcendent memory" in log
        assert "Initializing frontswap selfshrink driver" not in log
        assert n("ls", "/sys/kernel/config") == "cluster\n"
        assert n("cat", f"{SYS}/remote_target_nodenum") == "unset\n"
        m.kernel.modules.builtin["zcache"].ctx.private  # noqa: B018  (module is built in)


def test_lost_remote_swap_page_is_a_kernel_bug(pair):
    a, b = pair
    up(pair, "1", "disable_frontswap_selfshrink=1")
    a("write", f"{SYS}/pers_remotify_enable", "1")
    a("mkswap", "/dev/sdb1", "64M")
    a("swapon", "/dev/sdb1")
    a("alloc", "app", "8M", "--content", "mixed", "--seed", "2")
    a("pressure", "4096")
    a("sleep", "61")
    rs = b.m.kernel.modules.get("zcache").ctx  # node B loses its foreign pages
    zc = __import__("kmodemu_plugins.zcache.main", fromlist=["zcache_of"]).zcache_of(rs)
    for cli in (0,):
        pool = zc.tmem.get_pool(cli, 0)
        for oid in list(pool.objs):
            zc.flush_object(cli, 0, oid)
    out = a("touch-anon", "app", rc=1)
    assert "CORRUPT" in out
    log = a("dmesg")
    assert "kernel BUG at drivers/staging/zcache/ramster/ramster.c!" in log
    assert "D" in a("cat", "/proc/sys/kernel/tainted") or int(a("cat", "/proc/sys/kernel/tainted")) & 128


def test_modprobe_and_modprobe_d_options_enable_ramster(pair):
    a, b = pair
    a("modprobe", "zcache", "ramster=1")
    assert a("cat", f"{SYS}/interface_revision") == "5\n"
    (b.m.root / "etc" / "modprobe.d").mkdir(parents=True, exist_ok=True)
    (b.m.root / "etc" / "modprobe.d" / "zcache.conf").write_text("options zcache ramster=1\n")
    b("modprobe", "zcache")
    assert b("cat", "/sys/module/zcache/parameters/ramster") == "Y\n"
    assert "ramster: frontswap enabled using kernel transcendent memory" in b("dmesg")


def test_the_pre_patch_kernel_refuses_the_module_with_ramster_too():
    with Machine(MachineDef(profile="3.9", module_path=[str(NO_RAMSTER.parents[1] / "plugins")])) as m:
        err = io.StringIO()
        assert m.run(["insmod", "zcache", "ramster=1"], stderr=err, save=False) == 1
        assert err.getvalue().endswith("Invalid parameters\n")
        assert m.kernel.dmesg().splitlines()[-1].endswith("zcache module requires frontswap lazy init")
        assert not m.kernel.vfs.exists(SYS)


NO_RAMSTER = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / \
    "kernel-without-ramster"


def test_a_kernel_built_without_ramster_ignores_ramster_as_linux_does():
    """CONFIG_RAMSTER unset: zcache.ko has no RAMster parameters, so they are unknown."""
    with Machine(MachineDef(cmdline="quiet", module_path=[str(NO_RAMSTER)])) as m:
        n = M(m)
        assert "ramster" not in n("modinfo", "zcache")
        n("insmod", "zcache", "ramster=1", "ramster_enabled=1")
        log = n("dmesg")
        assert "zcache: unknown parameter 'ramster' ignored" in log
        assert "zcache: unknown parameter 'ramster_enabled' ignored" in log
        assert "zcache: cleancache enabled using kernel transcendent memory and " \
            "compression buddies" in log                  # plain zcache, named zcache
        assert "ramster:" not in log
        assert "ramster" not in n("ls", "/sys/module/zcache/parameters")
        assert n("ls", "/sys/kernel/config") == ""
        assert not m.kernel.vfs.exists(SYS)


def test_a_built_in_zcache_without_ramster_leaves_the_boot_word_to_init():
    with Machine(MachineDef(cmdline="zcache ramster", builtin=["zcache"],
                            module_path=[str(NO_RAMSTER)])) as m:
        assert m.kernel.read("/proc/1/cmdline") == "/sbin/init\0ramster\0"
        log = M(m)("dmesg")
        assert "zcache: cleancache enabled using kernel transcendent memory" in log
        assert not m.kernel.vfs.exists(SYS)


def test_ramster_with_zsmalloc_is_refused_and_changes_nothing(pair):
    a, _ = pair
    err = io.StringIO()
    assert a.m.run(["insmod", "zcache", "ramster=1", "zpool=zsmalloc"], stderr=err,
                   save=False) == 1
    assert err.getvalue() == "insmod: ERROR: could not insert module zcache: Invalid parameters\n"
    assert a("dmesg").splitlines()[-1].endswith("] zcache: ramster needs zbud, not zsmalloc")
    assert a.m.kernel.modules.get("zcache") is None
    assert a("ls", "/sys/kernel/config") == ""
    assert not a.m.kernel.vfs.exists(SYS)
    a("insmod", "zcache", "ramster=1")                    # zbud, the default: it loads
    assert a("ls", "/sys/kernel/config") == "cluster\n"
