"""The examples in docs/testing-plugins.md and docs/scenarios.md run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTING = (REPO / "docs" / "testing-plugins.md").read_text()


def _block(text: str, after: str, lang: str = "") -> str:
    start = text.index(after)
    m = re.compile(r"```" + lang + r"\n(.*?)```", re.S).search(text, start)
    return m.group(1)


def test_testing_plugins_example_passes(tmp_path):
    (tmp_path / "test_tmem_ram.py").write_text(_block(TESTING, "<!-- example: test_tmem_ram.py -->",
                                                      "python"))
    scn = _block(TESTING, "## Scenario files next to your tests")
    (tmp_path / "tmem_ram_replay.scn").write_text(scn)
    shutil.copytree(REPO / "scenarios" / "plugins" / "tmem_ram", tmp_path / "plugins" / "tmem_ram")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 passed" in r.stdout


def test_scenarios_md_example_passes():
    from kmodemu.scenario import PASS, parse, run_scenario

    text = (REPO / "docs" / "scenarios.md").read_text()
    result = run_scenario(parse(_block(text, "# Scenarios"), name="doc-example"))
    assert result.status == PASS, result.diff
