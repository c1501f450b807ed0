"""zcache: compressed pages in RAM behind cleancache and frontswap (Linux 3.10 staging zcache2).

The package is the module: ``main.py`` is zcache-main.c (the zcache
instance, its put/get core, the cleancache and frontswap ops and
``zcache_init``), ``tmem.py`` the tmem core, ``zbud.py`` and ``zsmalloc.py``
the allocators, ``zpage.py`` what they share about a stored page,
``compress.py`` the compressors and ``debug.py`` the debugfs counters
(debug.c). It sees the kernel only through ``kmodemu.tmem``, the backend
contract, and is found through the ``kmodemu.modules`` entry point like any
third-party backend.
"""

from __future__ import annotations

from kmodemu.tmem import CONTRACT_VERSION, ModuleDecl, hookimpl

from .main import MODULE

if CONTRACT_VERSION[0] != 1:  # pragma: no cover - a kmodemu this backend was not written for
    raise ImportError(f"zcache needs backend contract 1.x, kmodemu has {CONTRACT_VERSION}")


@hookimpl
def kmodemu_modules() -> list[ModuleDecl]:
    return [MODULE]
