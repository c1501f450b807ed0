"""docs/modules.md's tutorial, run as written: its package, its commands, its outputs, its mypy claim.

The package is the tutorial's ``# mytmem/__init__.py`` code block; the
commands are the ``$ kmodemu …`` lines of its console block, run with the
installed ``kmodemu`` in the directory holding the package (a real machine
process, stopped at the end), each compared with the lines shown under it
(what a terminal shows: stdout, then stderr; the machine directory as it is
without XDG_STATE_HOME). A command that writes to stderr
must exit non-zero and one that does not must exit 0, as the real tools do.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kmodemu.machine.testing import stop_all_under

DOC = Path(__file__).resolve().parents[1] / "docs" / "modules.md"
TUTORIAL = "## Tutorial: the smallest complete tmem backend"


UNLOAD = "## Letting go: an exit for profile 3.10-unload"


def tutorial_blocks(title: str = TUTORIAL,
                    first: str = "# mytmem/__init__.py\n") -> tuple[str, list[tuple[str, list[str]]]]:
    """(the section's package source, [(command line, expected output lines)])."""
    text = DOC.read_text()
    section = text[text.index(title):]
    section = section[:section.index("\n## ", len(title))]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    code = [body for lang, body in blocks if lang == "python" and body.startswith(first)]
    console = [body for lang, body in blocks if lang == "console"]
    assert len(code) == 1 and len(console) == 1, "the tutorial has one package and one session"
    steps: list[tuple[str, list[str]]] = []
    for line in console[0].splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return code[0], steps


def _kmodemu() -> str:
    exe = Path(sys.executable).with_name("kmodemu")
    assert exe.exists(), f"no kmodemu executable beside {sys.executable}"
    return str(exe)


@pytest.fixture
def workdir(tmp_path):
    code, _ = tutorial_blocks()
    pkg = tmp_path / "work" / "mytmem"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(code)
    try:
        yield pkg.parent
    finally:
        stop_all_under(tmp_path)


def run_session(workdir: Path, steps: list[tuple[str, list[str]]]) -> None:
    """Each ``$ kmodemu …`` line with the installed kmodemu, compared with the lines under it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["XDG_STATE_HOME"] = str(workdir.parent / "state")  # machines live outside the module dir
    for line, expected in steps:
        argv = shlex.split(line)
        assert argv[0] == "kmodemu"
        res = subprocess.run([_kmodemu(), *argv[1:]], cwd=workdir, env=env, capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
        shown = (res.stdout + res.stderr).replace(env["XDG_STATE_HOME"], "~/.local/state")
        assert shown.splitlines() == expected, line
        assert (res.returncode != 0) == bool(res.stderr), (line, res.returncode, res.stderr)


def test_tutorial_session_runs_as_written(workdir):
    _, steps = tutorial_blocks()
    assert steps[0][0] == "kmodemu boot --module-path ." and steps[-1][0] == "kmodemu poweroff"
    run_session(workdir, steps)


@pytest.fixture
def unload_workdir(workdir):
    """The tutorial's package with the "Letting go" section's code appended."""
    code, _ = tutorial_blocks(UNLOAD, "# appended to mytmem/__init__.py\n")
    init = workdir / "mytmem" / "__init__.py"
    init.write_text(init.read_text() + "\n\n" + code)
    return workdir


def test_the_unload_exit_section_runs_as_written(unload_workdir):
    _, steps = tutorial_blocks(UNLOAD, "# appended to mytmem/__init__.py\n")
    assert "--profile 3.10-unload" in steps[0][0] and ("kmodemu rmmod mytmem", []) in steps
    run_session(unload_workdir, steps)


def test_the_package_with_its_unload_exit_is_mypy_clean(unload_workdir):
    test_tutorial_package_is_mypy_clean(unload_workdir)


def test_tutorial_package_is_mypy_clean(workdir):
    res = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports",
                          "--cache-dir", str(workdir / "mypy-cache"), "mytmem"],
                         cwd=workdir, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith("Success: no issues found")
