"""Reclaim: free frames under pressure from the page cache, anonymous memory and shrinkers.

Each pass splits its target between file and anonymous pages by
``vm.swappiness`` and list sizes (``get_scan_count`` with equal rotation
costs), rebalances the active/inactive lists, evicts clean file pages (into
cleancache), swaps anonymous pages out (through frontswap) and then asks the
registered shrinkers for a share proportional to the LRU fraction scanned
(``shrink_slab``: 2 × scanned × objects / LRU pages, at least the shortfall;
objects = the shrinker's ``count_objects()`` if it has one, else the frames
tmem backends hold).
Progress is measured in free frames, since a cleancache put may itself take
a frame for the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.memory import MemoryManager

SWAP_CLUSTER_MAX = 32
MAX_PASSES = 64


class Reclaim:
    """The reclaim engine of one kernel (kswapd and direct reclaim in one)."""

    def __init__(self, mm: "MemoryManager"):
        self.mm = mm
        self.runs = 0
        self.file_evicted = 0
        self.anon_swapped = 0
        self.shrunk = 0
        self._busy = False

    def reclaim(self, wanted: int) -> int:
        """Try to raise free frames by ``wanted``; return the net gain."""
        if self._busy or wanted <= 0:
            return 0  # no recursion: allocations made while reclaiming do not reclaim
        self._busy = True
        mm = self.mm
        frames = mm.frames
        start = frames.nr_free
        goal = start + wanted
        stats = {"file_evicted": 0, "anon_swapped": 0, "shrunk": 0}
        try:
            for _ in range(MAX_PASSES):
                short = goal - frames.nr_free
                if short <= 0:
                    break
                if not self._pass(max(short, SWAP_CLUSTER_MAX), stats):
                    break
        finally:
            self._busy = False
        freed = frames.nr_free - start
        self.runs += 1
        self.file_evicted += stats["file_evicted"]
        self.anon_swapped += stats["anon_swapped"]
        self.shrunk += stats["shrunk"]
        mm.kernel.clock.advance_us(5 + stats["anon_swapped"] * 2)
        mm.event("kmodemu_mm_reclaim", wanted=wanted, freed=freed, stats=stats)
        return freed

    def _pass(self, batch: int, stats: dict[str, int]) -> bool:
        mm = self.mm
        pc, anon, swap = mm.pagecache, mm.anon, mm.swap
        file_pages = pc.evictable_pages()
        anon_pages = anon.nr_resident if swap.free_pages() > 0 else 0
        sw = mm.swappiness
        if file_pages and anon_pages:
            ap = anon_pages * sw
            anon_target = batch * ap // (ap + file_pages * (200 - sw))
        else:
            anon_target = batch if anon_pages else 0
        file_target = batch - anon_target

        pc.balance()
        got_file = pc.scan_inactive(file_target)
        anon.balance()
        got_anon = anon.scan_inactive(anon_target + (file_target - got_file)) if anon_pages else 0
        if got_file + got_anon < batch and pc.evictable_pages():
            pc.balance()
            got_file += pc.scan_inactive(batch - got_file - got_anon)
        stats["file_evicted"] += got_file
        stats["anon_swapped"] += got_anon
        scanned = got_file + got_anon

        shrunk = 0
        lru = file_pages + anon.nr_resident + 1
        for shrinker in list(mm.shrinkers):
            count_objects = getattr(shrinker, "count_objects", None)
            count = count_objects() if count_objects is not None else mm.frames.used["tmem"]
            if count <= 0:
                continue
            delta = 2 * scanned * count // lru
            if scanned < batch:
                delta = max(delta, batch - scanned)
            delta = min(delta, count)
            if delta > 0:
                shrunk += shrinker(delta) or 0
        stats["shrunk"] += shrunk
        return scanned + shrunk > 0
