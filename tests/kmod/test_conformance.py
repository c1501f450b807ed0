"""Every recorded kmod 30 case, byte for byte (placeholders substituted)."""

from __future__ import annotations

import pytest

from .harness import load_cases, make_tree, normalise, run_case, run_tool

DATA = load_cases()


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    out = {}
    for name, tree in DATA["trees"].items():
        root = make_tree(base, name)
        argv = [a.replace("@ROOT@", str(root)) for a in tree.get("depmod_argv", ["depmod", "-b", "@ROOT@", "6.0.0-emu"])]
        rc, so, se = run_tool(argv, root=base)
        if "depmod_exit_code" in tree:
            assert rc == tree["depmod_exit_code"]
            assert so == tree["depmod_stdout"]
            assert se.replace(str(root), "@ROOT@") == tree["depmod_stderr"]
        out[name] = root
    return out


def test_depmod_writes_the_recorded_index_files(trees):
    for name, tree in DATA["trees"].items():
        moddir = trees[name] / "lib" / "modules" / DATA["kernel_version_dir"]
        for fname, text in tree.get("index_files_text", {}).items():
            assert (moddir / fname).read_text() == text, fname
        for fname in tree.get("binary_indexes_written", []):
            assert (moddir / fname).exists(), fname


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["name"] for c in DATA["cases"]])
def test_case(case, trees, tmp_path):
    rc, out, err = run_case(case, tmp_path, trees)
    exp = case["expected"]
    assert normalise(out) == normalise(exp["stdout"])
    assert normalise(err) == normalise(exp["stderr"])
    assert rc == exp["exit_code"]
