"""What zbud and zsmalloc share: the frame-allocator protocol, the tmem handle
stored beside each zpage, the metadata-only pampds of zero- and same-filled
pages, and zcache's size policy.

The size policy (``compress_poor`` / ``mean_compress_poor``) is zcache's, not
the allocator's, but it needs the allocator's largest object, so each
allocator applies it at the top of ``create``.
"""

from __future__ import annotations

import struct
from typing import Callable, Protocol

from .debug import ZbudCounters, ZcacheCounters

PAGE_SIZE = 4096

#: pampd of an all-zero page: no space used (3.10 "zero-filled pages awareness").
#: Real pampds are non-negative ints, so ``pampd < 0`` tests it.
ZERO_FILLED = -1

# Same-filled pages (beyond Linux 3.10; zswap has them since 4.14): a page that
# is one 8-byte word repeated 512 times is stored as metadata only, its pampd
# being ``~word`` (a negative int).  Word 0 gives ``~0 == ZERO_FILLED``, so
# every negative pampd is "a page filled with the word ``~pampd``" and
# ``pampd < 0`` still tests for "no space used".

#: words per page
FILL_WORDS = PAGE_SIZE // 8
ZERO_PAGE = bytes(PAGE_SIZE)


def filled_page(pampd: int) -> bytes:
    """The page bytes of a negative (metadata-only) pampd."""
    if pampd == ZERO_FILLED:
        return ZERO_PAGE
    return (~pampd).to_bytes(8, "little") * FILL_WORDS


def account_filled(zc, eph: bool, pampd: int) -> int:
    """Count a metadata-only zpage in (zero_filled_pages or same_filled_pages,
    *_zpages); returns ``pampd``."""
    if eph:
        v = zc.eph_zpages + 1
        zc.eph_zpages = v
        if v > zc.eph_zpages_max:
            zc.eph_zpages_max = v
    else:
        v = zc.pers_zpages + 1
        zc.pers_zpages = v
        if v > zc.pers_zpages_max:
            zc.pers_zpages_max = v
    if pampd == ZERO_FILLED:
        v = zc.zero_filled_pages + 1
        zc.zero_filled_pages = v
        if v > zc.zero_filled_pages_max:
            zc.zero_filled_pages_max = v
    else:
        zc.same_filled_pages += 1
    return pampd


def unaccount_filled(zc, eph: bool, pampd: int) -> None:
    """Undo :func:`account_filled` when a metadata-only zpage is freed."""
    if eph:
        zc.eph_zpages -= 1
    else:
        zc.pers_zpages -= 1
    if pampd == ZERO_FILLED:
        zc.zero_filled_pages -= 1
    else:
        zc.same_filled_pages -= 1

#: struct tmem_handle: oid (3 x u64), index u32, pool_id u16, client_id u16
TMEM_HANDLE_SIZE = 32
_HANDLE_TAIL = struct.Struct("<IHH")
_HANDLE = struct.Struct("<24sIHH")
#: ``pack_handle_into(buf, offset, oid.to_bytes(24, "little"), index, pool_id, client_id)``:
#: the 32-byte handle written straight into the frame, in front of its zpage
pack_handle_into = _HANDLE.pack_into
_unpack_tail = _HANDLE_TAIL.unpack_from

#: persistent puts compressing worse than this are refused (zbud_max_zsize)
MAX_ZSIZE = PAGE_SIZE * 7 // 8
#: ... and above this only while the mean persistent zsize is still good
MAX_MEAN_ZSIZE = PAGE_SIZE * 5 // 8

#: callback that makes tmem forget an evicted zpage: (client_id, pool_id, oid, index)
FlushFn = Callable[[int, int, int, int], object]


class FrameAllocator(Protocol):
    """Where page frames come from: the kernel's RAM model, or a test's bounded one."""

    def alloc(self) -> int | None:
        """A free frame number, or None when RAM is exhausted."""

    def free(self, pfn: int) -> None:
        """Give a frame back."""


