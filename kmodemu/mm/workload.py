"""A mixed file-and-swap workload, seeded, for demos, scenarios and benchmarks.

It creates files in a directory, starts a process with anonymous memory,
then runs rounds of skewed file reads (a few hot files, many cold ones),
touches of the process's memory and a little extra memory pressure. The
same seed on the same machine gives the same report, byte for byte.
"""

from __future__ import annotations

import errno
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kmodemu.errors import KernelError
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.memory import MemoryManager

FILE_KINDS = ("text", "text", "binary", "mixed", "zero", "random")


@dataclass
class WorkloadSpec:
    seed: int = 1
    directory: str = "/mnt"
    files: int = 8
    file_size: int = 4 << 20
    anon: int = 16 << 20
    rounds: int = 4
    keep: bool = False


@dataclass
class WorkloadReport:
    """Totals of one run, plus the frontend counters' change during it."""

    pages_read: int = 0
    page_cache_hits: int = 0
    cleancache_hits: int = 0
    disk_reads: int = 0
    anon_faults: int = 0
    frontswap_loads: int = 0
    swap_disk_reads: int = 0
    swap_disk_writes: int = 0
    corrupt: int = 0
    cleancache: dict[str, int] = field(default_factory=dict)
    frontswap: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"pages read: {self.pages_read} (page cache {self.page_cache_hits}, "
               f"cleancache {self.cleancache_hits}, disk {self.disk_reads})",
               f"anon faults: {self.anon_faults} (frontswap {self.frontswap_loads}, "
               f"swap disk {self.swap_disk_reads}); swap disk writes: {self.swap_disk_writes}",
               f"corrupt pages: {self.corrupt}"]
        out.append("cleancache: " + " ".join(f"{k}={v}" for k, v in self.cleancache.items()))
        out.append("frontswap: " + " ".join(f"{k}={v}" for k, v in self.frontswap.items()))
        return out


def run_workload(mm: "MemoryManager", spec: WorkloadSpec) -> WorkloadReport:
    """Run the workload; raises ``KernelError`` (e.g. ENOENT for a missing directory)."""
    rng = random.Random(spec.seed)
    cc0, fs0 = dict(mm.cleancache.counters()), dict(mm.frontswap.counters())
    writes0 = mm.swap.swap_writes
    rep = WorkloadReport()
    base = spec.directory.rstrip("/")
    paths = []
    if not mm.fs.is_dir(spec.directory):
        raise KernelError(errno.ENOENT)
    for i in range(spec.files):
        kind = FILE_KINDS[rng.randrange(len(FILE_KINDS))]
        size = max(PAGE_SIZE, spec.file_size // 2 + rng.randrange(spec.file_size + 1))
        path = f"{base}/wl{spec.seed}-{i}"
        mm.fs.create(path, size, Content(mm.corpus, kind, rng.getrandbits(32)))
        paths.append(path)
    pname = f"wl{spec.seed}"
    npages = spec.anon // PAGE_SIZE
    if npages:
        mm.anon.alloc(pname, npages, Content(mm.corpus, "mixed", rng.getrandbits(32)))
    try:
        for _ in range(spec.rounds):
            for _ in range(max(1, spec.files)):
                if not paths:
                    break
                # hot files (the first quarter) are read three times as often
                if rng.random() < 0.6:
                    path = paths[rng.randrange(max(1, len(paths) // 4))]
                else:
                    path = paths[rng.randrange(len(paths))]
                st = mm.pagecache.read(mm.fs.lookup(path))
                rep.pages_read += st.pages
                rep.page_cache_hits += st.cached
                rep.cleancache_hits += st.cleancache_hits
                rep.disk_reads += st.disk_reads
                rep.corrupt += st.corrupt
            if npages:
                t = mm.anon.touch(pname)
                rep.anon_faults += t.from_frontswap + t.from_disk
                rep.frontswap_loads += t.from_frontswap
                rep.swap_disk_reads += t.from_disk
                rep.corrupt += t.corrupt
            mm.reclaim(rng.randrange(16, 256))
    finally:
        if not spec.keep:
            if npages and pname in mm.anon.processes:
                mm.anon.kill(pname)
            for path in paths:
                mm.fs.unlink(path)
    rep.swap_disk_writes = mm.swap.swap_writes - writes0
    rep.cleancache = {k: v - cc0[k] for k, v in mm.cleancache.counters().items()}
    rep.frontswap = {k: v - fs0[k] for k, v in mm.frontswap.counters().items()}
    return rep
