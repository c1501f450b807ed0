"""Finding modules: the ``kmodemu.modules`` entry points and module directories.

A plugin is a Python package implementing the ``kmodemu_modules`` hook.
Installed packages (zcache ships with kmodemu; a third party's backend
installs the same way) are found through the entry-point group; a directory
(``--module-path``, a test's plugin directory) holds packages imported under
``kmodemu_plugins.<dir name>`` — the name the first-party backends install
under — so the same package found twice is one module object and relative
imports inside it work. This file is the one plugin loader: the registry,
the pytest plugin, the tests and the benchmarks all import plugins through it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator

import pluggy

from kmodemu import hookspecs
from kmodemu.modules.declaration import ModuleDecl

ENTRY_POINT_GROUP = "kmodemu.modules"
PLUGIN_NAMESPACE = "kmodemu_plugins"


def _namespace() -> None:
    """``kmodemu_plugins``: the installed namespace package, or a bare one for directories."""
    if PLUGIN_NAMESPACE in sys.modules:
        return
    try:
        importlib.import_module(PLUGIN_NAMESPACE)
    except ImportError:
        ns = ModuleType(PLUGIN_NAMESPACE)
        ns.__path__ = []  # children are registered by import_plugin_dir
        sys.modules[PLUGIN_NAMESPACE] = ns


def _same_dir(mod: ModuleType, path: Path) -> bool:
    where = getattr(mod, "__file__", None)
    return where is not None and Path(where).resolve().parent == path


def import_plugin_dir(path: Path) -> ModuleType:
    """Import a plugin package directory as ``kmodemu_plugins.<name>``.

    When that name is already taken by a package from another directory (an
    installed zcache, and a checkout's ``plugins/zcache`` on --module-path),
    the directory gets a name of its own, so its declarations can override.
    """
    path = Path(path).resolve()
    _namespace()
    qual = f"{PLUGIN_NAMESPACE}.{path.name}"
    existing = sys.modules.get(qual)
    if existing is None and importlib.util.find_spec(qual) is not None:
        existing = importlib.import_module(qual)  # installed under that name
    if existing is not None:
        if _same_dir(existing, path):
            return existing
        qual = f"{PLUGIN_NAMESPACE}._dir{zlib.crc32(str(path).encode()):08x}_{path.name}"
        if qual in sys.modules:
            return sys.modules[qual]
    spec = importlib.util.spec_from_file_location(qual, path / "__init__.py",
                                                  submodule_search_locations=[str(path)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import plugin package {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[qual] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[qual]
        raise
    return mod


def import_plugin_file(path: Path) -> ModuleType:
    """Import a single-file plugin (a test's ``load_plugin("x.py")``) as ``kmodemu_test_plugins.<stem>``."""
    path = Path(path).resolve()
    qual = f"kmodemu_test_plugins.{path.stem}"
    existing = sys.modules.get(qual)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(qual, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import plugin file {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[qual] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[qual]
        raise
    return mod


def _entry_points() -> Iterator[importlib.metadata.EntryPoint]:
    """The installed plugins' entry points, in name order."""
    yield from sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                      key=lambda ep: ep.name)


def plugin_package(name: str) -> ModuleType:
    """The installed plugin package of entry point ``name`` (``zcache``), imported.

    Raises ``LookupError`` if no such entry point is installed; an import
    error of the package propagates (tests see it, never a stand-in).
    """
    for ep in _entry_points():
        if ep.name == name:
            mod = ep.load()
            if not isinstance(mod, ModuleType):
                raise TypeError(f"entry point {name} is {mod!r}, not a plugin package")
            return mod
    raise LookupError(f"no {ENTRY_POINT_GROUP} entry point named {name!r} is installed")


class ModuleRegistry:
    """Every module declaration the machine knows, by module name.

    Later sources override earlier ones: entry points, then each
    ``--module-path`` directory in order. A plugin that fails to import is
    recorded in ``errors`` (the machine reports it) and the others still load.
    """

    def __init__(self, module_paths: Iterable[Path] = (), *, entry_points: bool = True):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.module_paths = [Path(p) for p in module_paths]
        self._decls: dict[str, ModuleDecl] = {}
        #: plugins that could not be imported or declared something invalid
        self.errors: list[str] = []
        if entry_points:
            self._add_entry_points()
        for d in self.module_paths:
            self.add_directory(d)

    def _add_entry_points(self) -> None:
        for ep in _entry_points():
            try:
                mod = ep.load()
                if not self.pm.is_registered(mod):
                    self.pm.register(mod, name=f"entry-point:{ep.name}")
                self._collect(mod)
            except Exception as e:  # one broken plugin must not take the machine down
                self.errors.append(f"entry point {ep.name} ({ep.value}): {type(e).__name__}: {e}")

    def _collect(self, plugin: object | None = None) -> None:
        if plugin is None:
            results = self.pm.hook.kmodemu_modules()
        else:
            impl = getattr(plugin, "kmodemu_modules", None)
            results = [impl()] if impl else []
        for batch in results:
            for decl in batch or ():
                self.add(decl)

    def add(self, decl: ModuleDecl) -> None:
        if not decl.origin:
            decl.origin = f"plugin:{decl.name}"
        if decl.plugin is None:
            decl.plugin = decl.name
        self._decls[decl.name.replace("-", "_")] = decl

    def add_directory(self, directory: Path) -> None:
        """Import each package in a module directory (or the directory itself if it is one)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"module path {directory} is not a directory")
        candidates = [directory] if (directory / "__init__.py").exists() else sorted(
            p for p in directory.iterdir() if (p / "__init__.py").exists())
        for pkg in candidates:
            try:
                mod = import_plugin_dir(pkg)
                if not self.pm.is_registered(mod):
                    self.pm.register(mod, name=f"{PLUGIN_NAMESPACE}.{pkg.name}")
                self._collect(mod)
            except Exception as e:  # one broken plugin must not take the machine down
                self.errors.append(f"{pkg}: {type(e).__name__}: {e}")

    def get(self, name: str) -> ModuleDecl | None:
        return self._decls.get(name.replace("-", "_"))

    def names(self) -> list[str]:
        return sorted(self._decls)

    def __iter__(self) -> Iterator[ModuleDecl]:
        return iter(self._decls.values())

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None
