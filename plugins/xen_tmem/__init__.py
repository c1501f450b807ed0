"""tmem: the Xen transcendent memory shim (``drivers/xen/tmem.c``, Linux 3.10), as a package.

``main.py`` is the module: its declaration (boot flags built in, read-only
``disable_*`` parameters as a module) and ``xen_tmem_init``; ``shim.py`` is the
data path, cleancache and frontswap ops as tmem hypercalls. The package sees
the kernel only through ``kmodemu.tmem`` (the backend contract) and the
hypervisor only through the ABI of ``kmodemu.xen.abi``; it ships through the
``kmodemu.modules`` entry point like zcache. docs/xen.md has the whole story.
"""

from __future__ import annotations

from kmodemu.tmem import CONTRACT_VERSION, ModuleDecl, hookimpl

from .main import MODULE

if CONTRACT_VERSION[0] != 1:  # pragma: no cover - a kmodemu this backend was not written for
    raise ImportError(f"xen_tmem needs backend contract 1.x, kmodemu has {CONTRACT_VERSION}")


@hookimpl
def kmodemu_modules() -> list[ModuleDecl]:
    return [MODULE]
