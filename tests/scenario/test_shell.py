"""``kmodemu shell``: sessions run through the scenario Session; --record replays."""

from __future__ import annotations

import io

from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario import PASS, load, run_scenario
from kmodemu.shell import run_shell

SESSION = """\
# the command line, as the kernel saw it
cat /proc/cmdline
cat > /etc/modprobe.d/local.conf <<EOF
options params_demo level=4
EOF
dmesg | grep -c 'Kernel command line'
cat /proc/missing
"""


def _shell(machine, text, record=None):
    out, err = io.StringIO(), io.StringIO()
    rc = run_shell(machine, record, stdin=io.StringIO(text), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_shell_runs_commands_and_keeps_streams_apart():
    with Machine(MachineDef(cmdline="quiet")) as m:
        rc, out, err = _shell(m, SESSION)
        assert rc == 1
        assert out == "quiet\n1\n"
        assert err == "cat: /proc/missing: No such file or directory\n"
        assert (m.root / "etc/modprobe.d/local.conf").read_text() == "options params_demo level=4\n"


def test_record_writes_a_scenario_that_replays(tmp_path):
    path = tmp_path / "session.scn"
    with Machine(MachineDef(cmdline="quiet", seed=5)) as m:
        _shell(m, "echo /bin/true > /proc/sys/kernel/modprobe\n")   # before the recording
        rc, _, err = _shell(m, SESSION + "exit\nnot run\n", record=path)
    assert err == "cat: /proc/missing: No such file or directory\n"   # no replay warning
    text = path.read_text()
    assert "cmdline: quiet\n" in text and "seed: 5\n" in text
    assert "# commands this machine ran before the session:\n$ write /proc/sys/kernel/modprobe /bin/true\n" in text
    assert "# the command line, as the kernel saw it\n$ cat /proc/cmdline\nquiet\n" in text
    assert "<<EOF\noptions params_demo level=4\nEOF\n" in text
    assert "$ cat /proc/missing\n2> cat: /proc/missing: No such file or directory\n[1]\n" in text
    assert "not run" not in text
    assert run_scenario(load(path)).status == PASS


def test_record_never_overwrites(tmp_path):
    path = tmp_path / "kept.scn"
    path.write_text("mine")
    with Machine(MachineDef()) as m:
        rc, _, err = _shell(m, "uname\n", record=path)
    assert rc == 1 and "file exists" in err and path.read_text() == "mine"


def test_record_after_a_modprobe_replays_its_command_line(tmp_path):
    """A journal entry kept as data (modprobe's effect) is recorded as the command that made it."""
    path = tmp_path / "after-modprobe.scn"
    with Machine(MachineDef(seed=2)) as m:
        assert m.capture(["modprobe", "zcache"])[0] == 0
        assert isinstance(m.journal[0], dict)
        rc, _, err = _shell(m, "lsmod\n", record=path)
    assert (rc, err) == (0, "")
    text = path.read_text()
    assert "# commands this machine ran before the session:\n$ modprobe zcache\n# the session:\n" in text
    assert "argv" not in text
    assert run_scenario(load(path)).status == PASS
