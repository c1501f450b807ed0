"""RAM as a finite pool of numbered 4 KiB frames, shared by every user of memory.

The kernel's own share, the page cache, anonymous memory and tmem backend
storage all draw from one free list, so a backend that stores pages takes
frames the page cache no longer has — as zbud pages do in Linux.
"""

from __future__ import annotations

import math
from typing import Any

from kmodemu.mm.page import PAGE_SHIFT

KINDS = ("kernel", "file", "anon", "tmem")
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


def min_free_pages(total_pages: int) -> int:
    """``min_free_kbytes`` as ``init_per_zone_wmark_min`` sizes it: sqrt(lowmem_kB * 16), clamped."""
    kbytes = int(math.isqrt((total_pages << (PAGE_SHIFT - 10)) * 16))
    kbytes = max(128, min(kbytes, 65536))
    return kbytes >> (PAGE_SHIFT - 10)


class Frames:
    """Free frames plus per-kind use counts; watermarks as ``__setup_per_zone_wmarks`` sets them.

    ``alloc()``/``free(pfn)`` is the backend API (``kernel.mm.frames``): an
    allocation that would take the pool below the min watermark fails at once
    with ``None`` and never enters reclaim, like zcache's no-retry GFP mask.

    Host memory is in proportion to the frames *used*, not to the RAM declared
    (``mem=1T`` costs nothing until pages are touched): frames never handed out
    are a counter (``_next``), freed ones a stack, and the kind of a frame in use
    lives in a dict. The order is that of one descending free list popped from
    its end: lowest never-used pfn first, then the last freed.

    ``fault`` (optional) is consulted on every backend ``alloc()``: a
    fail_page_alloc-style injector (``kmodemu.kernel.fault_inject``).
    """

    __slots__ = ("total", "wmark_min", "wmark_low", "wmark_high", "_freed", "_next", "used",
                 "failed_allocs", "_kinds", "fault")

    def __init__(self, total: int, reserved: int):
        self.total = total
        self.wmark_min = min_free_pages(total)
        self.wmark_low = self.wmark_min + self.wmark_min // 4
        self.wmark_high = self.wmark_min + self.wmark_min // 2
        self._freed: list[int] = []
        self._next = reserved
        self.used = {k: 0 for k in KINDS}
        self.used["kernel"] = reserved
        self._kinds: dict[int, int] = {}  # kind index per pfn handed out (reserved ones are kernel)
        self.failed_allocs = 0
        self.fault: Any = None

    @property
    def nr_free(self) -> int:
        return len(self._freed) + (self.total - self._next)

    def _pop(self) -> int | None:
        if self._freed:
            return self._freed.pop()
        if self._next < self.total:
            self._next += 1
            return self._next - 1
        return None

    def take(self, kind: str) -> int | None:
        """Any frame, for the memory model's own users (the caller reclaimed first)."""
        pfn = self._pop()
        if pfn is None:
            return None
        self.used[kind] += 1
        self._kinds[pfn] = _KIND_INDEX[kind]
        return pfn

    def release(self, pfn: int) -> None:
        k = self._kinds.pop(pfn, None)
        if k is None:
            raise ValueError(f"pfn {pfn} freed twice")
        self.used[KINDS[k]] -= 1
        self._freed.append(pfn)

    # -- backend API ------------------------------------------------------------------
    def injected_failure(self) -> bool:
        """fail_page_alloc fires for this allocation (then counted as a failed one)."""
        if self.fault is not None and self.fault.should_fail(1):
            self.failed_allocs += 1
            return True
        return False

    def alloc(self) -> int | None:
        """A frame for tmem storage, or None below the min watermark (no reclaim, no retry)."""
        # nr_free, injected_failure() and _pop inlined: this is every zbud/zsmalloc
        # frame's path (benchmarks/ir_hotpath.py)
        freed = self._freed
        nxt = self._next
        fault = self.fault
        if (len(freed) + (self.total - nxt) <= self.wmark_min
                or (fault is not None and fault.probability and fault.should_fail(1))):
            self.failed_allocs += 1
            return None
        if freed:
            pfn = freed.pop()
        else:  # above the watermark, so a never-used frame is left
            pfn = nxt
            self._next = nxt + 1
        self.used["tmem"] += 1
        self._kinds[pfn] = 3
        return pfn

    def free(self, pfn: int) -> None:
        """Give a backend frame back."""
        # release() inlined
        kinds = self._kinds
        if kinds.get(pfn) != 3:
            raise ValueError(f"pfn {pfn} is not a tmem frame")
        del kinds[pfn]
        self.used["tmem"] -= 1
        self._freed.append(pfn)
