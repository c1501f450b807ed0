"""benchmarks/ir_hotpath.py: it refuses clearly when valgrind is missing, and its
``--by-function`` count runs on a corpus the test makes (the benchmark's own corpus
is this machine's files, which tests do not read)."""

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


def _tool(monkeypatch, pages):
    """ir_hotpath imported as a module, with bench_hotpath's corpus replaced by ``pages``."""
    import importlib.util

    monkeypatch.syspath_prepend(str(TOOL.parent))
    import bench_hotpath

    monkeypatch.setattr(bench_hotpath, "build_corpus", lambda n, seed: (pages[:n], ["t"] * n))
    spec = importlib.util.spec_from_file_location("ir_hotpath_under_test", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _text_pages(n):
    import random

    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(300)]
    return [b" ".join(rng.choice(words) for _ in range(900))[:4096].ljust(4096, b".")
            for _ in range(n)]


def test_by_function_counts_the_python_path_of_each_page(monkeypatch):
    tool = _tool(monkeypatch, _text_pages(64))
    rows = tool.by_function("zbud", "cleancache", 64, 50)
    names = dict(rows)
    assert rows[0][0] == "(all)"
    # every page is compressed and stored: zbud's create and the freeing get ran per page
    assert names["ZbudPool.create"] > 50 and names["ZbudPool.read_and_free"] > 50
    assert names["Cleancache.put_page"] > 0 and names["Tmem.take"] > 0
    assert rows[0][1] >= sum(v for k, v in rows[1:])
    assert tool.by_function("zbud", "cleancache", 64, 50) == rows  # counts, not times


def test_by_function_zero_pages_never_reach_the_allocator(monkeypatch):
    tool = _tool(monkeypatch, [bytes(4096) for _ in range(32)])
    names = dict(tool.by_function("zbud", "frontswap", 32, 100))
    assert "ZbudPool.create" not in names and "ZbudPool.read_and_free" not in names
    assert names["account_filled"] > 0 and names["unaccount_filled"] > 0
