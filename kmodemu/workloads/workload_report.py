"""What a workload run measured: the printed report and its /proc/vmstat-style counters.

Kept apart from the run itself so scenarios, benchmarks and the demo can
read one metrics object (``WorkloadReport``) whichever way the run started.
Every counter is a ``name value`` pair, the way /proc/vmstat shows the
kernel's; ``COUNTERS`` says what each one means (docs/memory-model.md lists
the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: every fixed counter name, in /proc/kmodemu/workload order, with its meaning
COUNTERS = {
    "rounds": "rounds run",
    "virtual_us": "virtual time the run took, in microseconds",
    "working_set_pages": "pages of the files the run created (its file working set)",
    "anon_pages": "pages of the run's process",
    "anon_touches": "accesses to the process's pages (resident or not)",
    "pages_read": "file pages read (every page of every read)",
    "pages_cached": "of those, found in the page cache",
    "cleancache_hits": "page-cache misses served by cleancache",
    "disk_reads": "page-cache misses read from the disk",
    "disk_reads_avoided": "disk reads cleancache saved (= cleancache_hits)",
    "swap_out": "anonymous pages swapped out during the run",
    "swap_out_frontswap": "of those, kept by frontswap",
    "swap_disk_writes": "pages written to a swap device",
    "swap_disk_writes_avoided": "swap writes frontswap saved (= swap_out_frontswap)",
    "anon_faults": "faults on swapped-out pages of the process",
    "anon_faults_frontswap": "of those, served by frontswap",
    "swap_disk_reads": "of those, read from the swap device",
    "swap_disk_reads_avoided": "swap reads frontswap saved (= anon_faults_frontswap)",
    "corrupt_pages": "pages that came back with the wrong bytes (0 with a correct backend)",
}
#: per filesystem, prefixed with its key (``sda1_``, ``srv_t_``…)
FS_COUNTERS = {
    "pages_read": "file pages read on it",
    "pages_cached": "of those, found in the page cache",
    "cleancache_hits": "misses served by cleancache",
    "disk_reads": "misses read from its disk",
    "disk_reads_avoided": "= cleancache_hits",
    "cleancache_hit_permille": "cleancache hits per 1000 page-cache misses",
}


@dataclass
class FsReport:
    """One filesystem's reads: how many missed the page cache and who served them."""

    name: str           # "/dev/sda1 on /mnt (ext4)"
    key: str            # "sda1": the prefix of its /proc/kmodemu/workload names
    pages_read: int = 0
    page_cache_hits: int = 0
    cleancache_hits: int = 0
    disk_reads: int = 0

    @property
    def hit_rate(self) -> float:
        """Cleancache hits per page-cache miss (0 when nothing missed)."""
        misses = self.cleancache_hits + self.disk_reads
        return self.cleancache_hits / misses if misses else 0.0


@dataclass
class WorkloadReport:
    """Totals of one run, per filesystem and for swap, plus the frontend counters' change."""

    pages_read: int = 0
    page_cache_hits: int = 0
    cleancache_hits: int = 0
    disk_reads: int = 0
    anon_faults: int = 0
    frontswap_loads: int = 0
    swap_disk_reads: int = 0
    swap_disk_writes: int = 0
    swap_out: int = 0
    corrupt: int = 0
    cleancache: dict[str, int] = field(default_factory=dict)
    frontswap: dict[str, int] = field(default_factory=dict)
    filesystems: list[FsReport] = field(default_factory=list)
    rounds: int = 0
    virtual_ns: int = 0
    duration_ns: int = 0          # the time asked for; 0 when a number of rounds was
    working_set_pages: int = 0
    anon_pages: int = 0
    anon_touches: int = 0

    @property
    def swap_writes_avoided(self) -> int:
        """Pages swapped out that frontswap kept and the device never saw."""
        return self.swap_out - self.swap_disk_writes

    def lines(self) -> list[str]:
        out = [f"pages read: {self.pages_read} (page cache {self.page_cache_hits}, "
               f"cleancache {self.cleancache_hits}, disk {self.disk_reads})",
               f"anon faults: {self.anon_faults} (frontswap {self.frontswap_loads}, "
               f"swap disk {self.swap_disk_reads}); swap disk writes: {self.swap_disk_writes}",
               f"corrupt pages: {self.corrupt}"]
        out.append("cleancache: " + " ".join(f"{k}={v}" for k, v in self.cleancache.items()))
        out.append("frontswap: " + " ".join(f"{k}={v}" for k, v in self.frontswap.items()))
        out.extend(self._fs_table())
        out.append(f"swap: {self.swap_out} pages out ({self.swap_writes_avoided} kept by frontswap, "
                   f"{self.swap_disk_writes} written), {self.anon_faults} faults "
                   f"({self.frontswap_loads} from frontswap, {self.swap_disk_reads} from disk)")
        out.append(f"disk I/O avoided: {self.cleancache_hits} file reads, "
                   f"{self.swap_writes_avoided} swap writes, {self.frontswap_loads} swap reads")
        if self.duration_ns:
            out.append(f"time: {self.rounds} rounds in {self.virtual_ns / 1e9:.3f} s (virtual)")
        return out

    def _fs_table(self) -> list[str]:
        head = ("filesystem", "read", "cached", "cleancache", "disk", "hit rate", "reads avoided")
        rows = [head] + [(f.name, str(f.pages_read), str(f.page_cache_hits), str(f.cleancache_hits),
                          str(f.disk_reads), f"{f.hit_rate:.1%}", str(f.cleancache_hits))
                         for f in self.filesystems]
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return ["  ".join([r[0].ljust(w[0])] + [c.rjust(w[i + 1]) for i, c in enumerate(r[1:])])
                for r in rows]

    def counters(self) -> dict[str, int]:
        """Every figure by its /proc/kmodemu/workload name (hit rates in per mille).

        ``COUNTERS`` first, then ``FS_COUNTERS`` per filesystem, then the
        frontend counters' changes named after their debugfs files
        (``cleancache_succ_gets``, ``frontswap_loads``…).
        """
        values = [self.rounds, self.virtual_ns // 1000, self.working_set_pages, self.anon_pages,
                  self.anon_touches, self.pages_read, self.page_cache_hits, self.cleancache_hits,
                  self.disk_reads, self.cleancache_hits, self.swap_out, self.swap_writes_avoided,
                  self.swap_disk_writes, self.swap_writes_avoided, self.anon_faults,
                  self.frontswap_loads, self.swap_disk_reads, self.frontswap_loads, self.corrupt]
        out = dict(zip(COUNTERS, values))
        for f in self.filesystems:
            fs_values = (f.pages_read, f.page_cache_hits, f.cleancache_hits, f.disk_reads,
                         f.cleancache_hits, round(f.hit_rate * 1000))
            out.update((f"{f.key}_{name}", v) for name, v in zip(FS_COUNTERS, fs_values))
        out.update((f"cleancache_{k}", v) for k, v in self.cleancache.items())
        out.update((f"frontswap_{k}", v) for k, v in self.frontswap.items())
        return out

    def vmstat(self) -> str:
        """The counters as ``name value`` lines, /proc/vmstat style."""
        return "".join(f"{name} {value}\n" for name, value in self.counters().items())
