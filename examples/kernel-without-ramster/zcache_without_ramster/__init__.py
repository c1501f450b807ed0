"""zcache as a kernel built with CONFIG_RAMSTER unset ships it (``--module-path`` this directory).

Linux links RAMster into zcache.ko only when the kernel is configured with
CONFIG_RAMSTER; without it zcache has no ``ramster_enabled`` or
``disable_frontswap_selfshrink`` parameter and no ``ramster``/``noselfshrink``
boot word. kmodemu's own zcache is the CONFIG_RAMSTER=y build; a module path
overrides the repository's plugins, so this directory stands for the module
tree of a kernel built without RAMster (docs/ramster.md).
"""

from __future__ import annotations

from kmodemu.tmem import hookimpl
from kmodemu_plugins.zcache.main import MODULE_WITHOUT_RAMSTER


@hookimpl
def kmodemu_modules() -> list:
    return [MODULE_WITHOUT_RAMSTER]
