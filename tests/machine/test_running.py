"""Machines as running processes (issue "Machines that run"), through the real CLI and socket.

Every test starts its own machine processes under tmp_path (the ``running_machine``
fixture) and stops them afterwards; nothing here talks to anything but loopback
unix sockets in the test's own directory.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kmodemu.machine import Machine, MachineDef, client
from kmodemu.machine import protocol as proto
from kmodemu.machine.testing import kmodemu, wait_stopped

WORKLOAD = ("workload", "--rounds", "6", "--files", "4", "--file-size", "1M", "--anon", "8M")
STATE_FILES = ("/proc/modules", "/proc/meminfo", "/proc/swaps", "/proc/mounts",
               "/sys/kernel/debug/cleancache/puts", "/sys/kernel/debug/cleancache/succ_gets",
               "/sys/kernel/debug/frontswap/succ_stores", "/sys/kernel/debug/frontswap/loads",
               "/sys/kernel/debug/zcache/eph_pageframes", "/sys/kernel/debug/zcache/pers_zpages",
               "/proc/uptime")


def sigint_default() -> None:
    """In the child: Ctrl-C as a terminal's foreground job gets it. A test run started in the
    background (``make soak &``) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so the client would rightly go on as nohup'd jobs do."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def state(m) -> dict[str, str]:
    """What a user can see of the machine: /proc, debugfs, dmesg."""
    seen = {}
    for f in STATE_FILES:
        rc, out, err = m.run("cat", f)
        seen[f] = out if rc == 0 else err
    seen["dmesg"] = m.run("dmesg")[1]
    return seen


def setup_zcache(m) -> None:
    for argv in (("mount", "-t", "ext4", "/dev/sda1", "/mnt"), ("mkswap", "/dev/sdb"),
                 ("swapon", "/dev/sdb"), ("insmod", "zcache")):
        rc, out, err = m.run(*argv)
        assert rc == 0, (argv, err)


def journal(m) -> list[list[str]]:
    data = client.info(m.path)
    assert data is not None
    return data["journal"]


def test_a_command_prints_what_the_in_process_machine_prints(running_machine, tmp_path):
    m = running_machine("m")
    local = Machine.create(tmp_path / "local", MachineDef())
    cmds = [("insmod", "zcache", "zcache_compressor=lz4"), ("lsmod",), ("modinfo", "zcache"),
            ("insmod", "nosuch"), ("cat", "/sys/module/zcache/parameters/zcache_compressor"),
            ("rmmod", "zcache"), ("dmesg",)]
    for argv in cmds:
        res = m.cli(*argv)
        out, err = io.StringIO(), io.StringIO()
        rc = local.run(list(argv), stdout=out, stderr=err)
        assert (res.returncode, res.stdout, res.stderr) == (rc, out.getvalue(), err.getvalue()), argv
    local.close()


def test_the_process_is_detached_and_private(running_machine):
    m = running_machine("m")
    assert m.running
    st = os.stat(m.path)
    assert st.st_mode & 0o777 == 0o700
    assert os.stat(m.path / proto.SOCKET_NAME).st_mode & 0o777 == 0o600
    pid = m.pid
    fds = {os.readlink(f"/proc/{pid}/fd/{n}") for n in (0, 1, 2)}
    assert fds == {"/dev/null"}                     # CI's pipes are never held open
    assert os.getsid(pid) == pid                    # its own session: no controlling terminal


def test_commands_that_change_nothing_are_not_journaled(running_machine):
    m = running_machine("m")
    assert journal(m) == []
    for argv in (("lsmod",), ("insmod", "--help"), ("workload", "--help"), ("cat", "/proc/uptime"),
                 ("insmod",), ("insmod", "nosuch"), ("modinfo", "zcache"), ("ls", "/sys/module")):
        m.cli(*argv)
    assert journal(m) == []
    assert m.cli("insmod", "zcache").returncode == 0
    assert journal(m) == [["insmod", "zcache"]]


