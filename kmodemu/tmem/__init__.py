"""The tmem backend contract: everything a cleancache/frontswap backend may use, in one place.

A backend (zcache, ramster, xen_tmem, or a third party's) imports from here
only. What it gets:

- the ops it implements: :class:`CleancacheOps` (``struct cleancache_ops``)
  and :class:`FrontswapOps` (``struct frontswap_ops``), and the :class:`Page`
  the frontends hand it (``page.data`` is 4096 bytes);
- what it declares: :class:`ModuleDecl`, :class:`BootParam` (``__setup``),
  :class:`ParamSpec` (``module_param``) and the ``hookimpl`` marker of the
  ``kmodemu_modules`` hook its package implements;
- what a kernel call may return instead of a value: :class:`KernelError`
  (an errno, Linux's ``ERR_PTR``), e.g. from ``frontswap_register_ops``;
- what its init is given: a :class:`ModuleContext`, whose methods are the
  kernel services (registration through the exported frontend symbols,
  lazy-init capability, RAM frames, shrinkers, printk, timers and delayed
  work on the virtual clock, request_module, symbol export/lookup,
  debugfs/sysfs files). A backend touches the kernel through nothing else.

``CONTRACT_VERSION`` is (major, minor): a major bump removes or changes
something a backend may rely on; a minor bump only adds. A backend may check
``CONTRACT_VERSION[0]`` at import time. docs/modules.md documents the
contract and has a tested tutorial.
"""

from __future__ import annotations

from kmodemu.errors import KernelError
from kmodemu.hookspecs import hookimpl
from kmodemu.kernel.clock import NSEC_PER_MSEC, NSEC_PER_SEC, Timer
from kmodemu.kernel.params import ParamSpec
from kmodemu.kernel.printk import (
    KERN_ALERT,
    KERN_CRIT,
    KERN_DEBUG,
    KERN_EMERG,
    KERN_ERR,
    KERN_INFO,
    KERN_NOTICE,
    KERN_WARNING,
)
from kmodemu.mm.cleancache import CleancacheOps
from kmodemu.mm.frontswap import FrontswapOps
from kmodemu.mm.page import PAGE_SHIFT, PAGE_SIZE, Page
from kmodemu.modules.context import DelayedWork, ModuleContext
from kmodemu.modules.declaration import BootParam, ModuleDecl

#: (major, minor) of this contract; see the module docstring (1.1 added KernelError)
CONTRACT_VERSION = (1, 1)

__all__ = [
    "CONTRACT_VERSION", "BootParam", "CleancacheOps", "DelayedWork", "FrontswapOps", "KernelError",
    "KERN_ALERT", "KERN_CRIT", "KERN_DEBUG", "KERN_EMERG", "KERN_ERR", "KERN_INFO",
    "KERN_NOTICE", "KERN_WARNING", "ModuleContext", "ModuleDecl", "NSEC_PER_MSEC",
    "NSEC_PER_SEC", "PAGE_SHIFT", "PAGE_SIZE", "Page", "ParamSpec", "Timer", "hookimpl",
]
