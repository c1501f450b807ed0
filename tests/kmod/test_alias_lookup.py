"""Alias lookup in modules.alias.bin follows libkmod's trie walk (index_mm_searchwild_node).

The recorded answers come from the real kmod 30 on the same index bytes; a
module is listed once per trie path that reaches it, which is what
``modprobe -R``, loading by alias and ``--show-depends`` of an alias all see.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from kmodemu.kmod import fnmatch as fn
from kmodemu.kmod.index import Index, IndexBuilder
from kmodemu.kmod.names import alias_normalize

from .harness import run_tool

DATA = json.loads((Path(__file__).parent / "data" / "alias_lookup_kmod30.json").read_text())


def _builder(lines: list[str]) -> IndexBuilder:
    b = IndexBuilder()
    for prio, line in enumerate(lines):
        _, key, mod = line.split()
        norm = alias_normalize(key)  # depmod's output_aliases_bin writes keys normalized
        assert norm is not None
        b.insert(norm, mod, prio)
    return b


@pytest.fixture(scope="module")
def index() -> Index:
    return Index(_builder(DATA["aliases"]).to_bytes())


def test_index_mm_searchwild_matches_kmod30(index):
    for query, expected in DATA["resolved"].items():
        norm = alias_normalize(query)  # as kmod_module_new_from_lookup does before the walk
        assert norm is not None
        assert [v for _, v in index.search_wild(norm)] == expected, query


def test_searchwild_reports_a_pattern_once_or_twice_as_kmod_does(index):
    # a pattern key looked up by its own text: once when the walk meets it on one path...
    assert [v for _, v in index.search_wild("block_major_1_*")] == ["brd"]
    # ...twice when the '*' of the query sits on a '*' child and the walk takes both branches
    assert [v for _, v in index.search_wild("acpi*:ACPI0001:*")] == ["sbshc", "sbshc"]
    assert [v for _, v in index.search_wild("acpi0:ACPI0001:0")] == ["sbshc"]


def test_modprobe_resolve_alias_prints_each_path_once(tmp_path):
    moddir = tmp_path / "lib" / "modules" / "T"
    moddir.mkdir(parents=True)
    (moddir / "modules.alias.bin").write_bytes(_builder(DATA["aliases"]).to_bytes())
    (moddir / "modules.dep.bin").write_bytes(IndexBuilder().to_bytes())
    empty = tmp_path / "conf"
    empty.mkdir()
    for query in ("block-major-1-*", "block-major-128-*", "scsi:t-0x05", "acpi*:ACPI0007:*"):
        rc, out, err = run_tool(["modprobe", "-d", str(tmp_path), "-S", "T", "-C", str(empty),
                                 "-R", query], root=tmp_path)
        assert (rc, err) == (0, "")
        assert out.split() == DATA["resolved"][query], query


_KEY = st.text(alphabet="ab*?-", min_size=1, max_size=6)


@given(st.dictionaries(_KEY, st.sampled_from(["m1", "m2", "m3"]), min_size=1, max_size=12),
       st.text(alphabet="ab-", max_size=6))
def test_searchwild_finds_exactly_the_matching_keys_for_plain_queries(entries, query):
    """A query without wildcards meets each matching key on exactly one path."""
    b = IndexBuilder()
    for prio, (key, mod) in enumerate(sorted(entries.items())):
        b.insert(key, mod, prio)
    got = sorted(v for _, v in Index(b.to_bytes()).search_wild(query))
    want = sorted(mod for key, mod in entries.items() if key == query or fn.fnmatch(key, query))
    assert got == want


def test_show_depends_of_an_alias_repeats_as_kmod_module_new_from_lookup_lists(tmp_path):
    """modprobe.c insmod() probes every entry of kmod_module_new_from_lookup's list.

    kmod 30 on this tree prints the insmod line twice for the pattern query
    (two trie paths reach sbshc) and once for a concrete modalias.
    """
    moddir = tmp_path / "lib" / "modules" / "T"
    (moddir / "kernel").mkdir(parents=True)
    (moddir / "kernel" / "sbshc.ko").write_bytes(b"")
    (moddir / "modules.alias.bin").write_bytes(_builder(DATA["aliases"]).to_bytes())
    dep = IndexBuilder()
    dep.insert("sbshc", "kernel/sbshc.ko:", 0)
    (moddir / "modules.dep.bin").write_bytes(dep.to_bytes())
    empty = tmp_path / "conf"
    empty.mkdir()
    line = f"insmod {moddir}/kernel/sbshc.ko \n"
    for query, times in (("acpi*:ACPI0001:*", 2), ("acpi0:ACPI0001:0", 1)):
        rc, out, err = run_tool(["modprobe", "-d", str(tmp_path), "-S", "T", "-C", str(empty),
                                 "-D", query], root=tmp_path)
        assert (rc, out, err) == (0, line * times, ""), query
