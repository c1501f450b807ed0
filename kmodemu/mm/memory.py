"""``kernel.mm``: the memory model's front door.

It owns the frame pool, the shrinker registry and (as they are attached) the
page cache, the filesystems, swap and processes, and answers ``/proc/meminfo``.
Allocation for the page cache and anonymous memory goes through
``alloc_frame``, which runs reclaim below the low watermark like kswapd and
direct reclaim would.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable

from kmodemu.errors import KernelError
from kmodemu.kernel.printk import KERN_ERR
from kmodemu.mm.anon import Anon
from kmodemu.mm.corpus import Corpus
from kmodemu.mm.filesystem import Filesystems
from kmodemu.mm.frames import Frames
from kmodemu.mm.page import PAGE_SIZE
from kmodemu.mm.pagecache import PageCache
from kmodemu.mm.reclaim import Reclaim
from kmodemu.mm.swap import Swap

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel
    from kmodemu.mm.cleancache import Cleancache
    from kmodemu.mm.frontswap import Frontswap

#: share of RAM the kernel keeps for itself (text, slab, page tables): 1/16
KERNEL_RESERVE_SHIFT = 4

Shrinker = Callable[[int], int]


class MemoryManager:
    """RAM frames, shrinkers and the memory users of one kernel."""

    def __init__(self, kernel: "Kernel", cleancache: "Cleancache", frontswap: "Frontswap"):
        self.kernel = kernel
        self.cleancache = cleancache
        self.frontswap = frontswap
        total = kernel.mem_bytes // PAGE_SIZE
        self.frames = Frames(total, total >> KERNEL_RESERVE_SHIFT)
        self.shrinkers: list[Shrinker] = []
        self.swappiness = 60
        self.oom_events = 0
        self._attach_users()
        self._proc_files()

    def _attach_users(self) -> None:
        """Page cache, filesystems, swap and processes (each module has one job)."""
        self.corpus = Corpus(self.kernel.rng.getrandbits(64))
        self.pagecache = PageCache(self)
        self.fs = Filesystems(self)
        self.swap = Swap(self)
        self.anon = Anon(self)
        self.frontswap.swap_info = self.swap.swap_info
        self.frontswap.swap = self.swap
        self.reclaimer = Reclaim(self)

    # -- shrinkers ------------------------------------------------------------------
    def register_shrinker(self, shrinker: Shrinker) -> None:
        """``register_shrinker``: reclaim calls ``shrinker(n)`` (n ≥ 1) to free up to ``n``
        frames; it returns how many it freed. An optional ``shrinker.count_objects()``
        tells how many it could free (default: all frames tmem backends hold)."""
        self.shrinkers.append(shrinker)

    def unregister_shrinker(self, shrinker: Shrinker) -> None:
        if shrinker in self.shrinkers:
            self.shrinkers.remove(shrinker)

    # -- allocation -----------------------------------------------------------------
    def alloc_frame(self, kind: str) -> int:
        """A frame for the page cache or a process: reclaim first when memory is low.

        Raises ``KernelError(ENOMEM)`` when reclaim cannot produce a single
        frame (kmodemu fails the operation where Linux would invoke the OOM
        killer).
        """
        frames = self.frames
        if frames.nr_free <= frames.wmark_low:
            self.reclaimer.reclaim(frames.wmark_high - frames.nr_free + 1)
        pfn = frames.take(kind)
        if pfn is None:
            self.oom_events += 1
            self.kernel.printk(f"kmodemu: out of memory allocating a {kind} page", KERN_ERR)
            raise KernelError(errno.ENOMEM)
        return pfn

    def free_frame(self, pfn: int) -> None:
        self.frames.release(pfn)

    def reclaim(self, pages: int) -> int:
        """Try to free ``pages`` frames now (memory pressure); return how many were freed."""
        return self.reclaimer.reclaim(pages)

    def drop_caches(self, mode: int = 1) -> int:
        """``echo N > /proc/sys/vm/drop_caches``: clean unmapped file pages go (into cleancache)."""
        dropped = 0
        if mode & 1:
            dropped = self.pagecache.drop_all()
        return dropped

    # -- reporting ------------------------------------------------------------------
    def lru_sizes(self) -> tuple[int, int, int, int]:
        """(active file, inactive file, active anon, inactive anon) pages, as zcache samples them."""
        pc, an = self.pagecache, self.anon
        return (len(pc.active), len(pc.inactive), len(an.active), len(an.inactive))

    def vmstat(self) -> str:
        """``/proc/vmstat``: the counters kmodemu keeps (swap I/O counts real device I/O only)."""
        f, pc, an, sw = self.frames, self.pagecache, self.anon, self.swap
        rows = [("nr_free_pages", f.nr_free), ("nr_inactive_anon", len(an.inactive)),
                ("nr_active_anon", len(an.active)), ("nr_inactive_file", len(pc.inactive)),
                ("nr_active_file", len(pc.active)), ("nr_unevictable", pc.nr_unevictable),
                ("nr_anon_pages", f.used["anon"]), ("nr_file_pages", f.used["file"]),
                ("nr_shmem", pc.nr_unevictable),
                ("pgpgin", (pc.disk_reads + sw.swap_reads) * (PAGE_SIZE >> 10)),
                ("pgpgout", sw.swap_writes * (PAGE_SIZE >> 10)),
                ("pswpin", sw.swap_reads), ("pswpout", sw.swap_writes),
                ("pgsteal_file", pc.evicted), ("pgsteal_anon", an.swapped_out),
                ("pgmajfault", pc.disk_reads + an.swapped_in)]
        return "".join(f"{name} {value}\n" for name, value in rows)

    def usage(self) -> dict[str, int]:
        """Frames by kind plus free, and swap in pages."""
        f = self.frames
        return {"total": f.total, "free": f.nr_free, **f.used,
                "swap_total": self.swap.total_pages(), "swap_free": self.swap.free_pages()}

    def meminfo(self) -> str:
        f, pc, sw, an = self.frames, self.pagecache, self.swap, self.anon
        kb = PAGE_SIZE >> 10
        total = f.total - f.used["kernel"]
        rows = [
            ("MemTotal", total), ("MemFree", f.nr_free),
            ("MemAvailable", f.nr_free + pc.evictable_pages()),
            ("Buffers", 0), ("Cached", f.used["file"]), ("SwapCached", 0),
            ("Active", pc.nr_active + len(an.active)),
            ("Inactive", pc.nr_inactive + len(an.inactive)),
            ("Active(anon)", len(an.active)), ("Inactive(anon)", len(an.inactive)),
            ("Active(file)", pc.nr_active), ("Inactive(file)", pc.nr_inactive),
            ("Unevictable", pc.nr_unevictable),
            ("SwapTotal", sw.total_pages()), ("SwapFree", sw.free_pages()),
            ("AnonPages", f.used["anon"]), ("Shmem", pc.nr_unevictable),
            ("TmemBackend", f.used["tmem"]),
        ]
        return "".join(f"{name + ':':<16}{n * kb:>8} kB\n" for name, n in rows)

    def _proc_files(self) -> None:
        v = self.kernel.vfs
        v.add_file("/proc/meminfo", self.meminfo)
        v.add_file("/proc/mounts", self.fs.proc_mounts)
        v.add_file("/proc/swaps", self.swap.proc_swaps)
        v.add_file("/proc/vmstat", self.vmstat)
        v.add_file("/proc/sys/vm/drop_caches", lambda: "0\n", self._write_drop_caches, 0o644)
        v.add_file("/proc/sys/vm/swappiness", lambda: f"{self.swappiness}\n",
                   self._write_swappiness, 0o644)

    def _write_drop_caches(self, text: str) -> None:
        try:
            mode = int(text.strip())
        except ValueError:
            raise KernelError(errno.EINVAL) from None
        if not 1 <= mode <= 4:
            raise KernelError(errno.EINVAL)
        self.drop_caches(mode)

    def _write_swappiness(self, text: str) -> None:
        try:
            value = int(text.strip())
        except ValueError:
            raise KernelError(errno.EINVAL) from None
        if not 0 <= value <= 100:
            raise KernelError(errno.EINVAL)
        self.swappiness = value

    # -- events ---------------------------------------------------------------------
    def event(self, name: str, **kw: Any) -> None:
        getattr(self.kernel.hook, name)(kernel=self.kernel, **kw)
