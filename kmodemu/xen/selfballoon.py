"""Self-ballooning and frontswap self-shrinking (``drivers/xen/xen-selfballoon.c``).

Part of the guest kernel (CONFIG_XEN_SELFBALLOONING=y): the balloon driver
registers the ``selfballoon`` sysfs group at boot, and ``xen_selfballoon_init``
(exported; the tmem shim calls it) starts the worker. Each tick, every
``selfballoon_interval`` seconds of virtual time:

* self-ballooning sets the balloon target toward Committed_AS +
  totalreserve_pages (+ ``selfballoon_reserved_mb``, + the pages in frontswap
  when self-shrinking is on), by 1/downhysteresis of the gap when shrinking
  and 1/uphysteresis when growing, never below the floor (``min_usable_mb``,
  or Linux's piecewise automatic one);
* self-shrinking, once frontswap stopped growing for ``frontswap_inertia``
  ticks, pulls 1/``frontswap_hysteresis`` of the frontswap pages back into
  RAM (``frontswap_shrink``; all of them at or below the hysteresis).

The worker stops when both are off; enabling either through sysfs restarts
it. Committed_AS here is every anonymous page of every process (the memory
model's user mappings); totalreserve_pages is the high watermark. Linux's
``xen_selfballoon_init(bool, bool)`` reads the global ``tmem_enabled``; ours
takes it as a third argument (no globals: many kernels share one process).
"""

from __future__ import annotations

import errno
from typing import Any

from ..errors import KernelError
from ..kernel.printk import KERN_INFO
from .abi import PAGE_SHIFT
from .balloon import SYSFS, Balloon

NSEC_PER_SEC = 1_000_000_000
MB_PAGES = 1 << (20 - PAGE_SHIFT)

#: knob -> default (xen-selfballoon.c); the 3.9 file has no selfballoon_reserved_mb
KNOBS = {"selfballoon_interval": 5, "selfballoon_downhysteresis": 8,
         "selfballoon_uphysteresis": 1, "selfballoon_min_usable_mb": 0,
         "selfballoon_reserved_mb": 0, "frontswap_hysteresis": 20, "frontswap_inertia": 3}


def _kstrtoul(text: str) -> int | None:
    """``kstrtoul(buf, 10, &val)``: a base-10 number with an optional newline, else None."""
    s = text[:-1] if text.endswith("\n") else text
    if s.startswith("+"):
        s = s[1:]
    return int(s) if s.isdigit() and s.isascii() else None


