"""The pytest plugin, run the way users run it: pytest in a subprocess on a test tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FIXTURE_TESTS = f'''
import pytest

EXAMPLE = {str(REPO / "examples" / "params_demo")!r}


def test_machine_has_the_cli_commands(machine):
    machine.sh("uname -r").assert_success()
    r = machine.sh("cat /proc/nope").assert_failed(1)
    assert "No such file" in r.stderr


@pytest.mark.kmodemu(cmdline="quiet zcache", profile="3.9")
def test_marker(kernel):
    assert kernel.saved_command_line == "quiet zcache"
    assert kernel.profile.name == "3.9"


@pytest.mark.parametrize("kernel", ["a=1", {{"cmdline": "b=2", "profile": "3.9"}}], indirect=True)
def test_indirect(kernel, machine):
    assert machine.kernel is kernel
    assert kernel.saved_command_line in ("a=1", "b=2")


def test_load_module(machine, load_module):
    mod = load_module(EXAMPLE, "level=5", name="params_demo")
    assert mod.name == "params_demo"
    assert machine.sh("cat /sys/module/params_demo/parameters/level").stdout == "5\\n"
'''


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "scn").mkdir()
    (tmp_path / "scn" / "good.scn").write_text("cmdline: x=1\n$ cat /proc/cmdline\nx=1\n")
    (tmp_path / "scn" / "bad.scn").write_text("$ uname -r\n2.6.32\n")
    (tmp_path / "scn" / "later.scn").write_text("skip: not yet\n$ uname\n")
    (tmp_path / "test_fixtures.py").write_text(FIXTURE_TESTS)
    (tmp_path / "notes.txt").write_text("$ not a scenario\n")
    return tmp_path


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-o", "addopts=", "-rfs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_scenarios_are_items_and_fixtures_work(tmp_path):
    r = _pytest(_tree(tmp_path), "-q")
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "1 failed, 6 passed, 1 skipped" in out
    assert "scn/bad.scn::bad" in out
    assert "scenario bad (FAIL): 1 of 1 commands differ" in out
    assert "-2.6.32" in out and "+3.10.0-kmodemu" in out
    assert "SKIPPED [1] scn/later.scn: not yet" in out


def test_collect_only_lists_one_item_per_scenario(tmp_path):
    r = _pytest(_tree(tmp_path), "--collect-only", "-q", "scn")
    assert [line for line in r.stdout.splitlines() if "::" in line] == [
        "scn/bad.scn::bad", "scn/good.scn::good", "scn/later.scn::later"]


def test_syntax_error_is_a_collection_error(tmp_path):
    (tmp_path / "broken.scn").write_text("colour: blue\n")
    r = _pytest(tmp_path, "-q")
    assert r.returncode == 2
    assert "broken.scn:1: unknown header key 'colour'" in r.stdout


def test_record_option(tmp_path):
    _tree(tmp_path)
    r = _pytest(tmp_path, "-q", "scn", "--kmodemu-record")
    assert r.returncode == 0, r.stdout
    assert (tmp_path / "scn" / "bad.scn").read_text() == "$ uname -r\n3.10.0-kmodemu\n"


def test_xdist(tmp_path):
    pytest.importorskip("xdist")
    r = _pytest(_tree(tmp_path), "-q", "-n", "2")
    assert "1 failed, 6 passed, 1 skipped" in r.stdout, r.stdout + r.stderr
