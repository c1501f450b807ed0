"""zcache's tests import the installed plugin package, found through its entry point.

The same loader the kernel uses (``kmodemu.modules.discovery``): a package
that fails to import fails these tests, never a stand-in.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kmodemu.modules.discovery import plugin_package

PKG = plugin_package("zcache").__name__
sys.path.insert(0, str(Path(__file__).resolve().parent))


def zmod(name: str) -> ModuleType:
    """A submodule of the plugin package, e.g. ``zmod("main")``."""
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