def unpack_handle(buf, offset: int = 0) -> tuple[int, int, int, int]:
    """(client_id, pool_id, oid, index) read back from a frame at ``offset``."""
    oid = int.from_bytes(buf[offset:offset + 24], "little")
    index, pool_id, client_id = _unpack_tail(buf, offset + 24)
    return client_id, pool_id, oid, index


def size_refused(zc, eph: bool, clen: int, max_eph: int) -> bool:
    """zcache's put policy; bumps compress_poor / mean_compress_poor when it refuses.

    Ephemeral: anything larger than the allocator's largest zpage.  Persistent:
    larger than 7/8 of a page, or larger than 5/8 while the mean persistent
    zsize (zero-filled pages included, as in 3.10) is already above 5/8.
    """
    if eph:
        if clen > max_eph:
            zc.compress_poor += 1
            return True
        return False
    if clen > MAX_ZSIZE or clen > max_eph:
        zc.compress_poor += 1
        return True
    if clen > MAX_MEAN_ZSIZE:
        zpages = zc.pers_zpages
        if zpages > 0:
            total = zc.pers_zbytes
            if total < 0:
                total = 0
            if total // zpages > MAX_MEAN_ZSIZE:
                zc.mean_compress_poor += 1
                return True
    return False


class ZpoolLevels:
    """The ``zbud/`` levels both allocators derive instead of counting twice.

    zcache's counters already hold frames and compressed bytes; an allocator
    adds what it stores in front of each zpage (the tmem handle) and keeps
    only its own zpage counts (``_eph_zp``/``_pers_zp``: metadata-only pages
    are zcache's, not the allocator's).
    """

    # the levels' sources, set by each allocator's __init__
    __slots__ = ("zc", "zb", "_eph_zp", "_pers_zp")
    zc: ZcacheCounters
    zb: ZbudCounters
    _eph_zp: int
    _pers_zp: int

    def _count_in(self, eph: bool, size: int, clen: int) -> None:
        """Account one zpage placed in a frame: ``size`` with its handle, ``clen`` compressed."""
        zc, zb = self.zc, self.zb
        if eph:
            self._eph_zp += 1
            zb.eph_cumul_zpages += 1
            zb.eph_cumul_zbytes += size
            v = zc.eph_zpages + 1
            zc.eph_zpages = v
            if v > zc.eph_zpages_max:
                zc.eph_zpages_max = v
            v = zc.eph_zbytes + clen
            zc.eph_zbytes = v
            if v > zc.eph_zbytes_max:
                zc.eph_zbytes_max = v
        else:
            self._pers_zp += 1
            zb.pers_cumul_zpages += 1
            zb.pers_cumul_zbytes += size
            v = zc.pers_zpages + 1
            zc.pers_zpages = v
            if v > zc.pers_zpages_max:
                zc.pers_zpages_max = v
            v = zc.pers_zbytes + clen
            zc.pers_zbytes = v
            if v > zc.pers_zbytes_max:
                zc.pers_zbytes_max = v

    @property
    def eph_zpages(self) -> int:
        return self._eph_zp

    @property
    def pers_zpages(self) -> int:
        return self._pers_zp

    @property
    def eph_zbytes(self) -> int:
        return self.zc.eph_zbytes + TMEM_HANDLE_SIZE * self._eph_zp

    @property
    def pers_zbytes(self) -> int:
        return self.zc.pers_zbytes + TMEM_HANDLE_SIZE * self._pers_zp

    @property
    def eph_pageframes(self) -> int:
        return self.zc.eph_pageframes

    @property
    def pers_pageframes(self) -> int:
        return self.zc.pers_pageframes

    @property
    def pageframes(self) -> int:
        return self.zc.eph_pageframes + self.zc.pers_pageframes

    def stats(self) -> dict[str, int]:
        """zpages held in frames, frames used and bytes stored (handles included)."""
        return {
            "zpages": self._eph_zp + self._pers_zp,
            "pageframes": self.pageframes,
            "zbytes": self.eph_zbytes + self.pers_zbytes,
        }
