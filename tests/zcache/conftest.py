"""Load plugins/zcache as ``kmodemu_plugins.zcache``, the name the kernel imports it by.

The plugin's modules import each other relatively, so the package must exist
under that name before ``host``/``tmem``... are imported.  Works whether or not
plugins/zcache/__init__.py exists yet.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest

PKG = "kmodemu_plugins.zcache"
PKG_DIR = Path(__file__).resolve().parents[2] / "plugins" / "zcache"


def _load_package() -> None:
    if PKG in sys.modules:
        return
    if "kmodemu_plugins" not in sys.modules:
        parent = types.ModuleType("kmodemu_plugins")
        parent.__path__ = []  # namespace-like: children are registered by hand
        sys.modules["kmodemu_plugins"] = parent
    init = PKG_DIR / "__init__.py"
    if init.exists():
        spec = importlib.util.spec_from_file_location(
            PKG, init, submodule_search_locations=[str(PKG_DIR)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[PKG] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception:
            # the glue may need the kernel; the storage layer does not
            mod = types.ModuleType(PKG)
            mod.__path__ = [str(PKG_DIR)]
            sys.modules[PKG] = mod
    else:
        mod = types.ModuleType(PKG)
        mod.__path__ = [str(PKG_DIR)]
        sys.modules[PKG] = mod


_load_package()
sys.path.insert(0, str(Path(__file__).resolve().parent))


def zmod(name: str):
    """A submodule of the plugin package, e.g. ``zmod("host")``."""
    return importlib.import_module(f"{PKG}.{name}")


class BoundedFrames:
    """A RAM model with ``limit`` frames: alloc() returns None when they are all used."""

    def __init__(self, limit: int, first_pfn: int = 0x1000):
        self.limit = limit
        self.free_pfns: list[int] = []
        self.next_pfn = first_pfn
        self.used: set[int] = set()
        self.allocs = 0
        self.frees = 0

    def alloc(self):
        if len(self.used) >= self.limit:
            return None
        if self.free_pfns:
            pfn = self.free_pfns.pop()
        else:
            pfn = self.next_pfn
            self.next_pfn += 1
        self.used.add(pfn)
        self.allocs += 1
        return pfn

    def free(self, pfn: int) -> None:
        assert pfn in self.used, f"free of unallocated pfn {pfn:#x}"
        self.used.remove(pfn)
        self.free_pfns.append(pfn)
        self.frees += 1

    @property
    def in_use(self) -> int:
        return len(self.used)


@pytest.fixture
def frames():
    return BoundedFrames(1 << 20)
