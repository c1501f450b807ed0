"""The Xen balloon driver (``drivers/xen/balloon.c``, ``xen-balloon.c``, Linux 3.10).

A target (``target_kb`` in sysfs, or ``balloon_set_new_target`` from
self-ballooning) moves the guest's RAM toward it: shrinking takes free frames
from the guest's allocator (reclaiming first, as ``alloc_page(GFP_BALLOON)``
would) and hands them to the hypervisor (``XENMEM_decrease_reservation``);
growing asks the hypervisor for frames back (``XENMEM_populate_physmap``) and
frees the ballooned frames into the guest. Without memory hotplug a guest can
only grow back to the RAM it booted with, as in Linux.

Where we differ: Linux runs ``balloon_process`` from a workqueue, retrying
with a back-off; we run it at once, to the point it can reach now, and keep
the target so a later target or a tick resumes. See docs/xen.md.
"""

from __future__ import annotations

from typing import Any

from .abi import PAGE_SHIFT
from .domain import Domain

SYSFS = "/sys/devices/system/xen_memory/xen_memory0"


def strtoull(text: str) -> int:
    """``simple_strtoull(buf, &end, 0)``: the leading number in C's base-0 syntax, 0 if none."""
    s = text.strip()
    base, digits = 10, "0123456789"
    if s[:2].lower() == "0x":
        base, digits, s = 16, "0123456789abcdefABCDEF", s[2:]
    elif s.startswith("0") and len(s) > 1:
        base, digits, s = 8, "01234567", s[1:]
    n = ""
    for ch in s:
        if ch not in digits:
            break
        n += ch
    return int(n, base) if n else 0


class Balloon:
    """``balloon_stats`` and the frames the balloon holds for one guest kernel."""

    def __init__(self, kernel: Any, hv: Any, dom: Domain):
        self.kernel = kernel
        self.hv = hv
        self.dom = dom
        self.pfns: list[int] = []          # frames in the balloon (given back to Xen)
        self.target_pages: int | None = None
        vfs = kernel.vfs
        kb = 1 << (PAGE_SHIFT - 10)
        vfs.add_file(f"{SYSFS}/target_kb", lambda: f"{self.target() * kb}\n",
                     self._write_target_kb, mode=0o644)
        vfs.add_file(f"{SYSFS}/target", lambda: f"{self.target() << PAGE_SHIFT}\n",
                     self._write_target, mode=0o644)
        vfs.add_file(f"{SYSFS}/info/current_kb", lambda: f"{self.current_pages() * kb}\n")
        vfs.add_file(f"{SYSFS}/info/low_kb", lambda: f"{len(self.pfns) * kb}\n")
        vfs.add_file(f"{SYSFS}/info/high_kb", lambda: "0\n")

    # -- balloon_stats -----------------------------------------------------------
    def current_pages(self) -> int:
        frames = self.kernel.mm.frames if self.kernel.mm is not None else None
        total = frames.total if frames is not None else self.dom.ram_pages
        return total - len(self.pfns)

    def target(self) -> int:
        return self.current_pages() if self.target_pages is None else self.target_pages

    def stats(self) -> dict[str, int]:
        """What ``balloon_stats`` holds that self-ballooning reads."""
        return {"current_pages": self.current_pages(), "target_pages": self.target(),
                "balloon_low": len(self.pfns), "balloon_high": 0}

    def totalram_pages(self) -> int:
        """``totalram_pages``: the RAM the guest's allocator manages, minus what is ballooned."""
        frames = self.kernel.mm.frames
        return frames.total - frames.used["kernel"]   # ballooned frames are "kernel" ones

    # -- the driver ------------------------------------------------------------------
    def set_new_target(self, target_pages: int) -> None:
        """``balloon_set_new_target``: remember the target and work toward it."""
        self.target_pages = max(0, int(target_pages))
        self.process()

    def process(self) -> None:
        """``balloon_process``: as far toward the target as memory allows now."""
        if self.kernel.mm is None or self.target_pages is None:
            return
        credit = self.target_pages - self.current_pages()
        if credit > 0:
            self._increase(min(credit, len(self.pfns)))
        elif credit < 0:
            self._decrease(-credit)

    def _increase(self, n: int) -> None:
        if n <= 0:
            return
        got = self.hv.populate_physmap(self.dom, n)
        frames = self.kernel.mm.frames
        for _ in range(max(0, got)):
            frames.release(self.pfns.pop())

    def _decrease(self, n: int) -> None:
        mm = self.kernel.mm
        frames = mm.frames
        short = n - max(0, frames.nr_free - frames.wmark_min)
        if short > 0:
            mm.reclaim(short)
        taken: list[int] = []
        while len(taken) < n and frames.nr_free > frames.wmark_min:
            pfn = frames.take("kernel")
            if pfn is None:
                break
            taken.append(pfn)
        if not taken:
            return
        given = self.hv.decrease_reservation(self.dom, len(taken))
        given = max(0, given)
        for pfn in taken[given:]:
            frames.release(pfn)
        self.pfns.extend(taken[:given])

    # -- sysfs --------------------------------------------------------------------
    def _write_target_kb(self, text: str) -> None:
        self.set_new_target((strtoull(text) * 1024) >> PAGE_SHIFT)

    def _write_target(self, text: str) -> None:
        self.set_new_target(strtoull(text) >> PAGE_SHIFT)
