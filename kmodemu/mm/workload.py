"""A mixed file-and-swap workload, seeded, for demos, scenarios and benchmarks.

It creates files in one or more directories, starts a process with
anonymous memory, then runs rounds of skewed file reads (a few hot files,
many cold ones), touches of the process's memory and a little extra memory
pressure. The same seed on the same machine gives the same report, byte for
byte.

The report says what tmem saved, which is the point of running it: per
filesystem, how many page-cache misses cleancache served (its hit rate) and
so the disk reads avoided; for swap, the pages written out and faulted back
and the device writes and reads frontswap avoided. The last run's figures
are also published as ``name value`` lines in ``/proc/kmodemu/workload``, the
way /proc/vmstat shows the kernel's, for scripts and scenarios to read.
"""

from __future__ import annotations

import errno
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from kmodemu.errors import KernelError
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.filesystem import Superblock
    from kmodemu.mm.memory import MemoryManager

FILE_KINDS = ("text", "text", "binary", "mixed", "zero", "random")
#: where the last run's counters are published (a kmodemu file, not a Linux one)
PROC_WORKLOAD = "/proc/kmodemu/workload"


@dataclass
class WorkloadSpec:
    """``directories``, when given, replaces ``directory``: files go round-robin into them."""

    seed: int = 1
    directory: str = "/mnt"
    files: int = 8
    file_size: int = 4 << 20
    anon: int = 16 << 20
    rounds: int = 4
    keep: bool = False
    directories: tuple[str, ...] = ()

    def dirs(self) -> tuple[str, ...]:
        return tuple(self.directories) or (self.directory,)

    def estimated_pages(self) -> int:
        """Pages read and touched over the run (mean file size): how long it will take."""
        per_round = max(1, self.files) * self.file_size // PAGE_SIZE + self.anon // PAGE_SIZE
        return self.rounds * per_round


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
        return out

    def _fs_table(self) -> list[str]:
        head = ("filesystem", "read", "cached", "cleancache", "disk", "hit rate", "reads avoided")
        rows = [head] + [(f.name, str(f.pages_read), str(f.page_cache_hits), str(f.cleancache_hits),
                          str(f.disk_reads), f"{f.hit_rate:.1%}", str(f.cleancache_hits))
                         for f in self.filesystems]
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return ["  ".join([r[0].ljust(w[0])] + [c.rjust(w[i + 1]) for i, c in enumerate(r[1:])])
                for r in rows]

    def vmstat(self) -> str:
        """The figures as ``name value`` lines, /proc/vmstat style (hit rates in per mille).

        The frontend counters' changes come last, named after their debugfs
        files: ``cleancache_succ_gets``, ``frontswap_loads``…
        """
        rows = [("pages_read", self.pages_read), ("pages_cached", self.page_cache_hits),
                ("cleancache_hits", self.cleancache_hits), ("disk_reads", self.disk_reads),
                ("disk_reads_avoided", self.cleancache_hits),
                ("swap_out", self.swap_out), ("swap_out_frontswap", self.swap_writes_avoided),
                ("swap_disk_writes", self.swap_disk_writes),
                ("swap_disk_writes_avoided", self.swap_writes_avoided),
                ("anon_faults", self.anon_faults), ("anon_faults_frontswap", self.frontswap_loads),
                ("swap_disk_reads", self.swap_disk_reads),
                ("swap_disk_reads_avoided", self.frontswap_loads),
                ("corrupt_pages", self.corrupt)]
        for f in self.filesystems:
            rows += [(f"{f.key}_pages_read", f.pages_read), (f"{f.key}_pages_cached", f.page_cache_hits),
                     (f"{f.key}_cleancache_hits", f.cleancache_hits),
                     (f"{f.key}_disk_reads", f.disk_reads),
                     (f"{f.key}_disk_reads_avoided", f.cleancache_hits),
                     (f"{f.key}_cleancache_hit_permille", round(f.hit_rate * 1000))]
        rows += [(f"cleancache_{k}", v) for k, v in self.cleancache.items()]
        rows += [(f"frontswap_{k}", v) for k, v in self.frontswap.items()]
        return "".join(f"{name} {value}\n" for name, value in rows)


def _fs_report(sb: "Superblock") -> FsReport:
    key = (sb.source[5:] if sb.source.startswith("/dev/")
           else sb.mountpoint.strip("/").replace("/", "_") or "root")
    return FsReport(f"{sb.source} on {sb.mountpoint} ({sb.fstype.name})", key.replace("/", "_"))


def run_workload(mm: "MemoryManager", spec: WorkloadSpec,
                 on_round: Callable[[], None] | None = None) -> WorkloadReport:
    """Run the workload; raises ``KernelError`` (e.g. ENOENT for a missing directory).

    ``on_round`` is called after each round (a progress bar's update).
    """
    rng = random.Random(spec.seed)
    cc0, fs0 = dict(mm.cleancache.counters()), dict(mm.frontswap.counters())
    writes0, out0 = mm.swap.swap_writes, mm.anon.swapped_out
    rep = WorkloadReport()
    dirs = spec.dirs()
    per_fs: dict[int, FsReport] = {}
    for d in dirs:
        if not mm.fs.is_dir(d):
            raise KernelError(errno.ENOENT)
        sb = mm.fs.resolve(d)[0]
        if id(sb) not in per_fs:
            per_fs[id(sb)] = _fs_report(sb)
    rep.filesystems = list(per_fs.values())
    paths = []
    for i in range(spec.files):
        kind = FILE_KINDS[rng.randrange(len(FILE_KINDS))]
        size = max(PAGE_SIZE, spec.file_size // 2 + rng.randrange(spec.file_size + 1))
        path = f"{dirs[i % len(dirs)].rstrip('/')}/wl{spec.seed}-{i}"
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
                inode = mm.fs.lookup(path)
                st = mm.pagecache.read(inode)
                for r in (rep, per_fs[id(inode.sb)]):
                    r.pages_read += st.pages
                    r.page_cache_hits += st.cached
                    r.cleancache_hits += st.cleancache_hits
                    r.disk_reads += st.disk_reads
                rep.corrupt += st.corrupt
            if npages:
                t = mm.anon.touch(pname)
                rep.anon_faults += t.from_frontswap + t.from_disk
                rep.frontswap_loads += t.from_frontswap
                rep.swap_disk_reads += t.from_disk
                rep.corrupt += t.corrupt
            mm.reclaim(rng.randrange(16, 256))
            if on_round is not None:
                on_round()
    finally:
        if not spec.keep:
            if npages and pname in mm.anon.processes:
                mm.anon.kill(pname)
            for path in paths:
                mm.fs.unlink(path)
    rep.swap_disk_writes = mm.swap.swap_writes - writes0
    rep.swap_out = mm.anon.swapped_out - out0
    rep.cleancache = {k: v - cc0[k] for k, v in mm.cleancache.counters().items()}
    rep.frontswap = {k: v - fs0[k] for k, v in mm.frontswap.counters().items()}
    mm.kernel.vfs.add_file(PROC_WORKLOAD, rep.vmstat)
    return rep
