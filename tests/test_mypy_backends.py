"""mypy has nothing to say about the backend side: the contract, the module loader, kmod, the frontends, backends.

The rest of kmodemu/ is checked by its own test as it becomes clean; errors
mypy reports in files outside these paths (it follows imports) are not
counted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLEAN = ("plugins/", "kmodemu/tmem/", "kmodemu/modules/", "kmodemu/kmod/",
         "kmodemu/mm/cleancache.py", "kmodemu/mm/frontswap.py",
         # the other backends written against the contract
         "examples/params_demo/", "scenarios/plugins/tmem_ram/", "tests/mm/plugins/tmem_dict/")


def test_backend_side_is_mypy_clean(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), *CLEAN],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert "error:" in res.stdout or res.returncode == 0, res.stderr  # mypy itself ran
    ours = [line for line in res.stdout.splitlines()
            if line.startswith(CLEAN) and ": error:" in line]
    assert ours == []
