"""Anonymous memory: processes whose pages live in RAM or in swap.

A process allocates and touches pages with real contents; reclaim swaps
them out (``swap_out``: frontswap store, else the device) and a touch faults
them back (``swap_in``: frontswap load, else the device; then the slot is
freed). Every page knows what it should contain, so a fault-in can check the
bytes it got back.

New anonymous pages start on the active list, as
``lru_cache_add_active_or_unevictable`` puts them; reclaim deactivates the
oldest while the inactive list is smaller, and a page touched since it was
deactivated is activated again instead of swapped.
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from kmodemu.errors import KernelError
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import Page

if TYPE_CHECKING:
    import hashlib
  # pragma: no cover
    from kmodemu.mm.memory import MemoryManager
    from kmodemu.mm.swap import SwapDevice


class AnonPage:
    """One page of a process: resident (``pfn`` ≥ 0) or swapped (``swap`` set)."""

    __slots__ = ("proc", "vpn", "data", "pfn", "swap", "offset", "active", "referenced")

    def __init__(self, proc: "Process", vpn: int, data: bytes, pfn: int):
        self.proc = proc
        self.vpn = vpn
        self.data: bytes | None = data
        self.pfn = pfn
        self.swap: "SwapDevice | None" = None
        self.offset = 0
        self.active = True
        self.referenced = False


@dataclass
class Process:
    """A process and its anonymous region."""

    name: str
    content: Content
    pages: list[AnonPage] = field(default_factory=list)

    def resident(self) -> int:
        return sum(1 for p in self.pages if p.pfn >= 0)

    def swapped(self) -> int:
        return sum(1 for p in self.pages if p.swap is not None)


@dataclass
class TouchStats:
    """What touching a process's memory did."""

    pages: int = 0
    resident: int = 0
    from_frontswap: int = 0
    from_disk: int = 0
    corrupt: int = 0


class Anon:
    """Processes and the anonymous LRU lists of one kernel."""

    def __init__(self, mm: "MemoryManager"):
        self.mm = mm
        self.processes: dict[str, Process] = {}
        self.active: OrderedDict[AnonPage, None] = OrderedDict()
        self.inactive: OrderedDict[AnonPage, None] = OrderedDict()
        self.swapped_out = 0
        self.swapped_in = 0
        self.corrupt_pages = 0

    @property
    def nr_resident(self) -> int:
        return len(self.active) + len(self.inactive)

    # -- processes ------------------------------------------------------------------
    def alloc(self, name: str, npages: int, content: Content) -> Process:
        """Start a process that allocates and writes ``npages`` pages."""
        if name in self.processes:
            raise KernelError(errno.EEXIST)
        proc = Process(name, content)
        self.processes[name] = proc
        try:
            for vpn in range(npages):
                pfn = self.mm.alloc_frame("anon")
                ap = AnonPage(proc, vpn, content.page(vpn), pfn)
                proc.pages.append(ap)
                self.active[ap] = None
        except KernelError:
            self.kill(name)
            raise
        self.mm.kernel.clock.advance_us(1 + npages // 16)
        return proc

    def kill(self, name: str) -> None:
        """Exit: frames freed, swap slots freed (each one a frontswap invalidate)."""
        proc = self.processes.pop(name, None)
        if proc is None:
            raise KernelError(errno.ESRCH)
        swap = self.mm.swap
        for ap in proc.pages:
            if ap.pfn >= 0:
                (self.active if ap.active else self.inactive).pop(ap, None)
                self.mm.free_frame(ap.pfn)
                ap.pfn = -1
            elif ap.swap is not None:
                swap.swap_free(ap.swap, ap.offset)
                ap.swap = None
        proc.pages.clear()

    def touch(self, name: str, vpns: Iterable[int] | None = None,
              digest: "hashlib._Hash | None" = None) -> TouchStats:
        """Access every page, or those of ``vpns`` in that order (a workload's touch pattern).

        Resident pages are referenced, swapped ones fault in. ``digest`` is fed
        each page's bytes as the access sees them (after a fault, what came
        back from swap), so a caller can prove the memory survived.
        """
        proc = self.processes.get(name)
        if proc is None:
            raise KernelError(errno.ESRCH)
        st = TouchStats()
        pages = proc.pages
        for ap in pages if vpns is None else map(pages.__getitem__, vpns):
            st.pages += 1
            if ap.pfn >= 0:
                st.resident += 1
                ap.referenced = True
                if digest is not None:
                    digest.update(ap.data or b"")
                continue
            how = self.swap_in(ap)
            if how == "frontswap":
                st.from_frontswap += 1
            else:
                st.from_disk += 1
            if ap.data != proc.content.page(ap.vpn):
                st.corrupt += 1
            if digest is not None:
                digest.update(ap.data or b"")
        self.corrupt_pages += st.corrupt
        self.mm.kernel.clock.advance_us(1 + st.from_disk * 100 + st.from_frontswap * 2)
        return st

    # -- swap out / in --------------------------------------------------------------
    def swap_out(self, ap: AnonPage) -> bool:
        """``add_to_swap`` + ``swap_writepage``; False when no swap slot is free."""
        swap = self.mm.swap
        slot = swap.get_swap_page()
        if slot is None:
            return False
        sis, offset = slot
        data = ap.data
        if data is None:  # only resident pages are on the LRU lists reclaim scans
            raise RuntimeError(f"anon page {ap.vpn} of {ap.proc.name} is resident without data")
        if self.mm.frontswap.store(sis.type, offset, Page(data)) != 0:
            swap.write_slot(sis, offset, data)
        sis.owners[offset] = ap
        (self.active if ap.active else self.inactive).pop(ap, None)
        self.mm.free_frame(ap.pfn)
        ap.pfn = -1
        ap.data = None
        ap.swap = sis
        ap.offset = offset
        self.swapped_out += 1
        return True

    def swap_in(self, ap: AnonPage) -> str:
        """Fault a swapped page in; free its slot. Returns "frontswap" or "disk"."""
        mm = self.mm
        pfn = mm.alloc_frame("anon")
        sis, offset = ap.swap, ap.offset
        assert sis is not None
        page = Page()
        if mm.frontswap.load(sis.type, offset, page) == 0:
            data, how = page.data, "frontswap"
            mm.swap.frontswap_loads += 1
        else:
            data, how = mm.swap.read_slot(sis, offset), "disk"
        ap.data = data
        ap.pfn = pfn
        ap.swap = None
        ap.active = True
        ap.referenced = False
        self.active[ap] = None
        mm.swap.swap_free(sis, offset)
        self.swapped_in += 1
        return how

    # -- reclaim --------------------------------------------------------------------
    def balance(self) -> None:
        """Deactivate the oldest active pages while the inactive list is smaller."""
        active, inactive = self.active, self.inactive
        while len(active) > len(inactive):
            ap = next(iter(active))
            del active[ap]
            ap.active = False
            ap.referenced = False
            inactive[ap] = None

    def scan_inactive(self, nr: int) -> int:
        """Swap out up to ``nr`` inactive pages; referenced ones are activated instead."""
        out = 0
        scanned = 0
        inactive = self.inactive
        limit = len(inactive)
        while out < nr and inactive and scanned < limit:
            ap = next(iter(inactive))
            scanned += 1
            if ap.referenced:
                del inactive[ap]
                ap.active = True
                ap.referenced = False
                self.active[ap] = None
                continue
            if not self.swap_out(ap):
                break
            out += 1
        return out