def test_concurrent_clients_each_apply_exactly_once(running_machine):
    m = running_machine("m")
    n_threads, per_thread = 6, 5
    results: list[int] = []

    def worker(t: int) -> None:
        for i in range(per_thread):
            rc, _, err = m.run("mkfile", f"/tmp/f{t}-{i}", "--size", "4096")
            results.append(rc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * (n_threads * per_thread)
    paths = [f"/tmp/f{t}-{i}" for t in range(n_threads) for i in range(per_thread)]
    rc, sums, err = m.run("sha256sum", *paths)
    assert rc == 0, err
    assert [line.split()[1] for line in sums.splitlines()] == paths
    entries = [e for e in journal(m) if e[0] == "mkfile"]        # (sha256sum fills the cache)
    assert sorted(e[1] for e in entries) == sorted(paths)        # each exactly once
    # the journal and the state agree: the machine rebuilt from it holds the same bytes
    m.kill()
    rc, again, err = m.run("sha256sum", *paths)
    assert "recovered it from its journal (31 commands replayed" in err   # and the sha256sum
    assert again == sums


def test_sigkill_of_the_machine_then_recovery_restores_proc_and_debugfs(running_machine):
    m = running_machine("m")
    setup_zcache(m)
    for _ in range(2):
        rc, _, err = m.run(*WORKLOAD)
        assert rc == 0, err
    rc, _, _ = m.run("sleep", "3s")
    before = state(m)
    n = len(journal(m))
    old_pid = m.pid
    m.kill()
    assert not m.running and (m.path / proto.SOCKET_NAME).exists()    # a stale socket is left
    res = m.cli("cat", "/proc/modules")
    assert res.returncode == 0
    *bar, said = res.stderr.splitlines()
    assert all(line.startswith("recovering") for line in bar)        # a bar only past 1 s (load)
    assert said.startswith(f"kmodemu: machine {m.path} was not running; recovered it from its "
                           f"journal ({n} commands replayed in ")     # said once
    assert m.pid != old_pid
    assert state(m) == before
    assert m.cli("lsmod").stderr == ""                                # and only once


def test_sigkill_of_a_client_mid_workload_leaves_the_machine_consistent(running_machine):
    m = running_machine("m")
    setup_zcache(m)
    n = len(journal(m))
    exe = Path(sys.executable).with_name("kmodemu")
    proc = subprocess.Popen([str(exe), "--machine", str(m.path), "workload", "--rounds", "400",
                             "--files", "8", "--file-size", "2M", "--anon", "32M"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    rc, out, err = m.run("cat", "/proc/modules")         # served, not wedged
    assert rc == 0 and out.startswith("zcache ")
    after = journal(m)
    # journaled whole or not at all: the workload either completed or left no trace
    assert after[:n] == journal(m)[:n] and len(after) in (n, n + 1)
    seen = state(m)
    m.kill()
    m.run("true")
    assert state(m) == seen                                # what is running is what is journaled


def test_ctrl_c_in_the_client_is_exit_130_and_drops_the_command(running_machine):
    m = running_machine("m")
    setup_zcache(m)
    before = state(m)
    n = len(journal(m))
    exe = Path(sys.executable).with_name("kmodemu")
    proc = subprocess.Popen([str(exe), "--machine", str(m.path), "workload", "--rounds", "2000",
                             "--files", "8", "--file-size", "2M", "--anon", "32M"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert len(journal(m)) == n
    assert state(m) == before


def test_poweroff_then_a_command_is_a_fresh_boot(running_machine):
    m = running_machine("m")
    m.run("insmod", "zcache")
    res = m.cli("poweroff")
    assert res.returncode == 0
    wait_stopped(m.path)
    res = m.cli("lsmod")
    assert res.stderr == f"kmodemu: machine {m.path} was powered off; booting it again\n"
    assert res.stdout == "Module                  Size  Used by\n"


def test_machines_lists_state_pid_release_and_uptime(running_machine):
    a = running_machine("a")
    b = running_machine("b", boot=("--profile", "3.9"))
    b.run("sleep", "90s")
    a_pid = a.pid
    b.kill()
    res = kmodemu("machines", "--json", str(a.path), str(b.path))
    rows = json.loads(res.stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("a", "running"), ("b", "stopped")]
    assert rows[0]["pid"] == a_pid and rows[0]["release"] == "3.10.0-kmodemu"
    assert rows[0]["profile"] == "3.10" and rows[1]["profile"] == "3.9"
    assert rows[1]["pid"] is None
    res = kmodemu("machines", str(a.path))
    head, line = res.stdout.splitlines()
    assert head.split() == ["NAME", "STATE", "PID", "RELEASE", "PROFILE", "UPTIME", "WALL"]
    assert line.split()[:5] == ["a", "running", str(a_pid), "3.10.0-kmodemu", "3.10"]


def test_machines_lists_the_state_directory_and_the_machine_kmodemu_machine_names(tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    env.pop("KMODEMU_MACHINE", None)
    home = state / "kmodemu" / "default"
    away = tmp_path / "elsewhere" / "lab"
    try:
        assert kmodemu("--machine", str(home), "boot", env=env).returncode == 0
        assert kmodemu("--machine", str(away), "boot", "--profile", "3.9", env=env).returncode == 0
        rows = json.loads(kmodemu("machines", "--json", env=env).stdout)
        assert [(r["name"], r["state"]) for r in rows] == [("default", "running")]
        env["KMODEMU_MACHINE"] = str(away)
        rows = json.loads(kmodemu("machines", "--json", env=env).stdout)
        assert [(r["name"], r["profile"]) for r in rows] == [("default", "3.10"), ("lab", "3.9")]
        env["KMODEMU_MACHINE"] = str(home)  # named and in the state directory: listed once
        rows = json.loads(kmodemu("machines", "--json", env=env).stdout)
        assert [r["name"] for r in rows] == ["default"]
    finally:
        for path in (home, away):
            if client.is_running(path):
                client.stop(path)


def test_two_boots_racing_for_one_directory(tmp_path):
    path = tmp_path / "race"
    exe = Path(sys.executable).with_name("kmodemu")
    procs = [subprocess.Popen([str(exe), "--machine", str(path), "boot"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        results = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)  # type: ignore
        assert results[0][0] == 0
        assert results[1][0] == 1
        assert results[1][1] in (f"kmodemu: {path}: a machine already exists (use --force to "
                                 f"replace it)\n",
                                 f"kmodemu: machine {path}: another boot is in progress\n")
        assert json.loads((path / proto.IMAGE_NAME).read_text())["journal"] == []
    finally:
        if client.is_running(path):
            client.stop(path)


def test_a_different_kmodemu_version_is_refused(running_machine, monkeypatch):
    m = running_machine("m")
    monkeypatch.setattr(proto, "version", lambda: "0.0-other")
    with pytest.raises(client.ClientError) as e:
        client.request(m.path, {"op": "run", "argv": ["lsmod"]}, stdout=sys.stdout,
                       stderr=sys.stderr)
    assert str(e.value).startswith(f"machine {m.path} runs kmodemu ")
    assert str(e.value).endswith("this is kmodemu 0.0-other: power it off with that version first")


def test_a_directory_others_can_enter_is_refused(running_machine):
    m = running_machine("m")
    os.chmod(m.path, 0o755)
    try:
        res = m.cli("lsmod")
        assert (res.returncode, res.stdout) == (1, "")
        assert res.stderr == f"kmodemu: {m.path}: directory is accessible to other users (mode 0755)\n"
    finally:
        os.chmod(m.path, 0o700)
    assert m.cli("lsmod").returncode == 0


PANIC = " ".join(f"w{i}" for i in range(1, 41))        # more init args than MAX_INIT_ARGS


@pytest.mark.parametrize("how", [("reboot", "--cmdline", PANIC), ("boot", "--force", "--cmdline", PANIC)])
def test_a_boot_that_panics_keeps_the_old_machine(running_machine, how):
    m = running_machine("m", boot=("--cmdline", "quiet"))
    m.run("insmod", "zcache")
    image = (m.path / proto.IMAGE_NAME).read_bytes()
    res = m.cli(*how)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == ("kmodemu: the kernel did not boot: Kernel panic - not syncing: "
                          "Too many boot init vars at `w33'\n")
    assert (m.path / proto.IMAGE_NAME).read_bytes() == image
    assert m.run("cat", "/proc/cmdline")[1] == "quiet\n"
    assert m.run("lsmod")[1].splitlines()[1].split()[0] == "zcache"


def test_bytes_written_come_back_after_recovery(running_machine):
    m = running_machine("m")
    m.run("mount", "-t", "ext4", "/dev/sda1", "/mnt")
    rc, _, err = m.run("mkfile", "/mnt/data", "--size", "1M")
    assert rc == 0, err
    rc, first, _ = m.run("sha256sum", "/mnt/data")
    m.kill()
    rc, again, _ = m.run("sha256sum", "/mnt/data")
    assert rc == 0 and again == first and len(first.split()[0]) == 64


def test_a_slow_recovery_shows_a_progress_bar_and_what_it_replayed(tmp_path, monkeypatch):
    path = tmp_path / "slow"
    m = Machine.create(path, MachineDef())
    for argv in (("mount", "-t", "ext4", "/dev/sda1", "/mnt"), ("insmod", "zcache"), WORKLOAD,
                 WORKLOAD):
        assert m.capture(list(argv))[0] == 0
    m.close()
    monkeypatch.setattr(client, "PROGRESS_AFTER_S", 0.0)   # "slow": any recovery at all
    err = io.StringIO()
    try:
        client.ensure_running(path, stderr=err)
        lines = err.getvalue().splitlines()
        assert lines[0].startswith("recovering")             # click's bar, as a non-tty draws it
        assert lines[-1].startswith(f"kmodemu: machine {path} was not running; recovered it "
                                    "from its journal (4 commands replayed in ")
    finally:
        client.stop(path)


def test_ctrl_c_during_recovery_is_130_with_no_output(tmp_path):
    path = tmp_path / "long"
    m = Machine.create(path, MachineDef())
    big = ["workload", "--rounds", "40", "--files", "16", "--file-size", "4M", "--anon", "64M"]
    for argv in (["mount", "-t", "ext4", "/dev/sda1", "/mnt"], ["insmod", "zcache"], big, big, big):
        assert m.capture(argv)[0] == 0
    m.close()
    exe = Path(sys.executable).with_name("kmodemu")
    proc = subprocess.Popen([str(exe), "--machine", str(path), "cat", "/proc/modules"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        time.sleep(0.8)                      # the recovery replays for seconds
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out) == (130, "")
        assert err.endswith("kmodemu: interrupted before 'cat' ran (the machine goes on starting "
                            "in the background)\n")
        res = kmodemu("--machine", str(path), "cat", "/proc/modules")
        assert res.returncode == 0 and res.stdout.startswith("zcache ")
    finally:
        client.stop(path) if client.is_running(path) else None
