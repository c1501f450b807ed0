"""The emulated sh for modprobe.d install/remove lines: dash's answers, no host access."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, strategies as st

from kmodemu.kmod import sh


class Tools:
    """Stands in for the machine's kmod tools: records each call, prints its argv."""

    def __init__(self, status: int = 0):
        self.calls: list[tuple[list[str], str | None]] = []
        self.status = status

    def __call__(self, name, argv, env, out, err):
        self.calls.append((argv, env.get("MODPROBE_OPTIONS")))
        out.write(f"[{' '.join(argv)}]\n")
        return self.status


def run(line: str, env=None, tools=None):
    return sh.run(line, env if env is not None else {"HOME": "/"}, tools or Tools())


# lines whose answer must be dash's, byte for byte (only echo/true/false/exit and unknown commands)
DASH_LINES = [
    "echo a; false && echo b || echo c",
    "echo \"x $HOME y\" 'q $HOME'",
    "touch /tmp/kmodemu-never; echo $(id -un) $?",
    "foo 2>/dev/null; echo $?",
    "echo a | echo b",
    "true && false || echo yes",
    "exit 3; echo no",
    "echo -n hi\\\\n",
    "echo 'unterminated",
    "a=1 ; echo $a ${a}b",
    "echo `echo inner`",
    "echo a &&",
    "; echo",
    "echo a\\ b  c",
    "echo $(false); echo $?",
    "/bin/foo; echo $?",
    "echo \"a\\\"b\" \\$x",
    "echo x #comment",
    "X=5 echo $X",
    "false; echo $?",
    "echo 1 && echo 2 && false || echo 3 ; echo 4",
    "false && echo never | echo never2; echo $?",
    "echo $UNSET_VAR_X.",
    "echo \"\"",
    "echo '' x",
    "x='a  b'; echo $x \"$x\"",
]


@pytest.mark.skipif(not shutil.which("dash"), reason="dash (the reference sh) not installed")
@pytest.mark.parametrize("line", DASH_LINES)
def test_answers_as_dash_does(line):
    ref = subprocess.run(["sh", "-c", line], executable=shutil.which("dash"), capture_output=True,
                         text=True, env={"HOME": "/", "PATH": "/nonexistent"})
    assert run(line) == (ref.returncode, ref.stdout, ref.stderr)


def test_unknown_commands_are_127_and_never_reach_the_host(tmp_path):
    target = tmp_path / "pwned"
    status, out, err = run(f"touch {target}; echo $(id -un) done; /usr/bin/id")
    assert (status, out) == (127, "done\n")
    assert err == ("sh: 1: touch: not found\nsh: 1: id: not found\nsh: 1: /usr/bin/id: not found\n")
    assert not target.exists()


def test_redirection_to_a_host_file_is_refused(tmp_path):
    target = tmp_path / "out"
    assert run(f"echo hi > {target}") == (2, "", f"sh: 1: cannot create {target}: Permission denied\n")
    assert not target.exists()
    assert run("echo hi >/dev/null 2>&1; echo $?") == (0, "0\n", "")
    assert run("echo err >&2") == (0, "", "err\n")


def test_kmod_tools_run_inline_with_their_environment():
    tools = Tools()
    line = ("echo before; /sbin/modprobe --ignore-install zcache enabled=1 && "
            "MODPROBE_OPTIONS=-v insmod /lib/x.ko; echo after $MODPROBE_MODULE")
    status, out, err = run(line, {"MODPROBE_MODULE": "zcache"}, tools)
    assert (status, err) == (0, "")
    assert out == ("before\n[modprobe --ignore-install zcache enabled=1]\n[insmod /lib/x.ko]\n"
                   "after zcache\n")
    assert tools.calls == [(["modprobe", "--ignore-install", "zcache", "enabled=1"], None),
                           (["insmod", "/lib/x.ko"], "-v")]


def test_a_failing_tool_sets_the_status():
    assert run("modprobe x || echo failed $?", tools=Tools(status=1)) == (0, "[modprobe x]\nfailed 1\n", "")


def test_compound_commands_are_not_emulated():
    assert run("if true; then echo x; fi") == (127, "", "sh: 1: if: not found\n")
    assert run("(echo x)")[0] == 2


def test_nesting_is_bounded():
    assert sh.run("modprobe x", {}, Tools(), depth=sh.MAX_DEPTH - 1) == (2, "", "sh: 1: Cannot fork\n")


def test_output_is_capped():
    status, out, _ = run("echo " + "x" * (sh.MAX_OUTPUT + 10))
    assert status == 0 and len(out) == sh.MAX_OUTPUT


def test_machine_env_hides_the_host_environment():
    env = sh.machine_env({"SECRET": "s3cr3t", "MODPROBE_OPTIONS": "-q", "HOME": "/home/me"})
    assert env == {"HOME": "/", "TERM": "linux", "PATH": "/sbin:/usr/sbin:/bin:/usr/bin",
                   "MODPROBE_OPTIONS": "-q"}


@given(st.text(max_size=80))
def test_any_line_gets_a_status_never_an_exception(line):
    status, out, err = run(line)
    assert 0 <= status <= 255 and isinstance(out, str) and isinstance(err, str)
