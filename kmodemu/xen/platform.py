"""What a Linux kernel running as a Xen domain has that bare metal lacks (arch/x86/xen).

``attach(kernel, hv, dom)`` runs before the kernel boots: it exports as
vmlinux symbols what drivers/xen code reaches — ``xen_domain`` and
``xen_initial_domain`` (``include/xen/xen.h``), the tmem hypercall
``HYPERVISOR_tmem_op`` (one ``struct tmem_op`` in, the return value out), and
the balloon driver's ``balloon_set_new_target``/``balloon_stats`` — hands the
kernel's ``fail_hypervisor`` fault point to its domain (tmem's allocations for
the domain's puts consult it: docs/reliability.md), and starts
the balloon driver (``drivers/xen/balloon.c`` + ``xen-balloon.c``; its sysfs
files exist from boot, it touches memory on its first target). A module
finds out it runs on Xen the way Linux code does: by asking ``xen_domain``.
A kernel without ``attach`` has none of these symbols: the tmem shim's
``requires`` then fail to resolve on bare metal, which the shim turns into
Linux's -ENODEV before it gets that far (see plugins/xen_tmem).
"""

from __future__ import annotations

import functools
from typing import Any

from .balloon import Balloon
from .domain import Domain
from .hypervisor import Hypervisor
from .selfballoon import SelfBalloon

#: the symbols a Xen guest kernel exports beyond a bare-metal one
XEN_SYMBOLS = ("xen_domain", "xen_initial_domain", "HYPERVISOR_tmem_op",
               "balloon_set_new_target", "balloon_stats", "xen_selfballoon_init")


class XenPlatform:
    """One domain's view of its hypervisor, hung on the kernel as ``kernel.xen``."""

    __slots__ = ("hv", "dom", "balloon", "selfballoon")

    def __init__(self, hv: Hypervisor, dom: Domain):
        self.hv = hv
        self.dom = dom
        self.balloon: Balloon | None = None
        self.selfballoon: SelfBalloon | None = None


def attach(kernel: Any, hv: Hypervisor, dom: Domain) -> XenPlatform:
    """Make ``kernel`` (not booted yet) a guest of ``hv`` running as ``dom``."""
    plat = XenPlatform(hv, dom)
    kernel.xen = plat
    dom.kernel = kernel
    exports = kernel.modules.export_core
    exports("xen_domain", lambda: True)
    exports("xen_initial_domain", lambda: dom.domid == 0)
    # the hypercall as one C-level partial: the per-page path pays no extra Python frame
    exports("HYPERVISOR_tmem_op", functools.partial(hv.tmem.do_tmem_op, dom))
    # fail_hypervisor (the kernel's /sys/kernel/debug/fail_hypervisor): the hypervisor
    # running out of memory for this domain's tmem puts; tmem consults it per allocation
    dom.fail_hypervisor = kernel.faults.points["fail_hypervisor"].should_fail

    balloon = Balloon(kernel, hv, dom)
    plat.balloon = balloon
    exports("balloon_set_new_target", balloon.set_new_target)
    exports("balloon_stats", balloon.stats)
    sb = SelfBalloon(kernel, balloon, dom0=dom.domid == 0)
    plat.selfballoon = sb
    exports("xen_selfballoon_init", sb.init)
    return plat
