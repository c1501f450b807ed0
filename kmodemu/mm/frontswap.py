"""Frontswap, the frontend of persistent tmem for swap pages.

Profile 3.10 is ``mm/frontswap.c`` after the lazy-initialization patchset:
every swap device gets a frontswap map at swapon; a device enabled before any
backend is recorded in ``need_init`` and ``register_ops`` replays ``init(type)``
for it (by increasing type) before publishing the ops. Profile 3.9 is the
pre-patch file: swapon only allocates a map once a backend has registered, so
a device enabled earlier never has one (its loads never reach the backend) and
registration replays nothing.

The swap side calls ``init(type, map)``, ``store(type, offset, page)``,
``load(type, offset, page)``, ``invalidate_page(type, offset)`` and
``invalidate_area(type)``. The frontend finds a device's state in
``swap_info[type]`` (an object with ``frontswap_map``: see ``new_map``, or
None; ``frontswap_pages`` and ``max``), which the swap layer fills; the
per-page calls go straight to the backend's ops object.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Protocol

from kmodemu.errors import KernelError
from kmodemu.kernel.printk import KERN_INFO, KERN_WARNING
from kmodemu.mm.page import Page

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

#: (1 << MAX_SWAPFILES_SHIFT) minus the migration (2) and hwpoison (1) entry types
MAX_SWAPFILES = 32 - 2 - 1


class FrontswapOps(Protocol):
    """What a backend registers (``struct frontswap_ops``)."""

    def init(self, type: int) -> None: ...
    def store(self, type: int, offset: int, page: Page) -> int: ...
    def load(self, type: int, offset: int, page: Page) -> int: ...
    def invalidate_page(self, type: int, offset: int) -> None: ...
    def invalidate_area(self, type: int) -> None: ...


def _lazy(kernel: "Kernel | None", lazy_init: bool | None) -> bool:
    if lazy_init is None:
        return kernel.lazy_init if kernel is not None else True
    return lazy_init


def new_map(pages: int) -> bytearray:
    """What swapon vzallocs: Linux's bitmap, kept here as one byte (0 or 1) per offset.

    Same offsets as the bitmap (rounded up to 64), but a store or load reads
    and writes ``map[offset]`` instead of shifting and masking a bit, which
    was most of the frontend's per-page cost in Python.
    """
    return bytearray((pages + 63) // 64 * 64)


def test_bit(fmap: bytearray, nr: int) -> bool:
    return bool(fmap[nr])


def is_err(value: Any) -> bool:
    """``IS_ERR`` for what ``register_ops`` returns: a ``KernelError`` value is ERR_PTR(-errno)."""
    return isinstance(value, KernelError)


class Frontswap:
    """One kernel's frontswap frontend (``kernel.frontswap``).

    ``swap_info`` is the swap layer's table indexed by swap type; ``swap``
    (set by the memory model) provides ``swap_list()`` (active types in
    swap_list order), ``enough_memory(pages)`` and ``try_to_unuse(type,
    frontswap, pages)`` for ``frontswap_shrink``.

    The class is 3.10's ``mm/frontswap.c``; constructing it without lazy init
    gives a :class:`Frontswap39` with the pre-patch methods.
    """

    FRONTSWAP_HAS_EXCLUSIVE_GETS = True

    def __new__(cls, kernel: "Kernel | None" = None, *, lazy_init: bool | None = None,
                swap_info: list | None = None) -> "Frontswap":
        if cls is Frontswap and not _lazy(kernel, lazy_init):
            cls = Frontswap39
        return object.__new__(cls)

    def __init__(self, kernel: "Kernel | None" = None, *, lazy_init: bool | None = None,
                 swap_info: list | None = None):
        self.kernel = kernel
        lazy_init = _lazy(kernel, lazy_init)
        self.lazy_init = lazy_init
        #: the Nov-2012 ``FRONTSWAP_HAS_LAZY_INIT`` define
        self.FRONTSWAP_HAS_LAZY_INIT = lazy_init
        self.swap_info: list = swap_info if swap_info is not None else [None] * MAX_SWAPFILES
        self.swap: Any = None
        self.ops: FrontswapOps | None = None
        #: 3.9's ``frontswap_enabled`` (set by register); 3.10 has a constant 1
        self.enabled = lazy_init
        self.need_init = 0  # bitmap of swap types, bit i = type i
        self.writethrough_enabled = False
        self.exclusive_gets_enabled = False
        self.loads = 0
        self.succ_stores = 0
        self.failed_stores = 0
        self.invalidates = 0

    # -- small API ------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """The debugfs files of ``frontswap/``, in Linux's creation order."""
        return {"loads": self.loads, "succ_stores": self.succ_stores,
                "failed_stores": self.failed_stores, "invalidates": self.invalidates}

    @property
    def registered(self) -> bool:
        return self.ops is not None

    def map_wanted(self) -> bool:
        """Does swapon allocate a frontswap map? 3.10: always; 3.9: only once enabled."""
        return self.enabled

    def writethrough(self, enable: bool) -> None:
        """``frontswap_writethrough``: successful stores still report failure."""
        self.writethrough_enabled = bool(enable)

    def tmem_exclusive_gets(self, enable: bool) -> None:
        """``frontswap_tmem_exclusive_gets``: a successful load removes the page."""
        self.exclusive_gets_enabled = bool(enable)

    def pending_types(self) -> list[int]:
        return [t for t in range(MAX_SWAPFILES) if self.need_init >> t & 1]

    def test(self, type: int, offset: int) -> bool:
        """``__frontswap_test``: does this offset live in frontswap?"""
        sis = self.swap_info[type]
        if self.ops is None or sis is None or sis.frontswap_map is None:
            return False
        return test_bit(sis.frontswap_map, offset)

    def curr_pages(self) -> int:
        """``frontswap_curr_pages``: frontswap pages summed over the active swap list."""
        return sum(self.swap_info[t].frontswap_pages for t in self._swap_list())

    def _swap_list(self) -> list[int]:
        if self.swap is not None:
            return list(self.swap.swap_list())
        return [t for t, s in enumerate(self.swap_info) if s is not None]

    def shrink(self, target_pages: int) -> None:
        """``frontswap_shrink``: a partial swapoff of at most one device.

        Walks the swap list and takes the first device the memory check
        accepts; a device holding more than needed gives back exactly the
        excess, otherwise all its frontswap pages (unuse count 0 = "all").
        """
        types = self._swap_list()
        total = sum(self.swap_info[t].frontswap_pages for t in types)
        if total <= target_pages:
            return
        need = total - target_pages
        for t in types:
            si_pages = self.swap_info[t].frontswap_pages
            if need < si_pages:
                pages = unuse = need
            else:
                pages, unuse = si_pages, 0
            if self.swap is not None and not self.swap.enough_memory(pages):
                continue
            if self.swap is not None:
                self.swap.try_to_unuse(t, True, unuse)
            return

    def _event(self, name: str, **kw: Any) -> None:
        if self.kernel is not None:
            getattr(self.kernel.hook, name)(kernel=self.kernel, **kw)

    def _warn(self, text: str) -> None:
        if self.kernel is not None:
            self.kernel.printk(f"WARNING: at mm/frontswap.c {text}", KERN_WARNING)
            self.kernel.taint.add("W")

    # -- 3.10: lazy init ------------------------------------------------------------
    def register_ops(self, ops: FrontswapOps) -> FrontswapOps | KernelError | None:
        """Init every pending type in order, then publish; ERR_PTR(-EINVAL) on a missing map."""
        old = self.ops
        for t in range(MAX_SWAPFILES):
            if self.need_init >> t & 1:
                self.need_init &= ~(1 << t)
                sis = self.swap_info[t]
                if sis is None or sis.frontswap_map is None:
                    return KernelError(errno.EINVAL, "frontswap: swap type without a map")
                ops.init(t)
                self._event("kmodemu_tmem_replay", frontend="frontswap", index=t, shared=False,
                            pool_id=None)
        self.ops = ops  # only after the inits, or a store could reach an unready backend
        self._event("kmodemu_tmem_backend_registered", frontend="frontswap", ops=ops, old=old)
        return old

    def unregister_ops(self, ops: FrontswapOps) -> int:
        """``frontswap_unregister_ops`` (beyond Linux, profile 3.10-unload): let a backend go.

        Persistent pages must not be lost, so every page the backend holds is
        first written to the swap slot it already owns (frontswap_store ran
        after get_swap_page allocated it), the way a writeback would: load
        from the backend into a bounce frame of RAM, write the device, clear
        the bit, invalidate the backend's copy. Only then are the ops
        unpublished and every swap type with a map marked as needing init, so
        the next backend's register replays it. Returns 0, -EINVAL (not the
        registered backend), or -EBUSY with nothing changed when no RAM frame
        can be had for the bounce page. A page the backend cannot give back
        stops the writeback with -EIO: the pages written so far are safe on
        the device, the backend stays registered with the rest.
        """
        if self.ops is not ops or ops is None:
            return -errno.EINVAL
        bounce = self._bounce_frame()
        if bounce == -errno.EBUSY:
            return bounce
        written = 0
        try:
            for t, sis in enumerate(self.swap_info):
                fmap = sis.frontswap_map if sis is not None else None
                if fmap is None or not sis.frontswap_pages:
                    continue
                offset = fmap.find(1)
                while offset >= 0:
                    page = Page()
                    if ops.load(t, offset, page) != 0:
                        self._warn(f"frontswap_unregister_ops: type {t} offset {offset} "
                                   "could not be read back")
                        return -errno.EIO
                    self.swap.write_slot(sis, offset, page.data)
                    fmap[offset] = 0
                    sis.frontswap_pages -= 1
                    if not self.exclusive_gets_enabled:  # an exclusive get took it already
                        ops.invalidate_page(t, offset)
                    written += 1
                    offset = fmap.find(1, offset + 1)
        finally:
            if bounce >= 0 and self.kernel is not None:
                self.kernel.mm.free_frame(bounce)
        if self.kernel is not None:  # a frontswap load and a swap write per page, the model's costs
            self.kernel.clock.advance_us(1 + written * 4)
        self.ops = None
        self.exclusive_gets_enabled = False
        self.writethrough_enabled = False
        for t, sis in enumerate(self.swap_info):
            if sis is not None and sis.frontswap_map is not None:
                self.need_init |= 1 << t  # the next backend's register replays init(t)
        self._event("kmodemu_tmem_backend_unregistered", frontend="frontswap", ops=ops)
        if self.kernel is not None:
            self.kernel.printk(f"frontswap: backend unregistered, {written} page(s) written "
                               f"back to swap, {len(self.pending_types())} swap device(s) wait "
                               "for the next one", KERN_INFO)
        return 0

    def _bounce_frame(self) -> int:
        """One frame of RAM to bring pages back through: its pfn, -1 without a memory
        model, or -EBUSY. Taken as ``alloc_page(GFP_KERNEL)`` would: reclaim when memory
        is low (what reclaim swaps out lands in the backend, and the writeback that
        follows scans every map from the start, so it goes back too); an injected
        ``fail_page_alloc`` or reclaim that frees nothing is EBUSY."""
        if self.kernel is None or getattr(self.kernel, "mm", None) is None:
            return -1
        mm = self.kernel.mm
        if mm.frames.injected_failure():
            return -errno.EBUSY
        try:
            return mm.alloc_frame("kernel")
        except KernelError:
            return -errno.EBUSY

    def init(self, type: int, map: bytearray | None) -> None:
        sis = self.swap_info[type]
        if sis is None:
            raise KernelError(errno.EINVAL, f"BUG: frontswap_init: no swap_info for type {type}")
        if map is None:
            self._warn("__frontswap_init: no frontswap map")
            return
        sis.frontswap_map = map
        if self.ops is not None:
            self.ops.init(type)
        else:
            self.need_init |= 1 << type

    def store(self, type: int, offset: int, page: Page) -> int:
        ops = self.ops
        if ops is None:
            return -1  # 3.10 counts nothing here
        sis = self.swap_info[type]
        fmap = sis.frontswap_map
        if fmap is None:
            return -1  # kmodemu: Linux would oops setting the bit (see docs/frontends.md)
        dup = fmap[offset]
        ret = ops.store(type, offset, page)
        if ret == 0:
            fmap[offset] = 1
            self.succ_stores += 1
            if not dup:
                sis.frontswap_pages += 1
        else:
            self.failed_stores += 1
            if dup:  # the old copy counts as gone; the backend is not told
                fmap[offset] = 0
                sis.frontswap_pages -= 1
        if self.writethrough_enabled:
            return -1
        return ret

    def load(self, type: int, offset: int, page: Page) -> int:
        ops = self.ops
        if ops is None:
            return -1
        sis = self.swap_info[type]
        fmap = sis.frontswap_map
        if fmap is None:
            return -1
        if not fmap[offset]:
            return -1
        ret = ops.load(type, offset, page)
        if ret == 0:
            self.loads += 1
            if self.exclusive_gets_enabled:
                page.dirty = True
                fmap[offset] = 0
                sis.frontswap_pages -= 1
        return ret

    def invalidate_page(self, type: int, offset: int) -> None:
        ops = self.ops
        if ops is None:
            return
        sis = self.swap_info[type]
        fmap = sis.frontswap_map
        if fmap is None:
            return
        if fmap[offset]:
            ops.invalidate_page(type, offset)
            fmap[offset] = 0
            sis.frontswap_pages -= 1
            self.invalidates += 1

    def invalidate_area(self, type: int) -> None:
        if self.ops is not None:
            sis = self.swap_info[type]
            if sis is None or sis.frontswap_map is None:
                return  # need_init is not cleared on this path
            self.ops.invalidate_area(type)
            sis.frontswap_pages = 0
            sis.frontswap_map[:] = bytes(len(sis.frontswap_map))
        self.need_init &= ~(1 << type)


