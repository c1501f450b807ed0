"""Several machines in one scenario: ``machines:`` and ``$ @NAME command``."""

from __future__ import annotations

import pytest

from kmodemu.scenario.format import ScenarioSyntaxError, parse
from kmodemu.scenario.runner import run_scenario

TWO = """\
machines: alpha beta
cmdline: quiet

$ @beta write /proc/sys/kernel/modprobe /bin/x
$ @beta cat /proc/sys/kernel/modprobe
/bin/x
$ cat /proc/sys/kernel/modprobe
/sbin/modprobe
$ @alpha cat /proc/sys/kernel/modprobe
/sbin/modprobe
"""


def test_each_machine_has_its_own_kernel():
    r = run_scenario(parse(TWO, name="two"))
    assert r.status == "PASS", r.reason


def test_a_wrong_expectation_fails_on_the_right_machine():
    r = run_scenario(parse(TWO.replace("/bin/x\n$ cat", "/sbin/modprobe\n$ cat"), name="two"))
    assert r.status == "FAIL"
    assert "@beta cat /proc/sys/kernel/modprobe\n/bin/x" in r.actual


def test_unknown_machine_and_prefix_without_header_are_errors():
    r = run_scenario(parse(TWO.replace("$ @alpha", "$ @gamma"), name="two"))
    assert r.status == "ERROR" and "no machine named 'gamma' (machines: alpha, beta)" in r.reason
    r = run_scenario(parse("$ @x uname -r\n", name="one"))
    assert r.status == "ERROR" and "'@x' needs a 'machines:' header" in r.reason


def test_bad_machine_names():
    with pytest.raises(ScenarioSyntaxError, match="a machine named twice"):
        parse("machines: a a\n$ uname\n", name="x")
    with pytest.raises(ScenarioSyntaxError, match="bad machine name"):
        parse("machines: 1a\n$ uname\n", name="x")
