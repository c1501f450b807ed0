"""A Xen host as a running machine process: the CLI, HOST/GUEST addressing, a crash and recovery."""

from __future__ import annotations

from kmodemu.machine.testing import RunningMachine, kmodemu


def test_host_and_guest_through_the_cli_survive_a_kill(tmp_path):
    m = RunningMachine(tmp_path / "xh", "127.0.0.1")
    try:
        m.boot("--xen", "--mem", "256M", "--xen-cmdline", "tmem")
        res = m.cli("xl", "create", 'name="g1"', "memory=64", 'extra="tmem"', 'builtin="tmem"')
        assert (res.returncode, res.stderr) == (0, "Parsing config from /dev/null\n")
        guest = ["--machine", f"{m.path}/g1"]
        assert kmodemu(*guest, "mkdir", "-p", "/d").returncode == 0
        assert kmodemu(*guest, "mount", "/dev/sda1", "/d", "-t", "ext4").returncode == 0
        assert kmodemu(*guest, "mkfile", "/d/f", "--size", "256K", "--content", "text").returncode == 0
        kmodemu(*guest, "read", "/d/f")
        kmodemu(*guest, "drop-caches")
        res = kmodemu(*guest, "read", "/d/f")
        assert res.stdout == "/d/f: 64 pages, 0 cached, 64 from cleancache, 0 from disk\n"
        before = m.cli("xl", "tmem-list", "-a").stdout
        from kmodemu.machine import client
        assert client.info(m.path)["guests"] == ["g1"]   # what completion offers for xl
        dom0 = kmodemu("--machine", f"{m.path}/Domain-0", "xl", "list")
        assert dom0.returncode == 0 and "g1 " in dom0.stdout
        res = kmodemu("--machine", f"{m.path}/nope", "dmesg")
        assert res.returncode == 1 and "no such domain" in res.stderr
        m.kill()
        # the next command recovers the host from its journal: the guest and its tmem are back
        assert m.cli("xl", "tmem-list", "-a").stdout == before
        res = kmodemu(*guest, "cat", "/proc/cmdline")
        assert (res.returncode, res.stdout) == (0, "tmem\n")
    finally:
        m.stop()
