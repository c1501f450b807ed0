"""The import graph of kmodemu/ and plugins/ has no cycles and never points up a layer.

The graph is built from the source's AST, not by importing it: every
``import``/``from ... import`` at module level, inside functions and methods,
under ``try``, plus ``importlib.import_module("...")`` with a constant name.
Imports under ``if TYPE_CHECKING:`` are left out: they never execute (every
file uses ``from __future__ import annotations``), so they name a type without
depending on the code; the Kernel object handed down to mm and the loader is
annotated that way. docs/concepts.md ("Layers") has the table this checks.

Run as a script (``python tests/test_layers.py``) to print the edges that break
a rule, or ``--edges`` for the whole graph.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("kmodemu", "plugins")

# Bottom to top. A module belongs to the layer of its longest matching prefix
# (the bare root "kmodemu" names only kmodemu/__init__.py, so a new top-level
# module has no layer until it is given one); it may import its own layer and
# any layer below, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("kmodemu", "kmodemu.errors", "kmodemu.hookspecs", "kmodemu.trust")),
    ("kernel", ("kmodemu.kernel",)),
    ("modules", ("kmodemu.modules",)),
    ("mm", ("kmodemu.mm",)),
    # The Kernel object assembles the layers below it (the loader, then mm at
    # boot), as start_kernel calls into kernel/module.c and mm_init; below it
    # they see the Kernel only as a TYPE_CHECKING annotation.
    ("vmlinux", ("kmodemu.kernel.kernel",)),
    ("tmem", ("kmodemu.tmem",)),
    # The emulated hypervisor and a guest kernel's Xen platform (kmodemu/xen): the Xen
    # tmem shim, a backend, makes its hypercalls into it; machines and the console build on it.
    ("xen", ("kmodemu.xen",)),
    ("backends", ("plugins",)),
    ("tools", ("kmodemu.kmod", "kmodemu.hints")),
    ("workloads", ("kmodemu.workloads",)),
    ("console", ("kmodemu.console",)),
    ("machine", ("kmodemu.machine",)),
    ("scenario", ("kmodemu.scenario",)),
    ("report", ("kmodemu.report",)),
    ("demo", ("kmodemu.demo", "kmodemu.demo_nodes")),
    ("cli", ("kmodemu.cli", "kmodemu.completion", "kmodemu.shell", "kmodemu.pytest_plugin",
             "kmodemu.__main__")),
]

# Upward edges allowed for now, each with why. Nothing else is excepted, and an
# entry whose edge is gone fails the test, so the list only shrinks.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


# ---------------------------------------------------------------- the graph

def module_files(repo: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the roots."""
    out = {}
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            parts = list(path.relative_to(repo).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str, files: dict[str, Path]) -> str | None:
    """The module of ours that importing ``name`` runs (its longest module prefix)."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, files: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of ours, line) of every run-time import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.body:  # the else branch runs
                skip.update(id(n) for n in ast.walk(stmt))
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import name`` imports the module pkg.name when there is one, else pkg
            names += [(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base, node.lineno)
                      for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.append((node.args[0].value, node.lineno))
    out = []
    for name, line in names:
        target = _resolve(name, files)
        if target is not None and target != module:
            out.append((target, line))
    return out


def import_graph(repo: Path = REPO) -> dict[str, dict[str, int]]:
    """module -> {imported module of ours: first line importing it}."""
    files = module_files(repo)
    graph: dict[str, dict[str, int]] = {m: {} for m in files}
    for module, path in files.items():
        for target, line in sorted(_imports(module, path, files), key=lambda e: e[1]):
            graph[module].setdefault(target, line)
    return graph


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            prefix = module.startswith(p + ".") and p != "kmodemu"
            if (module == p or prefix) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def upward(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every edge to a higher layer."""
    return [(a, b, line) for a in sorted(graph) for b, line in sorted(graph[a].items())
            if layer_of(b) > layer_of(a)]


def _where(graph: dict[str, dict[str, int]], a: str, b: str) -> str:
    path = module_files()[a].relative_to(REPO)
    return f"{path}:{graph[a][b]}: {a} -> {b}"


# ---------------------------------------------------------------- the rules

GRAPH = import_graph()


def test_every_module_has_a_layer():
    homeless = [m for m in GRAPH if layer_of(m) < 0]
    assert homeless == [], ("give these a layer in LAYERS (tests/test_layers.py) and in the table of "
                            "docs/concepts.md: " + ", ".join(homeless))


