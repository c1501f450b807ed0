"""Swap devices: swapon/swapoff, slots, and the frontswap calls of the swap path.

A device is prepared with ``mkswap`` (which sets its size), enabled with
``swapon`` (type = lowest free index, default priority -1, -2, … as
``least_priority`` hands them out) and kept in ``swap_list`` order (higher
priority first; a new device goes before older ones of equal priority).

Writing a page out asks ``frontswap_store`` first and writes the device only
if that fails (or reports failure in writethrough mode); reading asks
``frontswap_load`` first. A freed slot calls ``frontswap_invalidate_page``.
``swapoff`` brings every page back (``try_to_unuse``), detaches the map,
then calls ``frontswap_invalidate_area``, which finds no map and does not
reach the backend — the 3.9/3.10 order (kernels from 3.12 detach after).
"""

from __future__ import annotations

import errno
import heapq
from typing import TYPE_CHECKING

from kmodemu.errors import KernelError
from kmodemu.kernel.printk import KERN_ERR, KERN_INFO
from kmodemu.mm.frontswap import MAX_SWAPFILES, new_map
from kmodemu.mm.limits import DEVICE_BYTES
from kmodemu.mm.page import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.anon import AnonPage
    from kmodemu.mm.filesystem import BlockDevice
    from kmodemu.mm.memory import MemoryManager


class SwapDevice:
    """``struct swap_info_struct``: slots, the frontswap map and the device's contents."""

    def __init__(self, blockdev: "BlockDevice", type: int, prio: int, pages: int):
        self.blockdev = blockdev
        self.path = blockdev.path
        self.type = type
        self.prio = prio
        self.max = pages                    # slots including the header at offset 0
        self.pages = pages - 1              # usable slots
        self.inuse_pages = 0
        self.frontswap_map: bytearray | None = None
        self.frontswap_pages = 0
        self.disk: dict[int, bytes] = {}    # what was really written to the device
        self.owners: dict[int, "AnonPage"] = {}
        self.writes = 0
        self.reads = 0
        self._freed: list[int] = []
        self._next_unused = 1
        self.writeok = True

    def alloc_slot(self) -> int | None:
        if self._freed:
            off = heapq.heappop(self._freed)
        elif self._next_unused < self.max:
            off = self._next_unused
            self._next_unused += 1
        else:
            return None
        self.inuse_pages += 1
        return off

    def release_slot(self, offset: int) -> None:
        self.inuse_pages -= 1
        heapq.heappush(self._freed, offset)


