"""benchmarks/ir_hotpath.py refuses clearly when valgrind is missing (its only error path
that needs no corpus: the corpus is this machine's files, which tests do not read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "benchmarks" / "ir_hotpath.py"


def test_without_valgrind_it_says_so_and_exits_1(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # an empty directory: no valgrind on PATH
    res = subprocess.run([sys.executable, str(TOOL)], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr == "ir_hotpath: valgrind is not installed (apt-get install valgrind)\n"
