"""mypy has nothing to say about any of kmodemu/ and plugins/ (issue 13: mypy clean in CI).

test_mypy_backends.py holds the backend side to the same rule; this one covers the
whole tree, so a type error anywhere (kernel, mm, console, machine, scenario, report,
demo, cli) fails the suite, not only a manual mypy run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_whole_tree_is_mypy_clean(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), "kmodemu", "plugins"],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    errors = [line for line in res.stdout.splitlines() if ": error:" in line]
    assert errors == [], "\n".join(errors)
    assert res.returncode == 0, res.stdout + res.stderr   # mypy ran and found nothing
