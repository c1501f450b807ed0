"""Command lines: console commands plus pipes to filters and writes to files."""

from __future__ import annotations

import pytest

from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario.lines import ERR, OUT, RC, Line
from kmodemu.scenario.session import CommandSyntaxError, Session, parse_command


@pytest.fixture
def session():
    m = Machine(MachineDef(cmdline="alpha beta=1"))
    yield Session(m)
    m.close()


def test_console_command(session):
    o = session.run("cat /proc/cmdline")
    assert (o.rc, o.stdout, o.stderr) == (0, "alpha beta=1\n", "")


def test_stderr_and_status_are_kept_apart(session):
    o = session.run("cat /proc/nope")
    assert o.rc == 1 and o.stdout == ""
    assert o.transcript() == [Line(ERR, "cat: /proc/nope: No such file or directory"), Line(RC, "1")]


def test_pipes(session):
    assert session.run("dmesg | grep -c 'Kernel command line:'").stdout == "1\n"
    assert session.run("dmesg | grep -i LINUX | head -n 1").stdout.startswith("[")
    assert session.run("dmesg | grep nothing-like-this").rc == 1
    assert session.run("dmesg | wc -l").stdout.strip().isdigit()
    assert session.run("echo b a | grep -E 'a|z'").stdout == "b a\n"
    assert session.run("echo 'f(x)' | grep 'f(x)'").stdout == "f(x)\n"
    assert session.run(r"echo abab | grep '\(ab\)\{2\}'").stdout == "abab\n"


def test_filter_errors_are_shell_like(session):
    o = session.run("dmesg | head -n x")
    assert o.rc == 2 and o.stderr == "head: invalid number of lines: 'x'\n"


def test_echo_and_here_documents_write_files(session):
    assert session.run("echo options zcache x=1 > /etc/modprobe.d/z.conf").rc == 0
    assert session.run("echo blacklist foo >> /etc/modprobe.d/z.conf").rc == 0
    assert session.run("cat >> /etc/modprobe.d/z.conf <<EOF", stdin="alias bar foo\n").rc == 0
    conf = session.machine.root / "etc/modprobe.d/z.conf"
    assert conf.read_text() == "options zcache x=1\nblacklist foo\nalias bar foo\n"


def test_echo_to_a_pseudo_file_goes_through_the_kernel(session):
    assert session.run("echo /bin/true > /proc/sys/kernel/modprobe").rc == 0
    assert session.run("cat /proc/sys/kernel/modprobe").stdout == "/bin/true\n"
    o = session.run("echo x > /proc/cmdline")
    assert o.rc == 1 and "Permission denied" in o.stderr


@pytest.mark.parametrize("line, message", [
    ("lsmod > /tmp/x", "redirection works with"),
    ("cat <<EOF", "needs 'cat > PATH'"),
    ("dmesg | less", "'less' cannot follow '|'"),
    ("dmesg |", "empty command"),
    ("echo 'unterminated", "No closing quotation"),
])
def test_syntax_errors(line, message):
    with pytest.raises(CommandSyntaxError, match=message):
        parse_command(line)


def test_syntax_errors_become_status_2(session):
    o = session.run("dmesg | less")
    assert o.rc == 2 and o.stderr.startswith("kmodemu: ")


def test_output_without_newline_is_kept(session):
    o = session.run("echo -n partial")
    assert o.lines == [Line(OUT, "partial", eol=False)]
