"""Finding modules: entry points, the repository's ``plugins/`` and ``--module-path``.

A plugin is a Python package implementing the ``kmodemu_modules`` hook. Plugin
packages in a directory are imported under ``kmodemu_plugins.<dir name>`` so the
same package found twice is one module object, and relative imports inside it
work.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

import pluggy

from kmodemu import hookspecs
from kmodemu.modules.declaration import ModuleDecl

ENTRY_POINT_GROUP = "kmodemu.modules"
PLUGIN_NAMESPACE = "kmodemu_plugins"
REPO_PLUGINS = Path(__file__).resolve().parent.parent.parent / "plugins"


def import_plugin_dir(path: Path) -> ModuleType:
    """Import a plugin package directory as ``kmodemu_plugins.<name>``."""
    path = Path(path).resolve()
    qual = f"{PLUGIN_NAMESPACE}.{path.name}"
    if qual in sys.modules:
        return sys.modules[qual]
    if PLUGIN_NAMESPACE not in sys.modules:
        ns = ModuleType(PLUGIN_NAMESPACE)
        ns.__path__ = []  # a namespace for plugin packages
        sys.modules[PLUGIN_NAMESPACE] = ns
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


class ModuleRegistry:
    """Every module declaration the machine knows, by module name.

    Later sources override earlier ones: entry points, then the repository's
    plugins, then each ``--module-path`` directory in order.
    """

    def __init__(self, module_paths: Iterable[Path] = (), *, entry_points: bool = True,
                 repo_plugins: bool = True):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.module_paths = [Path(p) for p in module_paths]
        self._decls: dict[str, ModuleDecl] = {}
        #: plugins that could not be imported or declared something invalid
        self.errors: list[str] = []
        if entry_points:
            try:
                self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                self._collect()
            except Exception as e:
                self.errors.append(f"entry point group {ENTRY_POINT_GROUP}: {type(e).__name__}: {e}")
        dirs = ([REPO_PLUGINS] if repo_plugins and REPO_PLUGINS.is_dir() else []) + self.module_paths
        for d in dirs:
            self.add_directory(d)

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

    def __iter__(self):
        return iter(self._decls.values())

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None