class Swap:
    """The swap devices of one kernel (``swap_info`` is shared with frontswap)."""

    def __init__(self, mm: "MemoryManager"):
        self.mm = mm
        self.swap_info: list[SwapDevice | None] = [None] * MAX_SWAPFILES
        self._list: list[int] = []          # swap_list order of active types
        self.least_priority = 0
        self.swap_writes = 0
        self.swap_reads = 0
        self.frontswap_loads = 0
        self.lost_pages = 0
        #: fault injection: the next swapon's frontswap map allocation fails (vzalloc → NULL)
        self.fail_next_map_alloc = False

    # -- queries --------------------------------------------------------------------
    def swap_list(self) -> list[int]:
        """Active swap types in swap_list order."""
        return list(self._list)

    def devices(self) -> list[SwapDevice]:
        return [self._on_list(t) for t in self._list]

    def _on_list(self, type: int) -> SwapDevice:
        """The device of a type on swap_list: swapon fills its slot before listing it, swapoff
        unlists it before emptying the slot, so the slot is never empty here."""
        sis = self.swap_info[type]
        if sis is None:
            raise RuntimeError(f"swap type {type} is listed without a device")
        return sis

    def find(self, path: str) -> SwapDevice | None:
        for sis in self.swap_info:
            if sis is not None and sis.path == path:
                return sis
        return None

    def total_pages(self) -> int:
        return sum(d.pages for d in self.devices())

    def free_pages(self) -> int:
        return sum(d.pages - d.inuse_pages for d in self.devices())

    def enough_memory(self, pages: int) -> bool:
        """``__vm_enough_memory`` in the default (guess) overcommit mode."""
        mm = self.mm
        free = mm.frames.nr_free + mm.pagecache.evictable_pages() + self.free_pages()
        return free - mm.frames.wmark_high > pages

    # -- mkswap / swapon / swapoff ----------------------------------------------------
    def mkswap(self, path: str, pages: int) -> "BlockDevice":
        dev = self.mm.fs.blockdev(path)
        if dev is None:
            raise KernelError(errno.ENOENT)
        if dev.user is not None:
            raise KernelError(errno.EBUSY)
        if pages < 10:
            raise KernelError(errno.EINVAL, "swap area needs at least 10 pages")
        if pages * PAGE_SIZE > DEVICE_BYTES:
            raise KernelError(errno.ENOSPC, f"size {pages * PAGE_SIZE >> 10} KiB is larger than "
                                            f"device size {DEVICE_BYTES >> 10} KiB")
        dev.swap_size = pages
        dev.fstype = None
        dev.files.clear()
        dev.dirs = {"/"}
        return dev

    def swapon(self, path: str, prio: int | None = None) -> SwapDevice:
        mm = self.mm
        dev = mm.fs.blockdev(path)
        if dev is None:
            raise KernelError(errno.ENOENT)
        if dev.user is not None:
            raise KernelError(errno.EBUSY)
        if dev.swap_size is None:
            raise KernelError(errno.EINVAL, "read swap header failed")
        try:
            type = self.swap_info.index(None)
        except ValueError:
            raise KernelError(errno.EPERM) from None
        if prio is None:
            self.least_priority -= 1
            prio = self.least_priority
        sis = SwapDevice(dev, type, prio, dev.swap_size)
        fmap = None
        if mm.frontswap.map_wanted():
            fmap = None if self.fail_next_map_alloc else new_map(sis.max)
        self.fail_next_map_alloc = False
        self.swap_info[type] = sis
        mm.frontswap.init(type, fmap)
        pos = 0
        while pos < len(self._list) and self._on_list(self._list[pos]).prio > prio:
            pos += 1
        self._list.insert(pos, type)
        dev.user = "swap"
        kb = sis.pages * (PAGE_SIZE >> 10)
        # "%s" of frontswap_map: 3.10 allocates it at every swapon (frontswap_enabled
        # is the constant 1), 3.9 once a backend registered (frontswap_register_ops)
        fs_flag = "FS" if fmap is not None else ""
        mm.kernel.printk(f"Adding {kb}k swap on {path}.  Priority:{prio} extents:1 across:{kb}k "
                         f"{fs_flag}", KERN_INFO)
        mm.kernel.clock.advance_us(1000)
        mm.event("kmodemu_mm_swapon", device=sis)
        return sis

    def swapoff(self, path: str) -> SwapDevice:
        mm = self.mm
        sis = self.find(path)
        if sis is None:
            raise KernelError(errno.EINVAL)
        if not self.enough_memory(sis.inuse_pages):
            raise KernelError(errno.ENOMEM)
        pos = self._list.index(sis.type)
        self._list.remove(sis.type)
        sis.writeok = False
        try:
            self.try_to_unuse(sis.type, False, 0)
        except KernelError:
            self._list.insert(pos, sis.type)   # reinsert_swap_info
            sis.writeok = True
            raise
        # 3.9 and 3.10 sys_swapoff: frontswap_map_set(p, NULL) comes before
        # frontswap_invalidate_area, which then returns on the NULL map: the
        # backend's invalidate_area is never called (3.12 moved the detach after)
        sis.frontswap_map = None
        mm.frontswap.invalidate_area(sis.type)
        self.swap_info[sis.type] = None
        if sis.prio < 0:  # later automatic priorities move up to close the gap
            prio = sis.prio
            for t in self._list[pos:]:
                later = self._on_list(t)
                later.prio, prio = prio, prio - 1
            self.least_priority += 1
        sis.blockdev.user = None
        mm.kernel.clock.advance_us(1000)
        mm.event("kmodemu_mm_swapoff", device=sis)
        return sis

    # -- the swap path --------------------------------------------------------------
    def get_swap_page(self) -> tuple[SwapDevice, int] | None:
        for t in self._list:
            sis = self._on_list(t)
            if sis.writeok:
                off = sis.alloc_slot()
                if off is not None:
                    return sis, off
        return None

    def swap_free(self, sis: SwapDevice, offset: int) -> None:
        """The last user of a slot is gone: ``swap_entry_free``."""
        self.mm.frontswap.invalidate_page(sis.type, offset)
        sis.disk.pop(offset, None)
        sis.owners.pop(offset, None)
        sis.release_slot(offset)

    def read_slot(self, sis: SwapDevice, offset: int) -> bytes:
        """``swap_readpage`` after a failed frontswap load: read the device."""
        sis.reads += 1
        self.swap_reads += 1
        data = sis.disk.get(offset)
        if data is None:
            self.lost_pages += 1
            self.mm.kernel.printk(f"kmodemu: swap page lost: {sis.path} offset {offset} was "
                                  "never written (frontswap took it without recording it)",
                                  KERN_ERR)
            return bytes(PAGE_SIZE)
        return data

    def write_slot(self, sis: SwapDevice, offset: int, data: bytes) -> None:
        sis.disk[offset] = data
        sis.writes += 1
        self.swap_writes += 1

    def try_to_unuse(self, type: int, frontswap: bool, pages_to_unuse: int) -> int:
        """Bring pages of a device back into RAM; with ``frontswap`` only those in frontswap.

        ``pages_to_unuse`` 0 means all. Returns the number of pages brought back.
        """
        sis = self.swap_info[type]
        if sis is None:
            return 0
        done = 0
        for offset in sorted(sis.owners):
            if frontswap:
                fmap = sis.frontswap_map
                if fmap is None or not fmap[offset]:
                    continue
            owner = sis.owners.get(offset)
            if owner is None:
                continue
            self.mm.anon.swap_in(owner)
            done += 1
            if frontswap and pages_to_unuse > 0 and done >= pages_to_unuse:
                break
        return done

    def proc_swaps(self) -> str:
        lines = ["Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n"]
        for sis in self.devices():
            kb = PAGE_SIZE >> 10
            lines.append(f"{sis.path:<40}partition\t{sis.pages * kb}\t{sis.inuse_pages * kb}\t"
                         f"{sis.prio}\n")
        return "".join(lines)
