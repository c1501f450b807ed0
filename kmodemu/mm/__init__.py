"""Memory management: RAM frames, page cache, swap, reclaim and the tmem frontends.

``attach(kernel)`` runs during boot, after the command line is parsed and
``mem=`` applied, before built-in initcalls: built-in backends registering at
``late_initcall`` therefore find the frontends (and vmlinux's exported
frontend symbols) in place, as in Linux.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kmodemu.mm import hookspecs
from kmodemu.mm.cleancache import Cleancache
from kmodemu.mm.frontswap import Frontswap
from kmodemu.mm.memory import MemoryManager

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

#: what vmlinux exports of the frontends (EXPORT_SYMBOL in mm/cleancache.c, mm/frontswap.c)
FRONTEND_SYMBOLS = ("cleancache_register_ops", "frontswap_register_ops", "frontswap_writethrough",
                    "frontswap_tmem_exclusive_gets", "frontswap_shrink", "frontswap_curr_pages")


def attach(kernel: "Kernel") -> None:
    """Give ``kernel`` its memory model and tmem frontends.

    Creates ``kernel.mm``, ``kernel.cleancache`` and ``kernel.frontswap``,
    adds the mm event hook specs to ``kernel.pm``, publishes the debugfs
    counter directories ``cleancache/`` and ``frontswap/`` and exports the
    frontend API as core symbols so backends' ``requires`` resolve.
    """
    kernel.pm.add_hookspecs(hookspecs)
    cc = Cleancache(kernel)
    fs = Frontswap(kernel)
    kernel.cleancache = cc
    kernel.frontswap = fs
    kernel.mm = MemoryManager(kernel, cc, fs)
    kernel.mm.frames.fault = kernel.faults.fail_page_alloc
    kernel.debugfs_counters("cleancache", cc.counters)
    kernel.debugfs_counters("frontswap", fs.counters)
    exports = {
        "cleancache_register_ops": lambda ops: kernel.cleancache.register_ops(ops),
        "frontswap_register_ops": lambda ops: kernel.frontswap.register_ops(ops),
        "frontswap_writethrough": fs.writethrough,
        "frontswap_tmem_exclusive_gets": fs.tmem_exclusive_gets,
        "frontswap_shrink": fs.shrink,
        "frontswap_curr_pages": fs.curr_pages,
    }
    for name in FRONTEND_SYMBOLS:
        kernel.modules.export_core(name, exports[name])
    if kernel.profile.unload:  # beyond Linux: the frontends can let a backend go
        kernel.modules.export_core("cleancache_unregister_ops", cc.unregister_ops)
        kernel.modules.export_core("frontswap_unregister_ops", fs.unregister_ops)
