"""Scenarios are data: what they can reach on the host is what the person running chose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmodemu.scenario import ERROR, FAIL, PASS, load, run_scenario
from kmodemu.trust import HostPolicy, UntrustedPath, confine

PLUGIN = '''
from pathlib import Path
Path({marker!r}).write_text("imported")
'''
STEP = "$ lsmod\nModule                  Size  Used by\n"


def test_confine(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in/link").symlink_to("/etc")
    assert confine(tmp_path / "in" / "x" / ".." / "y", tmp_path / "in") == (tmp_path / "in/y").resolve()
    with pytest.raises(UntrustedPath) as e:
        confine(tmp_path / "in" / ".." / "out", tmp_path / "in")
    assert e.value.errno == 13
    with pytest.raises(UntrustedPath):
        confine(tmp_path / "in/link/passwd", tmp_path / "in")
    assert HostPolicy().host_file("/etc/passwd") == "/etc/passwd"
    with pytest.raises(UntrustedPath):
        HostPolicy(host_root=tmp_path / "in").host_file("../../etc/passwd")


def test_module_path_outside_the_scenario_tree_is_refused_before_import(tmp_path, scn):
    marker = tmp_path / "imported"
    plug = tmp_path / "outside" / "evil"
    plug.mkdir(parents=True)
    (plug / "__init__.py").write_text(PLUGIN.format(marker=str(marker)))
    path = scn("suite/a", "# reaches out\nmodule-path: ../outside\n" + STEP)
    result = run_scenario(load(path))
    assert result.status == ERROR
    assert result.reason == (f"module-path {(tmp_path / 'outside').resolve()}: outside the trusted tree "
                             f"{(tmp_path / 'suite').resolve()} (kmodemu run --trust-root DIR chooses another)")
    assert not marker.exists()
    # the person running widens the tree on their command line
    result = run_scenario(load(path), trust_root=tmp_path)
    assert result.status == PASS and marker.exists()


def test_kmodemu_run_trusts_the_directory_argument_and_trust_root(tmp_path, scn, cli):
    plug = tmp_path / "plugins" / "fine"
    plug.mkdir(parents=True)
    (plug / "__init__.py").write_text(PLUGIN.format(marker=str(tmp_path / "m")))
    scn("sub/a", "# within the tree\nmodule-path: ../plugins\n" + STEP)
    r = cli("run", tmp_path)
    assert r.exit_code == 0, r.output
    r = cli("run", tmp_path / "sub")
    assert r.exit_code == 1 and "outside the trusted tree" in r.stdout
    r = cli("run", tmp_path / "sub", "--trust-root", tmp_path)
    assert r.exit_code == 0, r.output


def test_host_content_is_confined(tmp_path, scn):
    (tmp_path / "data.txt").write_bytes(b"inside\n")
    path = scn("s", """\
        # host content inside and outside the tree
        $ mkfile /f --size 4K --content host:data.txt
        /f: 7 bytes, 1 pages, host
        $ mkfile /g --size 4K --content host:/etc/passwd
        2> Usage: kmodemu mkfile [OPTIONS] PATH
        2> Try 'kmodemu mkfile --help' for help.
        2> 
        2> Error: Invalid value for --content: /etc/passwd: Permission denied (outside the trusted tree @TREE@)
        [2]
        $ ls /g
        2> ls: cannot access '/g': No such file or directory
        [2]
        """.replace("@TREE@", str(tmp_path.resolve())))
    result = run_scenario(load(path))
    assert result.status == PASS, result.diff


def test_shell_lines_and_writes_stay_on_the_machine(tmp_path, scn):
    victim = tmp_path / "pwned"
    path = scn("s", f"""\
        # a hostile install line and a write aimed out of the machine's disk
        $ cat > /etc/modprobe.d/evil.conf <<EOF
        install zcache touch {victim}; echo $(id -un) $MODPROBE_MODULE $HOME
        EOF
        $ modprobe zcache
        zcache /
        2> sh: 1: touch: not found
        2> sh: 1: id: not found
        $ echo x > /../../../../../../../..{tmp_path}/escaped
        $ insmod /etc/passwd
        2> insmod: ERROR: could not load module /etc/passwd: No such file or directory
        [1]
        """)
    result = run_scenario(load(path))
    assert result.status == PASS, result.diff
    assert not victim.exists() and not (tmp_path / "escaped").exists()


def test_install_that_modprobes_itself_is_bounded(scn):
    err = ("2> modprobe: ERROR: ../libkmod/libkmod-module.c:1047 command_do() Error running install "
           "command 'modprobe zcache' for module zcache: retcode {rc}\n"
           "2> modprobe: ERROR: could not insert 'zcache': Invalid argument\n")
    lines = ["# a line that modprobes itself would fork forever on Linux",
             "$ cat > /etc/modprobe.d/loop.conf <<EOF", "install zcache modprobe zcache", "EOF",
             "$ modprobe zcache", "2> sh: 1: Cannot fork"]
    lines += [x for n in range(16) for x in err.format(rc=2 if n == 0 else 1).splitlines()]
    lines += ["[1]", STEP]
    path = scn("s", "\n".join(lines))
    result = run_scenario(load(path))
    assert result.status == PASS, result.diff


@pytest.mark.skipif(not shutil.which("sh"), reason="no host sh")
def test_host_shell_only_when_opted_in(tmp_path, scn):
    victim = tmp_path / "ran"
    text = f"""\
        # the host shell, chosen by the person running
        $ cat > /etc/modprobe.d/host.conf <<EOF
        install zcache touch {victim}
        EOF
        $ modprobe zcache
        """
    assert run_scenario(load(scn("a", text))).status == FAIL
    assert not victim.exists()
    assert run_scenario(load(scn("b", text)), host_shell=True).status == PASS
    assert victim.exists()


def test_a_scenario_past_its_time_limit_fails(scn, cli, monkeypatch):
    import kmodemu.scenario.runner as runner

    slow = scn("slow", "# sleeps for real\n" + STEP)
    real = runner.Session.run

    def hang(self, line, stdin=None):
        import time
        if line == "lsmod":
            time.sleep(5)
        return real(self, line, stdin)

    monkeypatch.setattr(runner.Session, "run", hang)
    result = run_scenario(load(slow), timeout=0.2)
    assert (result.status, result.reason) == (FAIL, "timed out after 0.2 s (kmodemu run --timeout)")
    r = cli("run", slow, "--timeout", "0.2")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[2:4] == [
        f"# {slow}: timed out after 0.2 s (kmodemu run --timeout)", "not ok 1 slow"]


def test_the_library_scenarios_need_only_their_repository():
    lib = Path(__file__).resolve().parents[2] / "scenarios"
    for p in sorted(lib.rglob("*.scn")):
        for mp in load(p).module_path:
            confine(mp, lib.parent)