class SelfBalloon:
    """The worker's state and knobs for one guest kernel."""

    def __init__(self, kernel: Any, balloon: Balloon, dom0: bool):
        self.kernel = kernel
        self.balloon = balloon
        self.dom0 = dom0
        self.knobs = dict(KNOBS)
        if not kernel.lazy_init:
            del self.knobs["selfballoon_reserved_mb"]
        self.selfballooning = False
        self.selfshrinking = False
        self.tmem_enabled = False
        self.timer: Any = None
        self.frontswap_inertia_counter = 0
        self.cur_frontswap_pages = 0
        self.last_frontswap_pages = 0
        self.ticks = 0
        base = f"{SYSFS}/selfballoon"
        vfs = kernel.vfs
        vfs.add_file(f"{base}/selfballooning", lambda: f"{int(self.selfballooning)}\n",
                     lambda t: self._write_enable("selfballooning", t), mode=0o644)
        vfs.add_file(f"{base}/frontswap_selfshrinking", lambda: f"{int(self.selfshrinking)}\n",
                     lambda t: self._write_enable("selfshrinking", t), mode=0o644)
        for name in self.knobs:
            vfs.add_file(f"{base}/{name}", lambda n=name: f"{self.knobs[n]}\n",
                         lambda t, n=name: self._write_knob(n, t), mode=0o644)

    # -- xen_selfballoon_init --------------------------------------------------------
    def init(self, use_selfballooning: bool, use_frontswap_selfshrink: bool,
             tmem_enabled: bool) -> int:
        k = self.kernel
        if self.dom0:
            k.printk("xen/balloon: Xen selfballooning driver disabled for domain0.", KERN_INFO)
            return -errno.ENODEV
        self.tmem_enabled = tmem_enabled
        enable = False
        self.selfballooning = tmem_enabled and use_selfballooning
        if self.selfballooning:
            k.printk("xen/balloon: Initializing Xen selfballooning driver.", KERN_INFO)
            enable = True
        self.selfshrinking = tmem_enabled and use_frontswap_selfshrink
        if self.selfshrinking:
            k.printk("xen/balloon: Initializing frontswap selfshrinking driver.", KERN_INFO)
            enable = True
        if not enable:
            return -errno.ENODEV
        self._schedule()
        return 0

    def _schedule(self) -> None:
        clock = self.kernel.clock
        delay = self.knobs["selfballoon_interval"] * NSEC_PER_SEC
        if self.timer is None:
            self.timer = clock.add_timer(self.process, delay, "selfballoon_worker")
        elif not self.timer.pending:
            clock.mod_timer(self.timer, clock.ns + delay)

    # -- the worker --------------------------------------------------------------
    def goal_pages(self) -> int:
        mm = self.kernel.mm
        committed = sum(len(p.pages) for p in mm.anon.processes.values())
        goal = committed + mm.frames.wmark_high
        goal += self.knobs.get("selfballoon_reserved_mb", 0) * MB_PAGES
        if self.selfshrinking:
            goal += self.kernel.frontswap.curr_pages()
        return goal

    def floor_pages(self) -> int:
        mm = self.kernel.mm
        reserve = mm.frames.wmark_high
        min_usable = self.knobs["selfballoon_min_usable_mb"]
        if min_usable:
            return reserve + min_usable * MB_PAGES
        max_pfn = mm.frames.total
        useful = max_pfn - reserve
        if useful < 16 * MB_PAGES:
            return max_pfn
        if useful < 64 * MB_PAGES:
            return reserve + 16 * MB_PAGES + (useful - 16 * MB_PAGES) // 2
        if useful < 512 * MB_PAGES:
            return reserve + 40 * MB_PAGES + (useful - 40 * MB_PAGES) // 8
        return reserve + 99 * MB_PAGES + (useful - 99 * MB_PAGES) // 32

    def process(self) -> None:
        """``selfballoon_process``: one tick."""
        self.ticks += 1
        reset_timer = False
        if self.selfballooning:
            b = self.balloon
            cur = b.totalram_pages()
            goal = self.goal_pages()
            tgt = cur
            if cur > goal:
                tgt = cur - (cur - goal) // self.knobs["selfballoon_downhysteresis"]
            elif cur < goal:
                tgt = cur + (goal - cur) // self.knobs["selfballoon_uphysteresis"]
            tgt = max(tgt, self.floor_pages())
            b.set_new_target(tgt + b.current_pages() - b.totalram_pages())
            reset_timer = True
        if self.selfshrinking:
            self.frontswap_selfshrink()
            reset_timer = True
        self.timer = None
        if reset_timer:
            self._schedule()

    def frontswap_selfshrink(self) -> None:
        fs = self.kernel.frontswap
        self.last_frontswap_pages = self.cur_frontswap_pages
        cur = self.cur_frontswap_pages = fs.curr_pages()
        if not cur or cur > self.last_frontswap_pages:
            self.frontswap_inertia_counter = self.knobs["frontswap_inertia"]
            return
        if self.frontswap_inertia_counter and self.frontswap_inertia_counter - 1:
            self.frontswap_inertia_counter -= 1
            return
        self.frontswap_inertia_counter = 0
        hyst = self.knobs["frontswap_hysteresis"]
        tgt = 0 if cur <= hyst else cur - cur // hyst
        fs.shrink(tgt)

    # -- sysfs writes (CAP_SYS_ADMIN; base 10) --------------------------------------
    def _write_enable(self, which: str, text: str) -> None:
        val = _kstrtoul(text)
        if val is None or val > 1:
            raise KernelError(errno.EINVAL)
        was = getattr(self, which)
        setattr(self, which, bool(val))
        if not was and val:
            self._schedule()

    def _write_knob(self, name: str, text: str) -> None:
        val = _kstrtoul(text)
        if val is None or val == 0:
            raise KernelError(errno.EINVAL)
        self.knobs[name] = val
        if name == "frontswap_inertia":
            self.frontswap_inertia_counter = val
