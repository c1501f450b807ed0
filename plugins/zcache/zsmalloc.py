"""zsmalloc-style allocator for zcache (beyond Linux: ``zpool=zsmalloc``).

What it keeps of Linux's zsmalloc: objects packed into "zspages" of several
frames, straddling frame boundaries inside a zspage, reached through a handle
(the pampd names a *slot*, not an offset) so objects can move inside their
zspage.  What it drops: size classes.  At a few thousand pages a size class
wastes a partly filled zspage per class (about 12% of the frames on the
benchmark corpus, 0.88 of ideal packing), so here a zspage of
``ZSPAGE_PAGES`` frames takes objects of any size back to back:

* object = 32-byte tmem handle + compressed bytes, no rounding;
* a new object goes to the zspage with the least free space that still fits
  it (best fit over free-space buckets of 64 bytes, oldest first in a bucket),
  else to a new zspage;
* freeing leaves a hole (or shortens the tail when the object was last); a
  zspage whose tail has no room for an object that fits its free total is
  compacted first: live objects slide down, their slots keep their numbers;
* a zspage holds at most ``MAX_OBJS`` objects; an empty zspage goes back to
  RAM at once.

Same interface and accounting as :class:`ZbudPool`, so zcache can use either.
Eviction works on whole zspages: when the frame allocator runs dry, the LRU
ephemeral zspage is flushed from tmem (handles are read back from its frames)
and its frames go back to RAM for the new zspage.  A zspage moves to the MRU
end when an object is added.  Persistent zspages are never evicted.  The zbud/
counters keep their names: ``*_unbuddied_count`` counts zspages that can take
another object and ``*_buddied_count`` the others.

Storage is flat: zspage bytes live in arena bytearrays of ``ARENA_ZSPAGES``
zspages (written through memoryviews, read as copies); per-zspage metadata
(free bytes, tail, a bitmask of used slots, flags) in lists and bytearrays,
which CPython indexes faster than arrays, and the frame numbers and the slot
table (offset and size of each object: 32 per zspage) in ``array``s, which
hold them in 2-8 bytes; no Python object per zspage or per object.  The
free-space buckets are sets of zspage ids (with a bitmask of the
non-empty ones) and each LRU is an insertion-ordered dict of ids: in CPython
these cost fewer operations per put than intrusive linked lists in arrays.
A pampd is ``zspage_id << 5 | slot``.
"""

from __future__ import annotations

from array import array

from .zpage import (
    ZpoolLevels,
    PAGE_SIZE,
    TMEM_HANDLE_SIZE,
    ZERO_FILLED,
    FlushFn,
    FrameAllocator,
    pack_handle_into,
    size_refused,
    unaccount_filled,
    unpack_handle,
)

#: frames per zspage (Linux zsmalloc: 1-4 per size class)
ZSPAGE_PAGES = 4
ZSPAGE_SIZE = ZSPAGE_PAGES * PAGE_SIZE
_ZSPAGE_SHIFT = ZSPAGE_SIZE.bit_length() - 1
#: objects per zspage at most (slot table size)
MAX_OBJS = 32
_OBJ_BITS = 5
_OBJ_MASK = MAX_OBJS - 1
_ALL_USED = (1 << MAX_OBJS) - 1
#: largest object: a whole frame (handle included)
MAX_OBJ_SIZE = PAGE_SIZE
MAX_ZSIZE = MAX_OBJ_SIZE - TMEM_HANDLE_SIZE

#: free-space buckets: bucket i holds zspages with i*64 <= free bytes < (i+1)*64;
#: a zspage with less than 64 bytes free or no free slot is on none ("full")
GRANULE_SHIFT = 6
GRANULE = 1 << GRANULE_SHIFT
NBUCKETS = (ZSPAGE_SIZE >> GRANULE_SHIFT) + 1

#: bucket b's bit set and cleared, and slot j's bit cleared: computing these
#: (up to 257-bit) ints on every put and free costs more than a tuple lookup
_BIT = tuple(1 << b for b in range(NBUCKETS))
_CLEAR = tuple(~(1 << b) for b in range(NBUCKETS))
_SLOT_CLEAR = tuple(~(1 << j) for j in range(MAX_OBJS))

_F_EPH = 1
_F_DYING = 2
_F_USED = 4

#: zspages added to the arena (and to the metadata arrays) at a time
ARENA_ZSPAGES = 16
_ARENA_SHIFT = 4
_ARENA_MASK = ARENA_ZSPAGES - 1