class Frontswap39(Frontswap):
    """The pre-patch (3.9) frontswap: no lazy init, see the module docstring."""

    # -- 3.9: no lazy init ----------------------------------------------------------
    def register_ops(self, ops: FrontswapOps) -> FrontswapOps | KernelError | None:
        old = self.ops
        self.ops = ops
        self.enabled = True
        self._event("kmodemu_tmem_backend_registered", frontend="frontswap", ops=ops, old=old)
        return old

    def init(self, type: int, map: bytearray | None) -> None:
        """swapon: the map (allocated only if enabled) is attached; init only if enabled."""
        ops = self.ops
        sis = self.swap_info[type]
        if sis is None:
            raise KernelError(errno.EINVAL, f"BUG: frontswap_init: no swap_info for type {type}")
        sis.frontswap_map = map
        if ops is not None and map is not None:
            ops.init(type)

    def store(self, type: int, offset: int, page: Page) -> int:
        """Pre-patch: the backend is asked even for a device without a map (no bit kept)."""
        ops = self.ops
        if ops is None:
            return -1
        sis = self.swap_info[type]
        fmap = sis.frontswap_map
        dup = fmap is not None and fmap[offset]
        ret = ops.store(type, offset, page)
        if ret == 0:
            if fmap is not None:
                fmap[offset] = 1
            self.succ_stores += 1
            if not dup:
                sis.frontswap_pages += 1
        else:
            self.failed_stores += 1
            if dup:
                fmap[offset] = 0
                sis.frontswap_pages -= 1
        if self.writethrough_enabled:
            return -1
        return ret

    def load(self, type: int, offset: int, page: Page) -> int:
        ops = self.ops
        if ops is None:
            return -1
        fmap = self.swap_info[type].frontswap_map
        if fmap is None:
            return -1
        if not fmap[offset]:
            return -1
        ret = ops.load(type, offset, page)
        if ret == 0:
            self.loads += 1
            if self.exclusive_gets_enabled:  # pre-3.10: the bit only, the count stays
                page.dirty = True
                fmap[offset] = 0
        return ret

    def invalidate_page(self, type: int, offset: int) -> None:
        ops = self.ops
        if ops is None:
            return
        sis = self.swap_info[type]
        fmap = sis.frontswap_map
        if fmap is None:
            return
        if fmap[offset]:
            ops.invalidate_page(type, offset)
            sis.frontswap_pages -= 1
            fmap[offset] = 0
            self.invalidates += 1

    def invalidate_area(self, type: int) -> None:
        ops = self.ops
        if ops is None:
            return
        sis = self.swap_info[type]
        if sis is None or sis.frontswap_map is None:
            return
        ops.invalidate_area(type)
        sis.frontswap_pages = 0
        sis.frontswap_map[:] = bytes(len(sis.frontswap_map))
