"""The scenario library (scenarios/) passes under the runner, one test per scenario,
so the default ``pytest`` run covers it and pytest-xdist spreads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodemu.scenario import PASS, load, run_scenario
from kmodemu.scenario.select import expand

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
FILES = expand([LIBRARY])


def test_library_is_not_empty():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(LIBRARY)) for p in FILES])
def test_scenario(path):
    scn = load(path)
    assert scn.lines[0].startswith("#"), "a library scenario opens with a comment saying what it shows"
    result = run_scenario(scn, trust_root=LIBRARY.parent)
    assert result.status == PASS, f"{result.reason}\n{result.diff}"


def test_kmodemu_run_on_the_library_lists_every_file():
    from kmodemu.cli import main

    r = CliRunner().invoke(main, ["run", str(LIBRARY), "--list"])
    assert r.exit_code == 0
    assert len(r.stdout.splitlines()) == len(FILES)
