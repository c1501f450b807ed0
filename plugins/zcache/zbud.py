"""zbud: at most two compressed zpages ("buddies") per page frame, as in zcache2.

A frame is cut in 64-byte chunks.  Buddy 0 starts at offset 0, buddy 1 ends at
the end of the frame; each is the 32-byte tmem handle followed by the
compressed data, so eviction can read back which tmem entries to flush.  Frames
that hold one buddy sit on an "unbuddied" list indexed by the chunks it uses; a
new zpage goes to the fullest frame it still fits in, else to a fresh frame.
Ephemeral and persistent frames never mix and each kind has its own LRU: a
frame moves to the MRU end when a zpage is added to it, not when one leaves.

When the frame allocator is out of RAM, the LRU *ephemeral* frame is evicted
(its 1-2 entries flushed from tmem through ``flush``) and reused, for either
kind of put; persistent frames are never evicted.

Storage is real: the bytes live in an arena of 4 KiB slots (grown 64 frames at
a time, written through memoryviews, read as copies), and per-frame metadata
is indexed by a frame id, with list heads as sentinel ids — the ``struct
page`` overlay of the kernel, without one Python object per frame: buddy sizes
and pfns in flat ``array``s, flags in a bytearray, and the LRU and unbuddied
links in lists (CPython indexes a list about 4x faster than an array, and
every put and free relinks; 26 more bytes per stored page, 118 in all).
A pampd is ``frame_id << 1 | budnum``.
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

CHUNK_SHIFT = 6
CHUNK_SIZE = 1 << CHUNK_SHIFT
NCHUNKS = PAGE_SIZE >> CHUNK_SHIFT
MAX_CHUNK = NCHUNKS - 1
#: largest buddy, handle included
MAX_SIZE = MAX_CHUNK << CHUNK_SHIFT
#: largest compressed zpage zbud accepts (zbud_max_buddy_size)
MAX_BUDDY_SIZE = MAX_SIZE - TMEM_HANDLE_SIZE

# Sentinel ids of the intrusive lists: unbuddied[eph][i] is i (eph) or
# NCHUNKS + i (pers); the two LRUs follow; real frames start at _BASE.
_PERS_BUD = NCHUNKS
_EPH_LRU = 2 * NCHUNKS
_PERS_LRU = _EPH_LRU + 1
_BASE = _PERS_LRU + 1

#: by chunk count n: the unbuddied lists a zpage of n chunks fits in (0..NCHUNKS-n),
#: and list n's bit set and cleared: the masks are 65-bit ints, and computing one on a
#: put or free costs about 45 ns more than looking it up (timed alone)
_FITS = tuple((2 << (NCHUNKS - n)) - 1 for n in range(NCHUNKS + 1))
_BIT = tuple(1 << n for n in range(NCHUNKS + 1))
_CLEAR = tuple(~(1 << n) for n in range(NCHUNKS + 1))

_F_EPH = 1
_F_DYING = 2
_F_USED = 4
#: taken off the LRU by RAMster's remotify (zbud_make_zombie_lru): never reused or evicted
_F_ZOMBIE = 8

#: frames added to the arena at a time
ARENA_BATCH = 64
_ARENA_SHIFT = 6
_ARENA_MASK = ARENA_BATCH - 1


def size_to_chunks(size: int) -> int:
    """Chunks a buddy of ``size`` bytes (handle included) occupies."""
    return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT


class ZbudPool(ZpoolLevels):
    """The zbud allocator of one zcache instance (both ephemeral and persistent).

    ``zc`` / ``zb`` are the zcache/ and zbud/ counters it keeps up to date;
    ``flush(client_id, pool_id, oid, index)`` makes tmem forget an evicted zpage.
    """

    name = "zbud"
    #: largest compressed zpage this allocator stores
    max_size = MAX_BUDDY_SIZE

    __slots__ = (
        "frames", "flush",
        "_size0", "_size1", "_flags", "_pfn",
        "_lprev", "_lnext", "_bprev", "_bnext",
        "_emask", "_pmask",
        "_arena", "_arena_bytes", "_free_ids", "_next_id", "_cap",
    )

    def __init__(self, frames: FrameAllocator, zc, zb, flush: FlushFn):
        self.frames = frames
        self.zc = zc
        self.zb = zb
        self.flush = flush
        ids = range(_BASE)
        self._size0 = array("H", bytes(2 * _BASE))
        self._size1 = array("H", bytes(2 * _BASE))
        self._flags = bytearray(_BASE)
        self._pfn = array("q", bytes(8 * _BASE))
        # the links are lists, not arrays: CPython specialises list[int] reads
        # and writes (~9 ns against ~35-45 ns for an array), and every put and
        # free relinks; the ids they hold are shared int objects, so a frame
        # costs 4 pointers (and one int) more than the arrays did
        self._lprev = list(ids)
        self._lnext = list(ids)
        self._bprev = list(ids)
        self._bnext = list(ids)
        self._emask = 0  # bit i: eph unbuddied list i is not empty
        self._pmask = 0
        #: the arena bytearrays, and memoryviews of them: zpages are written through
        #: the views (half the cost of a bytearray slice assignment) and read as
        #: bytearray slices (zstd decompresses a copy faster than a view: ~0.3 us a get)
        self._arena: list[memoryview] = []
        self._arena_bytes: list[bytearray] = []
        self._free_ids: list[int] = []
        self._next_id = _BASE
        self._cap = _BASE
        # zpages in frames (zcache's *_zpages also count metadata-only ones)
        self._eph_zp = 0
        self._pers_zp = 0
        zb.bind(self)

    # ----------------------------------------------------------- frame ids

    def _new_id(self) -> int:
        if self._free_ids:
            return self._free_ids.pop()
        f = self._next_id
        if f == self._cap:
            grow = ARENA_BATCH
            self._size0.extend(array("H", bytes(2 * grow)))
            self._size1.extend(array("H", bytes(2 * grow)))
            self._flags.extend(bytes(grow))
            self._pfn.extend(array("q", bytes(8 * grow)))
            fresh = list(range(f, f + grow))
            self._lprev.extend(fresh)
            self._lnext.extend(fresh)
            self._bprev.extend(fresh)
            self._bnext.extend(fresh)
            buf = bytearray(ARENA_BATCH * PAGE_SIZE)
            self._arena_bytes.append(buf)
            self._arena.append(memoryview(buf))
            self._cap += grow
        self._next_id = f + 1
        return f

    def _release(self, f: int) -> None:
        """Give frame ``f`` back to the frame allocator."""
        self._flags[f] = 0
        self.frames.free(self._pfn[f])
        self._free_ids.append(f)

    def _offset(self, f: int, budnum: int, size: int) -> tuple[memoryview, int]:
        slot = f - _BASE
        base = (slot & _ARENA_MASK) << 12
        if budnum:
            base += PAGE_SIZE - ((size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1))
        return self._arena[slot >> _ARENA_SHIFT], base

    # ------------------------------------------------------------ put side

    def create(self, eph: bool, cdata: bytes, oid: int, index: int, pool_id: int,
               client_id: int) -> int | None:
        """Store ``cdata`` (compressed) behind its tmem handle; the pampd, or None.

        None means refused by the size policy (``compress_poor``...) or no
        frame could be found, even by evicting an ephemeral one.
        """
        clen = len(cdata)
        zc = self.zc
        if clen > MAX_BUDDY_SIZE or not eph:
            if size_refused(zc, eph, clen, MAX_BUDDY_SIZE):
                return None
        size = clen + TMEM_HANDLE_SIZE
        nchunks = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT
        bprev = self._bprev
        bnext = self._bnext
        lprev = self._lprev
        lnext = self._lnext
        m = (self._emask if eph else self._pmask) & _FITS[nchunks]
        if m:
            # zbud_match_prep: the fullest unbuddied frame that still fits
            i = m.bit_length() - 1
            sent = i if eph else _PERS_BUD + i
            f = bnext[sent]
            n = bnext[f]
            bnext[sent] = n
            bprev[n] = sent
            bnext[f] = f
            bprev[f] = f
            if n == sent:
                if eph:
                    self._emask &= _CLEAR[i]
                else:
                    self._pmask &= _CLEAR[i]
            # promote to MRU
            lru = _EPH_LRU if eph else _PERS_LRU
            p = lprev[f]
            n = lnext[f]
            lnext[p] = n
            lprev[n] = p
            t = lprev[lru]
            lnext[t] = f
            lprev[f] = t
            lnext[f] = lru
            lprev[lru] = f
            if self._size0[f]:
                budnum = 1
                self._size1[f] = size
            else:
                budnum = 0
                self._size0[f] = size
        else:
            # zbud_create_prep in a fresh (or freshly evicted) frame
            fresh = self._get_frame(eph)
            if fresh is None:
                return None
            f = fresh
            budnum = 0
            self._size0[f] = size
            self._flags[f] = _F_USED | _F_EPH if eph else _F_USED
            sent = nchunks if eph else _PERS_BUD + nchunks
            t = bprev[sent]
            bnext[t] = f
            bprev[f] = t
            bnext[f] = sent
            bprev[sent] = f
            if eph:
                self._emask |= _BIT[nchunks]
            else:
                self._pmask |= _BIT[nchunks]
            lru = _EPH_LRU if eph else _PERS_LRU
            t = lprev[lru]
            lnext[t] = f
            lprev[f] = t
            lnext[f] = lru
            lprev[lru] = f
            if eph:
                v = zc.eph_pageframes + 1
                zc.eph_pageframes = v
                if v > zc.eph_pageframes_max:
                    zc.eph_pageframes_max = v
            else:
                v = zc.pers_pageframes + 1
                zc.pers_pageframes = v
                if v > zc.pers_pageframes_max:
                    zc.pers_pageframes_max = v
        # zbud_init_zbud: the handle, then the data
        slot = f - _BASE
        base = (slot & _ARENA_MASK) << 12
        if budnum:
            base += PAGE_SIZE - (nchunks << CHUNK_SHIFT)
        buf = self._arena[slot >> _ARENA_SHIFT]
        pack_handle_into(buf, base, oid.to_bytes(24, "little"), index, pool_id, client_id)
        buf[base + TMEM_HANDLE_SIZE:base + size] = cdata
        self._count_in(eph, size, clen)
        return (f << 1) | budnum

    def _get_frame(self, eph: bool) -> int | None:
        """A frame for a new zpage: fresh from the allocator, else the ouroboros."""
        pfn = self.frames.alloc()
        zc = self.zc
        if pfn is None:
            zc.failed_getfreepages += 1
            f = self._evict_lru()
            if f is None:
                if eph:
                    zc.eph_ate_tail_failed += 1
                else:
                    zc.pers_ate_eph_failed += 1
                return None
            if eph:
                zc.eph_ate_tail += 1
            else:
                zc.pers_ate_eph += 1
            return f
        f = self._new_id()
        self._pfn[f] = pfn
        return f

    # ------------------------------------------------------------ get side

    def read(self, pampd: int):
        """A copy of the compressed bytes of ``pampd`` (a bytearray), or None."""
        f = pampd >> 1
        flags = self._flags[f]
        if not flags & _F_USED or flags & _F_DYING:
            return None
        if pampd & 1:
            size = self._size1[f]
        else:
            size = self._size0[f]
        if not size:
            return None
        slot = f - _BASE
        base = (slot & _ARENA_MASK) << 12
        if pampd & 1:
            base += PAGE_SIZE - ((size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1))
        return self._arena_bytes[slot >> _ARENA_SHIFT][base + TMEM_HANDLE_SIZE:base + size]

    def free(self, pampd: int, eph: bool) -> None:
        """zbud_free_and_delist plus zcache's accounting; the frame goes back when empty."""
        self.read_and_free(pampd, eph, False)

    def read_and_free(self, pampd: int, eph: bool, copy: bool = True) -> bytearray | None:
        """:meth:`read` then :meth:`free` in one call, as every freeing get does them
        (zcache_pampd_get_data_and_free): the copy, or None (``copy`` false, or the
        zpage is being evicted)."""
        zc = self.zc
        if pampd < 0:  # zero- or same-filled: metadata only
            unaccount_filled(zc, eph, pampd)
            return None
        f = pampd >> 1
        flags = self._flags[f]
        if flags & _F_DYING:
            return None  # being evicted: its accounting is already done
        if not flags & _F_USED:
            raise RuntimeError(f"zbud: free of unused pampd {pampd:#x}")
        in_eph = flags & _F_EPH  # the frame says which; the caller's flag is for filled pampds
        if pampd & 1:
            size = self._size1[f]
            other = self._size0[f]
            self._size1[f] = 0
        else:
            size = self._size0[f]
            other = self._size1[f]
            self._size0[f] = 0
        if not size:
            raise RuntimeError(f"zbud: double free of pampd {pampd:#x}")
        data = None
        if copy:
            slot = f - _BASE
            base = (slot & _ARENA_MASK) << 12
            if pampd & 1:
                base += PAGE_SIZE - ((size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1))
            data = self._arena_bytes[slot >> _ARENA_SHIFT][base + TMEM_HANDLE_SIZE:base + size]
        clen = size - TMEM_HANDLE_SIZE
        if in_eph:
            self._eph_zp -= 1
            zc.eph_zpages -= 1
            zc.eph_zbytes -= clen
        else:
            self._pers_zp -= 1
            zc.pers_zpages -= 1
            zc.pers_zbytes -= clen
        if flags & _F_ZOMBIE:  # off every list already: back to RAM once empty
            if not other:
                if eph:
                    zc.eph_pageframes -= 1
                else:
                    zc.pers_pageframes -= 1
                self._release(f)
            return data
        bprev = self._bprev
        bnext = self._bnext
        if not other:
            # was unbuddied: off its list and the LRU, frame back to RAM
            p = bprev[f]
            n = bnext[f]
            bnext[p] = n
            bprev[n] = p
            if n == p:  # the list is empty now (only the sentinel is left)
                i = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT
                if in_eph:
                    self._emask &= _CLEAR[i]
                else:
                    self._pmask &= _CLEAR[i]
            lprev = self._lprev
            lnext = self._lnext
            p = lprev[f]
            n = lnext[f]
            lnext[p] = n
            lprev[n] = p
            lprev[f] = f
            lnext[f] = f
            bprev[f] = f
            bnext[f] = f
            if in_eph:
                zc.eph_pageframes -= 1
            else:
                zc.pers_pageframes -= 1
            # _release written out: a call fewer on every frame a free empties
            self._flags[f] = 0
            self.frames.free(self._pfn[f])
            self._free_ids.append(f)
        else:
            # was buddied: the remaining buddy goes to its unbuddied list
            i = (other + CHUNK_SIZE - 1) >> CHUNK_SHIFT
            sent = i if in_eph else _PERS_BUD + i
            t = bprev[sent]
            bnext[t] = f
            bprev[f] = t
            bnext[f] = sent
            bprev[sent] = f
            if in_eph:
                self._emask |= _BIT[i]
            else:
                self._pmask |= _BIT[i]
        return data

    # ------------------------------------------------------------ eviction

    def _evict_lru(self) -> int | None:
        """zbud_evict_pageframe_lru: empty the LRU ephemeral frame, flushing tmem.

        Returns the frame id, still holding its pfn (the caller reuses or
        releases it), or None when there is no ephemeral frame.
        """
        lnext = self._lnext
        lprev = self._lprev
        f = lnext[_EPH_LRU]
        if f == _EPH_LRU:
            return None
        self._flags[f] |= _F_DYING
        n = lnext[f]
        lnext[_EPH_LRU] = n
        lprev[n] = _EPH_LRU
        lnext[f] = f
        lprev[f] = f
        bprev = self._bprev
        bnext = self._bnext
        s0 = self._size0[f]
        s1 = self._size1[f]
        if bnext[f] != f:  # unbuddied: off its list
            p = bprev[f]
            n = bnext[f]
            bnext[p] = n
            bprev[n] = p
            bnext[f] = f
            bprev[f] = f
            if n == p:
                self._emask &= ~(1 << (((s0 or s1) + CHUNK_SIZE - 1) >> CHUNK_SHIFT))
        zb = self.zb
        zc = self.zc
        zb.eph_evicted_pageframes += 1
        handles = []
        zpages = 0
        zsize = 0
        for budnum, size in ((0, s0), (1, s1)):
            if size:
                buf, base = self._offset(f, budnum, size)
                handles.append(unpack_handle(buf, base))
                zpages += 1
                zsize += size - TMEM_HANDLE_SIZE
        zc.eph_zbytes -= zsize
        zc.eph_zpages -= zpages
        self._eph_zp -= zpages
        zc.evicted_eph_zpages += zpages
        zc.eph_pageframes -= 1
        zc.evicted_eph_pageframes += 1
        flush = self.flush
        for client_id, pool_id, oid, index in handles:
            flush(client_id, pool_id, oid, index)
        self._size0[f] = 0
        self._size1[f] = 0
        self._flags[f] = 0
        return f

    def make_zombie_lru(self, eph: bool) -> list[tuple[tuple[int, int, int, int], bytes]]:
        """zbud_make_zombie_lru: take the LRU frame of a kind off every list for RAMster.

        Returns its zpages (handle, compressed bytes); they stay allocated and
        readable until tmem frees them (RAMster replaces them with remote
        descriptors, or leaves them there if the remote put failed). The frame
        is never matched, evicted or picked again.
        """
        head = _EPH_LRU if eph else _PERS_LRU
        lnext = self._lnext
        lprev = self._lprev
        f = lnext[head]
        if f == head:
            return []
        n = lnext[f]
        lnext[head] = n
        lprev[n] = head
        lnext[f] = f
        lprev[f] = f
        bprev = self._bprev
        bnext = self._bnext
        s0 = self._size0[f]
        s1 = self._size1[f]
        if bnext[f] != f:  # unbuddied: off its list
            p = bprev[f]
            n = bnext[f]
            bnext[p] = n
            bprev[n] = p
            bnext[f] = f
            bprev[f] = f
            if n == p:
                bit = 1 << (((s0 or s1) + CHUNK_SIZE - 1) >> CHUNK_SHIFT)
                if eph:
                    self._emask &= ~bit
                else:
                    self._pmask &= ~bit
        self._flags[f] |= _F_ZOMBIE
        out = []
        for budnum, size in ((0, s0), (1, s1)):
            if size:
                buf, base = self._offset(f, budnum, size)
                out.append((unpack_handle(buf, base),
                            bytes(buf[base + TMEM_HANDLE_SIZE:base + size])))
        return out

    def write(self, pampd: int, data: bytes) -> None:
        """zbud_copy_to_zbud: fill a zpage made by ``create`` with its real bytes (same size)."""
        f = pampd >> 1
        size = self._size1[f] if pampd & 1 else self._size0[f]
        if size - TMEM_HANDLE_SIZE != len(data):
            raise ValueError("zbud: write of a different size than was reserved")
        buf, base = self._offset(f, pampd & 1, size)
        buf[base + TMEM_HANDLE_SIZE:base + size] = data

    def evict_eph_frame(self) -> bool:
        """Evict the LRU ephemeral frame and give it back to RAM; False if none."""
        f = self._evict_lru()
        if f is None:
            return False
        self._release(f)
        return True

    def shrink(self, nr_to_keep_frames: int) -> int:
        """The shrinker: evict ephemeral frames until at most ``nr_to_keep_frames``
        remain; returns how many frames went back to RAM."""
        freed = 0
        zc = self.zc
        while zc.eph_pageframes > nr_to_keep_frames:
            if not self.evict_eph_frame():
                break
            freed += 1
        return freed

    # ------------------------------------------------------------- figures
    # The zbud/ levels, derived from zcache's counters instead of kept twice:
    # a frame holds one or two zpages, so buddied = zpages - frames.

    # zcache counts metadata-only (zero- and same-filled) zpages too; zbud does not

    @property
    def eph_buddied_count(self) -> int:
        return self.eph_zpages - self.zc.eph_pageframes

    @property
    def pers_buddied_count(self) -> int:
        return self.pers_zpages - self.zc.pers_pageframes

    @property
    def eph_unbuddied_count(self) -> int:
        return 2 * self.zc.eph_pageframes - self.eph_zpages

    @property
    def pers_unbuddied_count(self) -> int:
        return 2 * self.zc.pers_pageframes - self.pers_zpages


    @property
    def arena_bytes(self) -> int:
        """Bytes reserved for frame contents (the frames' storage)."""
        return len(self._arena) * ARENA_BATCH * PAGE_SIZE

    def lru(self, eph: bool) -> list[int]:
        """Frame ids from LRU to MRU (tests and debugging)."""
        head = _EPH_LRU if eph else _PERS_LRU
        out = []
        f = self._lnext[head]
        while f != head:
            out.append(f)
            f = self._lnext[f]
        return out

    def frame_of(self, pampd: int) -> int:
        return pampd >> 1

    def check(self) -> None:
        """Assert the lists and counters agree with the frames (tests)."""
        zb = self.zb
        for eph in (True, False):
            frames = self.lru(eph)
            mask = self._emask if eph else self._pmask
            buddied = unbuddied = zpages = zbytes = 0
            for f in frames:
                flags = self._flags[f]
                assert flags & _F_USED and not flags & _F_DYING, (f, flags)
                assert bool(flags & _F_EPH) == eph
                s0, s1 = self._size0[f], self._size1[f]
                assert s0 or s1
                assert size_to_chunks(s0) + size_to_chunks(s1) <= NCHUNKS
                zpages += (s0 > 0) + (s1 > 0)
                zbytes += s0 + s1
                if s0 and s1:
                    buddied += 1
                    assert self._bnext[f] == f
                else:
                    unbuddied += 1
                    i = size_to_chunks(s0 or s1)
                    assert mask >> i & 1, (f, i)
            listed = 0
            for i in range(NCHUNKS):
                sent = i if eph else _PERS_BUD + i
                g = self._bnext[sent]
                assert (g != sent) == bool(mask >> i & 1), (eph, i)
                while g != sent:
                    assert size_to_chunks(self._size0[g] or self._size1[g]) == i
                    listed += 1
                    g = self._bnext[g]
            assert listed == unbuddied
            nframes = len(frames)
            for f in range(_BASE, self._next_id):  # RAMster's zombies: on no list, still counted
                flags = self._flags[f]
                if flags & _F_ZOMBIE and flags & _F_USED and bool(flags & _F_EPH) == eph:
                    s0, s1 = self._size0[f], self._size1[f]
                    nframes += 1
                    zpages += (s0 > 0) + (s1 > 0)
                    zbytes += s0 + s1
                    if s0 and s1:
                        buddied += 1
                    else:
                        unbuddied += 1
            pre = "eph_" if eph else "pers_"
            assert getattr(zb, pre + "pageframes") == nframes
            assert getattr(zb, pre + "buddied_count") == buddied
            assert getattr(zb, pre + "unbuddied_count") == unbuddied
            assert getattr(zb, pre + "zpages") == zpages
            assert getattr(zb, pre + "zbytes") == zbytes
