"""Host-dependent half of Xen's tmem (``tmem_xen.c``/``tmem_xen.h``): where frames come from.

tmem keeps no budget of its own: an ephemeral frame comes from tmem's free
list, else from the free heap; a persistent frame is *donated to the domain*
(billed to its ``tot_pages``) and refused once the domain is at ``max_pages``.
Freed frames go back to tmem's free list, which only a relinquish (a flush,
or an allocation that found the heap empty) returns to the heap. Sub-page
data (compressed pages, trailing-zero remnants) lives in arenas that take
and give back whole frames as their byte count crosses page boundaries — an
ideally packed stand-in for Xen's TLSF ``xmem_pool``.

The compressor is zstd at level 1 (Xen uses LZO1X; both are byte-exact
round trips, only the sizes differ), so ``tmem_compress`` is observable in
``xl tmem-list -l`` (cp/cb/cn) and in the host's free memory.
"""

from __future__ import annotations

from typing import Callable

import zstandard

from .abi import PAGE_SIZE

#: largest sub-page allocation (``tmem_subpage_maxsize``): TLSF's block header
#: overhead on a one-page pool; a compressed page at least this big is stored whole
SUBPAGE_MAXSIZE = PAGE_SIZE - 32


class Heap:
    """Host RAM in frames: the hypervisor's own, the domains', tmem's, and free.

    ``total == xen + sum(domain.tot_pages) + tmem frames (ephemeral + free
    list) + free`` at every moment; tmem's persistent frames are inside the
    owning domain's ``tot_pages``, as Xen bills them.
    """

    __slots__ = ("total_pages", "xen_pages", "free_pages")

    def __init__(self, total_pages: int, xen_pages: int):
        if xen_pages > total_pages:
            raise ValueError("the hypervisor does not fit in the host's memory")
        self.total_pages = total_pages
        self.xen_pages = xen_pages
        self.free_pages = total_pages - xen_pages


class Arena:
    """Sub-page allocations packed into whole frames (Xen's ``xmem_pool``)."""

    __slots__ = ("bytes", "frames", "_get", "_put")

    def __init__(self, get_frame: Callable[[], bool], put_frame: Callable[[], None]):
        self.bytes = 0
        self.frames = 0
        self._get = get_frame
        self._put = put_frame

    def alloc(self, size: int) -> bool:
        need = -(-(self.bytes + size) // PAGE_SIZE) - self.frames
        got = 0
        while got < need and self._get():
            got += 1
        if got < need:
            for _ in range(got):
                self._put()
            return False
        self.frames += got
        self.bytes += size
        return True

    def free(self, size: int) -> None:
        self.bytes -= size
        keep = -(-self.bytes // PAGE_SIZE)
        while self.frames > keep:
            self.frames -= 1
            self._put()


class Compressor:
    """``tmh_compress_from_client`` / ``tmh_decompress_to_client``."""

    __slots__ = ("_c", "_d")
    name = "zstd-1"

    def __init__(self):
        self._c = zstandard.ZstdCompressor(level=1, write_content_size=False)
        self._d = zstandard.ZstdDecompressor()

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def decompress(self, blob: bytes) -> bytes:
        return self._d.decompress(blob, max_output_size=PAGE_SIZE)


def tze_size(data: bytes) -> int:
    """``tmh_tze_pfp_scan``: bytes up to the last non-zero u64, a multiple of 8."""
    stripped = len(data.rstrip(b"\0"))
    return -(-stripped // 8) * 8
