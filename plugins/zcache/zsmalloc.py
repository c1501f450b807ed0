"""zsmalloc-style allocator for zcache (beyond Linux: ``zpool=zsmalloc``).

Denser than zbud: every zpage (32-byte tmem handle + compressed data) is
rounded up to a 16-byte size class, and each class packs its objects into
"zspages" of 1-4 frames, chosen as Linux's zsmalloc does (the page count with
the best usage, the smallest on ties).  Objects may straddle a frame boundary
inside a zspage.  A class with one object per zspage is "huge": one frame per
zpage, like an unbuddied zbud frame.

Same interface and accounting as :class:`ZbudPool`, so zcache can use either.
Eviction works on whole zspages: when the frame allocator runs dry, the LRU
ephemeral zspage is flushed from tmem (handles are read back from its frames)
and its frames go back to RAM for the new zspage.  A zspage moves to the MRU
end when an object is added.  Persistent zspages are never evicted.  The zbud/
counters keep their names: ``*_buddied_count`` counts full zspages and
``*_unbuddied_count`` zspages with room left.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict

from .zpool import (
    PAGE_SIZE,
    TMEM_HANDLE_SIZE,
    ZERO_FILLED,
    FlushFn,
    FrameAllocator,
    account_filled,
    size_refused,
    unaccount_filled,
    unpack_handle,
)

CLASS_DELTA = 16
MAX_PAGES_PER_ZSPAGE = 4
#: largest object: a whole frame (handle included)
MAX_OBJ_SIZE = PAGE_SIZE
MAX_ZSIZE = MAX_OBJ_SIZE - TMEM_HANDLE_SIZE
_OBJ_BITS = 10  # up to 4 * 4096 / 16 objects per zspage


class SizeClass:
    """Objects of at most ``size`` bytes, ``objs`` of them per zspage of ``pages`` frames."""

    __slots__ = ("size", "pages", "objs", "huge")

    def __init__(self, size: int):
        self.size = size
        best_pages, best_used = 1, -1
        for pages in range(1, MAX_PAGES_PER_ZSPAGE + 1):
            span = pages * PAGE_SIZE
            used = (span // size) * size * 1000 // span  # usage in per-mille
            if used > best_used:
                best_pages, best_used = pages, used
        self.pages = best_pages
        self.objs = best_pages * PAGE_SIZE // size
        self.huge = self.objs == 1


def _merged_classes() -> tuple[SizeClass, ...]:
    """One class per 16-byte step, merged as Linux does: consecutive sizes whose
    zspages have the same frame and object counts share the largest one
    (fewer half-filled zspages, a little more rounding)."""
    own = [SizeClass(s) for s in range(CLASS_DELTA, MAX_OBJ_SIZE + 1, CLASS_DELTA)]
    out = own[:]
    for i in range(len(own) - 2, -1, -1):
        nxt = out[i + 1]
        if (own[i].pages, own[i].objs) == (nxt.pages, nxt.objs):
            out[i] = nxt
    return tuple(out)


#: size class of every object size, index = (size - 1) // CLASS_DELTA
CLASSES = _merged_classes()


def class_of(size: int) -> SizeClass:
    return CLASSES[(size - 1) // CLASS_DELTA]


class ZsPage:
    """One zspage: its frames, its bytes, and which objects are in use."""

    __slots__ = ("zid", "cls", "eph", "buf", "pfns", "inuse", "free", "sizes")

    def __init__(self, zid: int, cls: SizeClass, eph: bool, pfns: list[int]):
        self.zid = zid
        self.cls = cls
        self.eph = eph
        self.buf = bytearray(cls.pages * PAGE_SIZE)
        self.pfns = pfns
        self.inuse = 0
        self.free = list(range(cls.objs - 1, -1, -1))  # pop() gives object 0 first
        self.sizes = array("H", bytes(2 * cls.objs))


class ZsmallocPool:
    """Size-class allocator with whole-zspage LRU eviction of ephemeral data."""

    name = "zsmalloc"
    max_size = MAX_ZSIZE

    __slots__ = ("frames", "zc", "zb", "flush", "_zspages", "_free_zids",
                 "_nonfull", "_lru", "_dying") + (
        # the zbud/ levels, kept here and read by the counters
        "eph_zpages", "eph_zbytes", "eph_pageframes", "eph_buddied_count",
        "eph_unbuddied_count", "pers_zpages", "pers_zbytes", "pers_pageframes",
        "pers_buddied_count", "pers_unbuddied_count")

    def __init__(self, frames: FrameAllocator, zc, zb, flush: FlushFn):
        self.frames = frames
        self.zc = zc
        self.zb = zb
        self.flush = flush
        self._zspages: list[ZsPage | None] = []
        self._free_zids: list[int] = []
        # (eph, class index) -> zspage ids with a free object, oldest first
        self._nonfull: dict[tuple[bool, int], dict[int, None]] = {}
        # eph -> zspage ids, LRU first
        self._lru = {True: OrderedDict(), False: OrderedDict()}
        #: the zspage being evicted: tmem frees its pampds while we flush them
        self._dying: ZsPage | None = None
        for name in ("eph_zpages", "eph_zbytes", "eph_pageframes", "eph_buddied_count",
                     "eph_unbuddied_count", "pers_zpages", "pers_zbytes", "pers_pageframes",
                     "pers_buddied_count", "pers_unbuddied_count"):
            setattr(self, name, 0)
        zb.bind(self)

    # ------------------------------------------------------------ put side

    def create(self, eph: bool, cdata: bytes, th: bytes) -> int | None:
        clen = len(cdata)
        zc = self.zc
        if clen > MAX_ZSIZE or not eph:
            if size_refused(zc, eph, clen, MAX_ZSIZE):
                return None
        size = clen + TMEM_HANDLE_SIZE
        cls = CLASSES[(size - 1) // CLASS_DELTA]
        key = (eph, cls.size)
        nonfull = self._nonfull.get(key)
        if nonfull:
            zid = next(iter(nonfull))
            zsp = self._zspages[zid]
        else:
            zsp = self._new_zspage(eph, cls)
            if zsp is None:
                return None
            zid = zsp.zid
            if nonfull is None:
                nonfull = self._nonfull[key] = {}
            nonfull[zid] = None
        obj = zsp.free.pop()
        zsp.inuse += 1
        zsp.sizes[obj] = size
        zb = self
        if not zsp.free:
            del nonfull[zid]
            if eph:
                zb.eph_unbuddied_count -= 1
                zb.eph_buddied_count += 1
            else:
                zb.pers_unbuddied_count -= 1
                zb.pers_buddied_count += 1
        self._lru[eph].move_to_end(zid)
        off = obj * zsp.cls.size
        buf = zsp.buf
        buf[off:off + TMEM_HANDLE_SIZE] = th
        buf[off + TMEM_HANDLE_SIZE:off + size] = cdata
        if eph:
            zb.eph_zpages += 1
            self.zb.eph_cumul_zpages += 1
            zb.eph_zbytes += size
            self.zb.eph_cumul_zbytes += size
            v = zc.eph_zpages + 1
            zc.eph_zpages = v
            if v > zc.eph_zpages_max:
                zc.eph_zpages_max = v
            v = zc.eph_zbytes + clen
            zc.eph_zbytes = v
            if v > zc.eph_zbytes_max:
                zc.eph_zbytes_max = v
        else:
            zb.pers_zpages += 1
            self.zb.pers_cumul_zpages += 1
            zb.pers_zbytes += size
            self.zb.pers_cumul_zbytes += size
            v = zc.pers_zpages + 1
            zc.pers_zpages = v
            if v > zc.pers_zpages_max:
                zc.pers_zpages_max = v
            v = zc.pers_zbytes + clen
            zc.pers_zbytes = v
            if v > zc.pers_zbytes_max:
                zc.pers_zbytes_max = v
        return (zid << _OBJ_BITS) | obj

    def create_zero(self, eph: bool) -> int:
        return account_filled(self.zc, eph, ZERO_FILLED)

    def create_filled(self, eph: bool, word: int) -> int:
        return account_filled(self.zc, eph, ~word)

    def _new_zspage(self, eph: bool, cls: SizeClass) -> ZsPage | None:
        """Frames for a new zspage, evicting ephemeral zspages if RAM is short."""
        pfns: list[int] = []
        zc = self.zc
        alloc = self.frames.alloc
        evicted = False
        while len(pfns) < cls.pages:
            pfn = alloc()
            if pfn is not None:
                pfns.append(pfn)
                continue
            zc.failed_getfreepages += 1
            if not self.evict_eph_frame():
                if eph:
                    zc.eph_ate_tail_failed += 1
                else:
                    zc.pers_ate_eph_failed += 1
                free = self.frames.free
                for pfn in pfns:
                    free(pfn)
                return None
            evicted = True
        if evicted:
            if eph:
                zc.eph_ate_tail += 1
            else:
                zc.pers_ate_eph += 1
        if self._free_zids:
            zid = self._free_zids.pop()
        else:
            zid = len(self._zspages)
            self._zspages.append(None)
        zsp = self._zspages[zid] = ZsPage(zid, cls, eph, pfns)
        self._lru[eph][zid] = None
        n = cls.pages
        zb = self
        if eph:
            zb.eph_unbuddied_count += 1
            zb.eph_pageframes += n
            v = zc.eph_pageframes + n
            zc.eph_pageframes = v
            if v > zc.eph_pageframes_max:
                zc.eph_pageframes_max = v
        else:
            zb.pers_unbuddied_count += 1
            zb.pers_pageframes += n
            v = zc.pers_pageframes + n
            zc.pers_pageframes = v
            if v > zc.pers_pageframes_max:
                zc.pers_pageframes_max = v
        return zsp

    # ------------------------------------------------------------ get side

    def read(self, pampd: int):
        zid = pampd >> _OBJ_BITS
        zsps = self._zspages
        if zid >= len(zsps):
            return None
        zsp = zsps[zid]
        if zsp is None:
            return None
        obj = pampd & ((1 << _OBJ_BITS) - 1)
        size = zsp.sizes[obj]
        if not size:
            return None
        off = obj * zsp.cls.size
        return memoryview(zsp.buf)[off + TMEM_HANDLE_SIZE:off + size]

    def free(self, pampd: int, eph: bool) -> None:
        zc = self.zc
        if pampd < 0:  # zero- or same-filled
            unaccount_filled(zc, eph, pampd)
            return
        zid = pampd >> _OBJ_BITS
        zsp = self._zspages[zid] if zid < len(self._zspages) else None
        if zsp is self._dying and zsp is not None:
            return  # being evicted: its accounting is already done
        obj = pampd & ((1 << _OBJ_BITS) - 1)
        if zsp is None or not zsp.sizes[obj]:
            raise RuntimeError(f"zsmalloc: free of unused pampd {pampd:#x}")
        size = zsp.sizes[obj]
        zsp.sizes[obj] = 0
        zsp.inuse -= 1
        was_full = not zsp.free
        zsp.free.append(obj)
        eph = zsp.eph
        zb = self
        clen = size - TMEM_HANDLE_SIZE
        if eph:
            zb.eph_zbytes -= size
            zb.eph_zpages -= 1
            zc.eph_zpages -= 1
            zc.eph_zbytes -= clen
        else:
            zb.pers_zbytes -= size
            zb.pers_zpages -= 1
            zc.pers_zpages -= 1
            zc.pers_zbytes -= clen
        key = (eph, zsp.cls.size)
        if was_full:
            if eph:
                zb.eph_buddied_count -= 1
                zb.eph_unbuddied_count += 1
            else:
                zb.pers_buddied_count -= 1
                zb.pers_unbuddied_count += 1
            if zsp.inuse:
                self._nonfull.setdefault(key, {})[zid] = None
        if not zsp.inuse:
            if not was_full:
                del self._nonfull[key][zid]
            self._drop(zsp)

    def _drop(self, zsp: ZsPage) -> None:
        """Unlink an empty (or evicted) zspage and give its frames back."""
        zid = zsp.zid
        eph = zsp.eph
        del self._lru[eph][zid]
        n = zsp.cls.pages
        zb = self
        zc = self.zc
        if eph:
            zb.eph_unbuddied_count -= 1
            zb.eph_pageframes -= n
            zc.eph_pageframes -= n
        else:
            zb.pers_unbuddied_count -= 1
            zb.pers_pageframes -= n
            zc.pers_pageframes -= n
        self._zspages[zid] = None
        self._free_zids.append(zid)
        free = self.frames.free
        for pfn in zsp.pfns:
            free(pfn)

    # ------------------------------------------------------------ eviction

    def evict_eph_frame(self) -> bool:
        """Evict the LRU ephemeral zspage (all its frames); False if there is none."""
        lru = self._lru[True]
        if not lru:
            return False
        zid = next(iter(lru))
        zsp = self._zspages[zid]
        zb = self
        zc = self.zc
        handles = []
        zsize = 0
        step = zsp.cls.size
        sizes = zsp.sizes
        for obj in range(zsp.cls.objs):
            size = sizes[obj]
            if size:
                handles.append(unpack_handle(zsp.buf, obj * step))
                zsize += size - TMEM_HANDLE_SIZE
                zb.eph_zbytes -= size
                zb.eph_zpages -= 1
                sizes[obj] = 0
        zpages = len(handles)
        key = (True, step)
        if zsp.free:
            del self._nonfull[key][zid]
        else:  # count it as unbuddied so _drop's bookkeeping balances
            zb.eph_buddied_count -= 1
            zb.eph_unbuddied_count += 1
        zsp.inuse = 0
        zsp.free = list(range(zsp.cls.objs - 1, -1, -1))
        n = zsp.cls.pages
        self.zb.eph_evicted_pageframes += n
        zc.eph_zbytes -= zsize
        zc.eph_zpages -= zpages
        zc.evicted_eph_zpages += zpages
        zc.evicted_eph_pageframes += n
        flush = self.flush
        self._dying = zsp
        try:
            for client_id, pool_id, oid, index in handles:
                flush(client_id, pool_id, oid, index)
        finally:
            self._dying = None
        self._drop(zsp)
        return True

    def shrink(self, nr_to_keep_frames: int) -> int:
        freed = 0
        zb = self
        while zb.eph_pageframes > nr_to_keep_frames:
            before = zb.eph_pageframes
            if not self.evict_eph_frame():
                break
            freed += before - zb.eph_pageframes
        return freed

    # ------------------------------------------------------------- figures

    @property
    def pageframes(self) -> int:
        return self.zb.eph_pageframes + self.zb.pers_pageframes

    def stats(self) -> dict[str, int]:
        zb = self
        return {
            "zpages": zb.eph_zpages + zb.pers_zpages,
            "pageframes": zb.eph_pageframes + zb.pers_pageframes,
            "zbytes": zb.eph_zbytes + zb.pers_zbytes,
        }

    def check(self) -> None:
        zb = self
        for eph in (True, False):
            frames = zpages = zbytes = full = nonfull = 0
            for zid in self._lru[eph]:
                zsp = self._zspages[zid]
                assert zsp is not None and zsp.eph == eph and zsp.inuse > 0
                assert zsp.inuse + len(zsp.free) == zsp.cls.objs
                used = [o for o in range(zsp.cls.objs) if zsp.sizes[o]]
                assert len(used) == zsp.inuse
                assert not set(used) & set(zsp.free)
                frames += zsp.cls.pages
                zpages += zsp.inuse
                zbytes += sum(zsp.sizes[o] for o in used)
                key = (eph, zsp.cls.size)
                if zsp.free:
                    nonfull += 1
                    assert zid in self._nonfull.get(key, {})
                else:
                    full += 1
                    assert zid not in self._nonfull.get(key, {})
            pre = "eph_" if eph else "pers_"
            assert getattr(zb, pre + "pageframes") == frames
            assert getattr(zb, pre + "zpages") == zpages
            assert getattr(zb, pre + "zbytes") == zbytes
            assert getattr(zb, pre + "buddied_count") == full
            assert getattr(zb, pre + "unbuddied_count") == nonfull
        listed = sum(len(d) for d in self._nonfull.values())
        assert listed == sum(1 for e in (True, False) for z in self._lru[e]
                             if self._zspages[z].free)
