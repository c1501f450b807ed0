"""Unloading on a running machine process: through the CLI and its socket, and after a
recovery from the journal (the unload and the reload replay to the same state)."""

from __future__ import annotations

from kmodemu.machine import client


def test_unload_and_reload_survive_a_killed_machine(running_machine):
    m = running_machine("u", boot=("--profile", "3.10-unload", "--mem", "64M"))
    for argv in (("mkswap", "/dev/sdb", "128M"), ("swapon", "/dev/sdb"),
                 ("mount", "-t", "ext4", "/dev/sda1", "/mnt"), ("insmod", "zcache"),
                 ("alloc", "p", "80M", "--content", "mixed", "--seed", "3")):
        rc, out, err = m.run(*argv)
        assert rc == 0, (argv, err)
    rc, digest, _ = m.run("touch-anon", "p", "--sha256")
    rc, _, err = m.run("rmmod", "zcache")
    assert rc == 0, err
    rc, out, _ = m.run("lsmod")
    assert out == "Module                  Size  Used by\n"
    rc, _, err = m.run("insmod", "zcache", "zcache_comp_name=lz4")
    assert rc == 0, err
    _, before, _ = m.run("dmesg")
    assert "frontswap: backend unregistered" in before and "zcache: using lz4 compressor" in before
    journaled = [e[:2] if isinstance(e, list) else e for e in client.info(m.path)["journal"]]
    assert ["rmmod", "zcache"] in journaled
    m.kill()
    res = m.cli("dmesg")
    assert res.returncode == 0 and "recovered it from its journal" in res.stderr
    assert res.stdout == before
    rc, out, _ = m.run("cat", "/proc/modules")
    assert out.startswith("zcache 122880 0 - Live ")
    rc, again, _ = m.run("touch-anon", "p", "--sha256")
    assert again.splitlines()[-1] == digest.splitlines()[-1]