def test_no_import_cycles():
    found = cycles(GRAPH)
    detail = [" ".join(c) + "\n  " + "\n  ".join(_where(GRAPH, a, b) for a in c for b in GRAPH[a]
                                                   if b in c) for c in found]
    assert found == [], "import cycles:\n" + "\n".join(detail)


def test_no_upward_imports():
    bad = [(a, b, line) for a, b, line in upward(GRAPH) if (a, b) not in KNOWN_UPWARD]
    assert bad == [], "imports up a layer:\n" + "\n".join(
        f"{_where(GRAPH, a, b)} ({LAYERS[layer_of(a)][0]} -> {LAYERS[layer_of(b)][0]})"
        for a, b, _ in bad)


def test_known_exceptions_still_exist():
    """An exception whose edge has gone is deleted, so it cannot hide a new one."""
    edges = {(a, b) for a, b, _ in upward(GRAPH)}
    assert [k for k in KNOWN_UPWARD if k not in edges] == []


# ------------------------------------------------- the checker checks itself

def _graph_of(tmp_path: Path, files: dict[str, str]) -> dict[str, dict[str, int]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for root in ROOTS:
        (tmp_path / root).mkdir(exist_ok=True)
    return import_graph(tmp_path)


def test_graph_sees_every_kind_of_import(tmp_path):
    g = _graph_of(tmp_path, {
        "kmodemu/__init__.py": "",
        "kmodemu/errors.py": "",
        "kmodemu/kernel/__init__.py": "",
        "kmodemu/kernel/params.py": "from kmodemu.kernel import cmdline\n",
        "kmodemu/kernel/cmdline.py": "def f():\n    from kmodemu.kernel.params import x\n",
        "kmodemu/mm/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from kmodemu.console import c\nelse:\n    import kmodemu.errors\n",
        "kmodemu/console/__init__.py": "try:\n    from .. import mm\nexcept ImportError:\n    pass\n"
                                       "import importlib\nimportlib.import_module('kmodemu.cli')\n",
        "kmodemu/cli.py": "from kmodemu.kernel.params import parse_args\n",
    })
    assert g["kmodemu.kernel.params"] == {"kmodemu.kernel.cmdline": 1}
    assert g["kmodemu.kernel.cmdline"] == {"kmodemu.kernel.params": 2}       # function-local
    assert g["kmodemu.mm"] == {"kmodemu.errors": 5}                          # TYPE_CHECKING left out
    assert g["kmodemu.console"] == {"kmodemu.mm": 2, "kmodemu.cli": 6}       # relative, try, importlib
    assert g["kmodemu.cli"] == {"kmodemu.kernel.params": 1}
    assert cycles(g) == [["kmodemu.kernel.cmdline", "kmodemu.kernel.params"]]
    assert ("kmodemu.console", "kmodemu.cli", 6) in upward(g)
    assert ("kmodemu.cli", "kmodemu.kernel.params", 1) not in upward(g)


def test_layer_of_takes_the_longest_prefix():
    assert LAYERS[layer_of("kmodemu.kernel.kernel")][0] == "vmlinux"
    assert LAYERS[layer_of("kmodemu.kernel.params")][0] == "kernel"
    assert layer_of("kmodemu.kernelx") == -1       # a prefix is a whole dotted part
    assert layer_of("kmodemu.newmodule") == -1     # the root is no prefix: place new modules
    assert LAYERS[layer_of("plugins.zcache.zbud")][0] == "backends"
    assert layer_of("elsewhere") == -1


def test_concepts_md_has_the_same_table():
    """docs/concepts.md lists every layer, bottom to top, with its packages."""
    text = (REPO / "docs" / "concepts.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:4] for line in section.splitlines() if line.startswith("| ")][1:]
    table = [(layer.strip(), packages) for layer, packages, _ in rows]
    assert [name for name, _ in table] == [name for name, _ in reversed(LAYERS)]
    for (name, packages), (_, prefixes) in zip(table, reversed(LAYERS)):
        for p in prefixes:
            if p != "kmodemu":
                assert f"`{p}`" in packages, (name, p)


if __name__ == "__main__":  # pragma: no cover
    if "--edges" in sys.argv:
        for a in sorted(GRAPH):
            for b in sorted(GRAPH[a]):
                print(_where(GRAPH, a, b))
    for c in cycles(GRAPH):
        print("cycle:", " ".join(c))
    for a, b, _ in upward(GRAPH):
        print("up:", _where(GRAPH, a, b), "(known)" if (a, b) in KNOWN_UPWARD else "")
    pytest.main([__file__, "-q"])