assert 1 << _OBJ_BITS == MAX_OBJS and 1 << _ARENA_SHIFT == ARENA_ZSPAGES
assert 1 << _ZSPAGE_SHIFT == ZSPAGE_SIZE and ZSPAGE_SIZE < 1 << 16


class ZsmallocPool(ZpoolLevels):
    """Mixed-size zspages with whole-zspage LRU eviction of ephemeral data."""

    name = "zsmalloc"
    max_size = MAX_ZSIZE

    __slots__ = (
        "frames", "flush",
        "_free", "_tail", "_used", "_flags", "_pfn", "_soff", "_ssize",
        "_ebuckets", "_pbuckets", "_emask", "_pmask", "_elru", "_plru",
        "_arena", "_arena_bytes", "_free_ids", "_next_id",
    )

    def __init__(self, frames: FrameAllocator, zc, zb, flush: FlushFn):
        self.frames = frames
        self.zc = zc
        self.zb = zb
        self.flush = flush
        # per zspage id
        # per zspage: lists and bytearrays, which CPython indexes faster than
        # arrays (every put and free reads and writes them); 11 more bytes of
        # bookkeeping per stored page than arrays, for their int objects
        self._free: list[int] = []     # free bytes (holes + tail)
        self._tail: list[int] = []     # end of the last object ever placed since compaction
        self._used: list[int] = []     # bit j: slot j holds an object (a free slot in O(1))
        self._flags = bytearray()
        self._pfn = array("q")     # ZSPAGE_PAGES frames per zspage
        # per slot: zspage id << 5 | slot
        self._soff = array("H")
        self._ssize = array("H")   # 0: free slot
        #: bucket -> set of zspage ids (None until first used), per kind
        self._ebuckets: list[set[int] | None] = [None] * NBUCKETS
        self._pbuckets: list[set[int] | None] = [None] * NBUCKETS
        self._emask = 0  # bit i: bucket i is not empty
        self._pmask = 0
        #: zspage ids, LRU first
        self._elru: dict[int, None] = {}
        self._plru: dict[int, None] = {}
        #: the arena bytearrays and views of them, written and read as zbud's are
        self._arena: list[memoryview] = []
        self._arena_bytes: list[bytearray] = []
        self._free_ids: list[int] = []
        self._next_id = 0
        # zpages in zspages (zcache's *_zpages also count metadata-only ones)
        self._eph_zp = 0
        self._pers_zp = 0
        zb.bind(self)

    # ----------------------------------------------------------- zspage ids

    def _new_id(self) -> int:
        if self._free_ids:
            return self._free_ids.pop()
        z = self._next_id
        if not z & _ARENA_MASK:
            grow = ARENA_ZSPAGES
            self._free.extend([0] * grow)
            self._tail.extend([0] * grow)
            self._used.extend([0] * grow)
            self._flags.extend(bytes(grow))
            self._pfn.extend(array("q", bytes(8 * grow * ZSPAGE_PAGES)))
            self._soff.extend(array("H", bytes(2 * grow * MAX_OBJS)))
            self._ssize.extend(array("H", bytes(2 * grow * MAX_OBJS)))
            buf = bytearray(ARENA_ZSPAGES * ZSPAGE_SIZE)
            self._arena_bytes.append(buf)
            self._arena.append(memoryview(buf))
        self._next_id = z + 1
        return z

    def _release(self, z: int) -> None:
        """Give zspage ``z``'s frames back to RAM and its id to the free list."""
        self._flags[z] = 0
        free = self.frames.free
        p0 = z * ZSPAGE_PAGES
        for pfn in self._pfn[p0:p0 + ZSPAGE_PAGES]:
            free(pfn)
        self._free_ids.append(z)

    def _new_zspage(self, eph: bool) -> int | None:
        """Frames for a new zspage, evicting ephemeral zspages if RAM is short."""
        pfns: list[int] = []
        zc = self.zc
        alloc = self.frames.alloc
        evicted = False
        while len(pfns) < ZSPAGE_PAGES:
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
        z = self._new_id()
        p0 = z * ZSPAGE_PAGES
        self._pfn[p0:p0 + ZSPAGE_PAGES] = array("q", pfns)
        self._tail[z] = 0
        self._used[z] = 0
        if eph:
            self._flags[z] = _F_USED | _F_EPH
            self._elru[z] = None
            v = zc.eph_pageframes + ZSPAGE_PAGES
            zc.eph_pageframes = v
            if v > zc.eph_pageframes_max:
                zc.eph_pageframes_max = v
        else:
            self._flags[z] = _F_USED
            self._plru[z] = None
            v = zc.pers_pageframes + ZSPAGE_PAGES
            zc.pers_pageframes = v
            if v > zc.pers_pageframes_max:
                zc.pers_pageframes_max = v
        return z

    # ------------------------------------------------------------ put side

    def create(self, eph: bool, cdata: bytes, oid: int, index: int, pool_id: int,
               client_id: int) -> int | None:
        """Store ``cdata`` (compressed) behind its tmem handle; the pampd, or None."""
        clen = len(cdata)
        zc = self.zc
        if clen > MAX_ZSIZE or not eph:
            if size_refused(zc, eph, clen, MAX_ZSIZE):
                return None
        size = clen + TMEM_HANDLE_SIZE
        need = (size + GRANULE - 1) >> GRANULE_SHIFT
        if eph:
            buckets = self._ebuckets
            mask = self._emask
        else:
            buckets = self._pbuckets
            mask = self._pmask
        m = mask >> need
        if m:
            # best fit: a zspage of the smallest bucket that fits
            b = need + (m & -m).bit_length() - 1
            bucket = buckets[b]
            assert bucket is not None  # its mask bit is set: the bucket has a zspage
            z = bucket.pop()
            if not bucket:
                mask &= _CLEAR[b]
            tail = self._tail[z]
            if tail + size > ZSPAGE_SIZE:
                tail = self._compact(z)
            free = self._free[z] - size
            lru = self._elru if eph else self._plru
            del lru[z]   # to the MRU end
            lru[z] = None
        else:
            fresh = self._new_zspage(eph)
            if fresh is None:
                return None
            z = fresh
            mask = self._emask if eph else self._pmask  # eviction may have changed it
            tail = 0
            free = ZSPAGE_SIZE - size
        s0 = z << _OBJ_BITS
        used = self._used[z]
        bit = ~used & (used + 1)  # the lowest free slot
        used |= bit
        self._used[z] = used
        i = s0 | (bit.bit_length() - 1)
        self._ssize[i] = size
        self._soff[i] = tail
        self._tail[z] = tail + size
        self._free[z] = free
        if used != _ALL_USED and free >= GRANULE:
            b = free >> GRANULE_SHIFT
            bucket = buckets[b]
            if bucket is None:
                bucket = buckets[b] = set()
            bucket.add(z)
            mask |= _BIT[b]
        if eph:
            self._emask = mask
        else:
            self._pmask = mask
        buf = self._arena[z >> _ARENA_SHIFT]
        off = ((z & _ARENA_MASK) << _ZSPAGE_SHIFT) + tail
        pack_handle_into(buf, off, oid.to_bytes(24, "little"), index, pool_id, client_id)
        buf[off + TMEM_HANDLE_SIZE:off + size] = cdata
        self._count_in(eph, size, clen)
        return i  # == z << 5 | slot

    def _compact(self, z: int) -> int:
        """Slide the live objects of ``z`` down over its holes; returns the new tail."""
        s0 = z << _OBJ_BITS
        soff = self._soff
        ssize = self._ssize
        live = sorted((soff[j], j) for j in range(s0, s0 + MAX_OBJS) if ssize[j])
        buf = self._arena[z >> _ARENA_SHIFT]
        base = (z & _ARENA_MASK) << _ZSPAGE_SHIFT
        pos = 0
        for off, j in live:
            n = ssize[j]
            if off != pos:
                buf[base + pos:base + pos + n] = bytes(buf[base + off:base + off + n])
                soff[j] = pos
            pos += n
        self._tail[z] = pos
        return pos

    # ------------------------------------------------------------ get side

    def read(self, pampd: int):
        """A copy of the compressed bytes of ``pampd`` (a bytearray), or None."""
        z = pampd >> _OBJ_BITS
        try:
            flags = self._flags[z]
        except IndexError:
            return None
        if not flags & _F_USED or flags & _F_DYING:
            return None
        size = self._ssize[pampd]
        if not size:
            return None
        off = ((z & _ARENA_MASK) << _ZSPAGE_SHIFT) + self._soff[pampd]
        return self._arena_bytes[z >> _ARENA_SHIFT][off + TMEM_HANDLE_SIZE:off + size]

    def free(self, pampd: int, eph: bool) -> None:
        self.read_and_free(pampd, eph, False)

    def read_and_free(self, pampd: int, eph: bool, copy: bool = True) -> bytearray | None:
        """:meth:`read` then :meth:`free` in one call, as every freeing get does them:
        the copy, or None (``copy`` false, or the zspage is being evicted)."""
        zc = self.zc
        if pampd < 0:  # zero- or same-filled: metadata only
            unaccount_filled(zc, eph, pampd)
            return None
        z = pampd >> _OBJ_BITS
        try:
            flags = self._flags[z]
        except IndexError:
            raise RuntimeError(f"zsmalloc: free of unknown pampd {pampd:#x}") from None
        if flags & _F_DYING:
            return None  # being evicted: its accounting is already done
        if not flags & _F_USED:
            raise RuntimeError(f"zsmalloc: free of unused pampd {pampd:#x}")
        ssize = self._ssize
        size = ssize[pampd]
        if not size:
            raise RuntimeError(f"zsmalloc: double free of pampd {pampd:#x}")
        ssize[pampd] = 0
        off = self._soff[pampd]
        data = None
        if copy:
            at = ((z & _ARENA_MASK) << _ZSPAGE_SHIFT) + off
            data = self._arena_bytes[z >> _ARENA_SHIFT][at + TMEM_HANDLE_SIZE:at + size]
        old = self._free[z]
        used = self._used[z]
        was_full = used == _ALL_USED
        used &= _SLOT_CLEAR[pampd & _OBJ_MASK]
        self._used[z] = used
        if flags & _F_EPH:
            self._eph_zp -= 1
            zc.eph_zpages -= 1
            zc.eph_zbytes -= size - TMEM_HANDLE_SIZE
            buckets = self._ebuckets
            mask = self._emask
        else:
            self._pers_zp -= 1
            zc.pers_zpages -= 1
            zc.pers_zbytes -= size - TMEM_HANDLE_SIZE
            buckets = self._pbuckets
            mask = self._pmask
        if not was_full and old >= GRANULE:  # off its bucket
            b = old >> GRANULE_SHIFT
            bucket = buckets[b]
            assert bucket is not None  # z is listed in it
            bucket.remove(z)
            if not bucket:
                mask &= _CLEAR[b]
        if used:
            free = old + size
            self._free[z] = free
            if off + size == self._tail[z]:
                self._tail[z] = off
            if free >= GRANULE:  # back on a bucket (a slot is free now)
                b = free >> GRANULE_SHIFT
                bucket = buckets[b]
                if bucket is None:
                    bucket = buckets[b] = set()
                bucket.add(z)
                mask |= _BIT[b]
        else:  # empty: frames back to RAM
            if flags & _F_EPH:
                del self._elru[z]
                zc.eph_pageframes -= ZSPAGE_PAGES
            else:
                del self._plru[z]
                zc.pers_pageframes -= ZSPAGE_PAGES
            self._free[z] = ZSPAGE_SIZE
            self._release(z)
        if flags & _F_EPH:
            self._emask = mask
        else:
            self._pmask = mask
        return data

    # ------------------------------------------------------------ eviction

    def evict_eph_frame(self) -> bool:
        """Evict the LRU ephemeral zspage (all its frames); False if there is none."""
        lru = self._elru
        if not lru:
            return False
        z = next(iter(lru))
        del lru[z]
        self._flags[z] |= _F_DYING
        free = self._free[z]
        if self._used[z] != _ALL_USED and free >= GRANULE:
            b = free >> GRANULE_SHIFT
            bucket = self._ebuckets[b]
            assert bucket is not None  # z is listed in it
            bucket.remove(z)
            if not bucket:
                self._emask &= ~(1 << b)
        s0 = z << _OBJ_BITS
        ssize = self._ssize
        soff = self._soff
        buf = self._arena[z >> _ARENA_SHIFT]
        base = (z & _ARENA_MASK) << _ZSPAGE_SHIFT
        handles = []
        zsize = 0
        for j in range(s0, s0 + MAX_OBJS):
            size = ssize[j]
            if size:
                handles.append(unpack_handle(buf, base + soff[j]))
                zsize += size - TMEM_HANDLE_SIZE
                ssize[j] = 0
        zpages = len(handles)
        zc = self.zc
        self.zb.eph_evicted_pageframes += ZSPAGE_PAGES
        zc.eph_zbytes -= zsize
        zc.eph_zpages -= zpages
        self._eph_zp -= zpages
        zc.evicted_eph_zpages += zpages
        zc.eph_pageframes -= ZSPAGE_PAGES
        zc.evicted_eph_pageframes += ZSPAGE_PAGES
        self._used[z] = 0
        self._free[z] = ZSPAGE_SIZE
        flush = self.flush
        for client_id, pool_id, oid, index in handles:
            flush(client_id, pool_id, oid, index)
        self._release(z)
        return True

    def shrink(self, nr_to_keep_frames: int) -> int:
        """Evict ephemeral zspages until at most ``nr_to_keep_frames`` frames remain;
        returns how many frames went back to RAM."""
        freed = 0
        zc = self.zc
        while zc.eph_pageframes > nr_to_keep_frames:
            if not self.evict_eph_frame():
                break
            freed += ZSPAGE_PAGES
        return freed

    # ------------------------------------------------------------- figures
    # The zbud/ levels, derived from zcache's counters (every object is its
    # compressed bytes + the 32-byte handle) or counted from the buckets.


    @staticmethod
    def _roomy(buckets) -> int:
        """Zspages that can take another object (on a bucket)."""
        return sum(len(b) for b in buckets if b)

    @property
    def eph_unbuddied_count(self) -> int:
        return self._roomy(self._ebuckets)

    @property
    def pers_unbuddied_count(self) -> int:
        return self._roomy(self._pbuckets)

    @property
    def eph_buddied_count(self) -> int:
        return len(self._elru) - self._roomy(self._ebuckets)

    @property
    def pers_buddied_count(self) -> int:
        return len(self._plru) - self._roomy(self._pbuckets)


    @property
    def arena_bytes(self) -> int:
        """Bytes reserved for zspage contents (the frames' storage)."""
        return len(self._arena) * ARENA_ZSPAGES * ZSPAGE_SIZE

    def lru(self, eph: bool) -> list[int]:
        """Zspage ids from LRU to MRU (tests and debugging)."""
        return list(self._elru if eph else self._plru)

    def zspage_of(self, pampd: int) -> int:
        return pampd >> _OBJ_BITS

    def objects(self, z: int) -> list[tuple[int, int, int]]:
        """(slot, offset, size) of the live objects of zspage ``z`` (tests)."""
        s0 = z << _OBJ_BITS
        return [(j - s0, self._soff[j], self._ssize[j])
                for j in range(s0, s0 + MAX_OBJS) if self._ssize[j]]

    def check(self) -> None:
        """Assert the buckets, slot tables and counters agree (tests)."""
        zb = self.zb
        for eph in (True, False):
            zspages = self.lru(eph)
            buckets = self._ebuckets if eph else self._pbuckets
            mask = self._emask if eph else self._pmask
            zpages = zbytes = roomy = 0
            for z in zspages:
                flags = self._flags[z]
                assert flags & _F_USED and not flags & _F_DYING, (z, flags)
                assert bool(flags & _F_EPH) == eph
                objs = self.objects(z)
                slots = sum(1 << j for j, _, _ in objs)
                assert objs and self._used[z] == slots, (z, objs)
                used = sum(size for _, _, size in objs)
                assert self._free[z] == ZSPAGE_SIZE - used, (z, self._free[z], used)
                end = 0
                for _, off, size in sorted(objs, key=lambda o: o[1]):
                    assert off >= end, ("overlap", z, objs)
                    end = off + size
                assert end <= self._tail[z] <= ZSPAGE_SIZE, (z, end, self._tail[z])
                zpages += len(objs)
                zbytes += used
                b = self._free[z] >> GRANULE_SHIFT
                listed = len(objs) < MAX_OBJS and self._free[z] >= GRANULE
                held = buckets[b]
                assert listed == (held is not None and z in held), z
                roomy += listed
            for b, bucket in enumerate(buckets):
                assert bool(bucket) == bool(mask >> b & 1), (eph, b)
                for z in bucket or ():
                    assert self._free[z] >> GRANULE_SHIFT == b and z in zspages, (b, z)
            assert self._roomy(buckets) == roomy
            pre = "eph_" if eph else "pers_"
            assert getattr(zb, pre + "pageframes") == len(zspages) * ZSPAGE_PAGES
            assert getattr(zb, pre + "zpages") == zpages
            assert getattr(zb, pre + "zbytes") == zbytes
            assert getattr(zb, pre + "unbuddied_count") == roomy
            assert getattr(zb, pre + "buddied_count") == len(zspages) - roomy
