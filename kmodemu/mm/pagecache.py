"""The page cache: file pages in RAM on an active and an inactive LRU list.

Where Linux calls cleancache, this calls it too:

- a read miss asks ``cleancache_get_page`` before reading the disk;
- removing a clean, up-to-date page (reclaim, drop_caches) puts it
  (``__delete_from_page_cache``);
- truncation and file eviction (unlink, umount) go through
  ``truncate_inode_pages``: ``invalidate_inode`` before and after, and
  ``invalidate_page`` for each cached page, whose mapped-to-disk flag the
  truncate path has cleared.

A read marks pages accessed the way ``mark_page_accessed`` does: a new page
is inactive and referenced; touching an inactive referenced page activates
it. Pages of in-RAM filesystems (tmpfs, rootfs) are unevictable here.
"""

from __future__ import annotations

import hashlib

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kmodemu.mm.page import PAGE_SIZE, Page

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.filesystem import Inode
    from kmodemu.mm.memory import MemoryManager


class CachedPage:
    """One page-cache page: the bytes, the frame holding them and LRU state.

    ``active`` is True/False for the two LRU lists, None for an unevictable page.
    """

    __slots__ = ("inode", "index", "data", "pfn", "active", "referenced", "__weakref__")

    def __init__(self, inode: "Inode", index: int, data: bytes, pfn: int):
        self.inode = inode
        self.index = index
        self.data = data
        self.pfn = pfn
        self.active: bool | None = False
        self.referenced = True


@dataclass
class ReadStats:
    """What one ``read`` of a file did."""

    pages: int = 0
    cached: int = 0
    cleancache_hits: int = 0
    disk_reads: int = 0
    corrupt: int = 0


class PageCache:
    """All cached file pages of a kernel, and the LRU lists reclaim scans."""

    def __init__(self, mm: "MemoryManager"):
        self.mm = mm
        self.active: OrderedDict[CachedPage, None] = OrderedDict()
        self.inactive: OrderedDict[CachedPage, None] = OrderedDict()
        self.nr_unevictable = 0
        self.disk_reads = 0
        self.cleancache_hits = 0
        self.corrupt_reads = 0
        self.evicted = 0

    @property
    def nr_active(self) -> int:
        return len(self.active)

    @property
    def nr_inactive(self) -> int:
        return len(self.inactive)

    def evictable_pages(self) -> int:
        return len(self.active) + len(self.inactive)

    # -- reading --------------------------------------------------------------------
    def read(self, inode: "Inode", start: int = 0, count: int | None = None) -> ReadStats:
        """Fault pages [start, start+count) of a file in, as ``do_generic_file_read`` does."""
        st = ReadStats()
        end = inode.nr_pages if count is None else min(inode.nr_pages, start + count)
        mm = self.mm
        cc_get = mm.cleancache.get_page
        pages = inode.pages
        inactive, active = self.inactive, self.active
        for index in range(start, end):
            st.pages += 1
            cp = pages.get(index)
            if cp is not None:
                st.cached += 1
                if cp.active is False and cp.referenced:
                    del inactive[cp]
                    cp.active = True
                    cp.referenced = False
                    active[cp] = None
                else:
                    cp.referenced = True
                continue
            pfn = mm.alloc_frame("file")
            page = Page()
            if cc_get(inode, index, page) == 0:
                data = page.data
                st.cleancache_hits += 1
                if data != inode.disk_page(index):
                    st.corrupt += 1
            else:
                data = inode.disk_page(index)
                st.disk_reads += 1
            cp = CachedPage(inode, index, data, pfn)
            pages[index] = cp
            inactive[cp] = None
        self.disk_reads += st.disk_reads
        self.cleancache_hits += st.cleancache_hits
        self.corrupt_reads += st.corrupt
        sb = inode.sb
        assert sb is not None, "only an inode of a mounted filesystem is read"
        sb.device.reads += st.disk_reads
        mm.fs.disk_reads += st.disk_reads
        mm.kernel.clock.advance_us(1 + st.disk_reads * 100 + st.cleancache_hits * 2)
        return st

    def sha256(self, inode: "Inode") -> str:
        """Hex SHA-256 of the file as a reader sees it: each page faulted in (or found) and hashed."""
        h = hashlib.sha256()
        left = inode.size
        for index in range(inode.nr_pages):
            self.read(inode, index, 1)
            data = inode.pages[index].data
            h.update(data[:left] if left < len(data) else data)
            left -= len(data)
        return h.hexdigest()

    def populate_in_ram(self, inode: "Inode") -> None:
        """tmpfs/rootfs: the file's pages exist only in RAM (unevictable here)."""
        for index in range(inode.nr_pages):
            pfn = self.mm.alloc_frame("file")
            cp = CachedPage(inode, index, inode.disk_page(index), pfn)
            cp.active = None  # unevictable
            inode.pages[index] = cp
            self.nr_unevictable += 1

    # -- removal --------------------------------------------------------------------
    def _unlink_lru(self, cp: CachedPage) -> None:
        if cp.active is None:
            self.nr_unevictable -= 1
        elif cp.active:
            del self.active[cp]
        else:
            del self.inactive[cp]

    def evict(self, cp: CachedPage) -> None:
        """Reclaim one clean page: put it to cleancache, then free its frame."""
        inode = cp.inode
        self._unlink_lru(cp)
        del inode.pages[cp.index]
        self.mm.cleancache.put_page(inode, cp.index, Page(cp.data))
        self.mm.free_frame(cp.pfn)
        self.evicted += 1

    def scan_inactive(self, nr: int) -> int:
        """Evict up to ``nr`` pages from the cold end of the inactive list."""
        freed = 0
        inactive = self.inactive
        while freed < nr and inactive:
            cp = next(iter(inactive))
            cp.referenced = False  # page_check_references: clean unmapped pages go anyway
            self.evict(cp)
            freed += 1
        return freed

    def balance(self) -> int:
        """``shrink_active_list`` while the inactive file list is low (active > inactive)."""
        moved = 0
        active, inactive = self.active, self.inactive
        while len(active) > len(inactive):
            cp = next(iter(active))
            del active[cp]
            cp.active = False
            cp.referenced = False
            inactive[cp] = None
            moved += 1
        return moved

    def drop_all(self) -> int:
        """``drop_caches``: every clean evictable page leaves (and is put to cleancache)."""
        victims = list(self.inactive) + list(self.active)
        for cp in victims:
            self.evict(cp)
        return len(victims)

    def truncate(self, inode: "Inode", size: int) -> None:
        """``truncate_inode_pages_range`` plus the new size on disk."""
        cc = self.mm.cleancache
        cc.invalidate_inode(inode)
        first = (size + PAGE_SIZE - 1) // PAGE_SIZE
        for index in sorted(i for i in inode.pages if i >= first):
            cp = inode.pages.pop(index)
            self._unlink_lru(cp)
            cc.invalidate_page(inode, index)  # not mapped to disk any more: no put
            self.mm.free_frame(cp.pfn)
        if size % PAGE_SIZE and (size // PAGE_SIZE) in inode.pages:
            cp = inode.pages[size // PAGE_SIZE]
            keep = size % PAGE_SIZE
            cp.data = cp.data[:keep] + bytes(PAGE_SIZE - keep)
        cc.invalidate_inode(inode)
        inode.data_size = min(inode.data_size, size)
        inode.size = size
        if inode.sb is not None and inode.sb.fstype.in_ram and size > 0:
            for index in range(inode.nr_pages):
                if index not in inode.pages:
                    pfn = self.mm.alloc_frame("file")
                    cp = inode.pages[index] = CachedPage(inode, index, bytes(PAGE_SIZE), pfn)
                    cp.active = None
                    self.nr_unevictable += 1

    def evict_inode(self, inode: "Inode") -> None:
        """``evict`` at umount: the page cache of the inode goes, the file stays on disk."""
        size = inode.size
        data_size = inode.data_size
        self.truncate(inode, 0)
        inode.size, inode.data_size = size, data_size
