"""A mixed file-and-swap workload, seeded, for demos, scenarios and benchmarks.

It creates files in one or more directories, starts a process with
anonymous memory, then runs rounds: file reads in an access pattern, touches
of the process's memory in a touch pattern, and a little extra memory
pressure. It runs a number of rounds, or rounds until a span of virtual time
has passed. The same seed on the same machine gives the same report, byte for
byte: every random choice comes from ``random.Random(seed)``.

File patterns (``PATTERNS``), per round and repeated ``passes`` times:

- ``skewed``: ``files`` whole-file reads, 60% of them to the first quarter of
  the files (the hot set), the rest to any file;
- ``zipf``: ``files`` whole-file reads, file *r* chosen with weight 1/(r+1);
- ``sequential``: every file once, in order, front to back (a scan; rounds
  or passes repeat it);
- ``random``: as many 64 KiB reads, at random aligned places in the working
  set, as it has 64 KiB pieces.

Touch patterns of the process (``ANON_PATTERNS``): ``sequential`` (every page
in order), ``random`` (as many touches as pages, each page picked at random)
and ``hot`` (the first quarter every round, plus 1/16 of the pages picked at
random from the rest).

The report says what tmem saved, which is the point of running it
(``WorkloadReport``, in workload_report.py); the last run's figures are also
published in ``/proc/kmodemu/workload``, the way /proc/vmstat shows the
kernel's.
"""

from __future__ import annotations

import errno
import random
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from kmodemu.errors import KernelError
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import PAGE_SIZE
from kmodemu.workloads.workload_report import COUNTERS, FS_COUNTERS, FsReport, WorkloadReport

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.filesystem import Inode, Superblock
    from kmodemu.mm.memory import MemoryManager

__all__ = ["ANON_PATTERNS", "COUNTERS", "FS_COUNTERS", "FsReport", "PATTERNS", "PROC_WORKLOAD",
           "WorkloadError", "WorkloadReport", "WorkloadSpec", "check", "parse_duration",
           "run_workload"]

FILE_KINDS = ("text", "text", "binary", "mixed", "zero", "random")
PATTERNS = ("skewed", "zipf", "sequential", "random")
ANON_PATTERNS = ("sequential", "random", "hot")
#: pages per read of the ``random`` pattern (64 KiB)
RANDOM_CHUNK = 16
#: no run goes past this many rounds, whatever its duration asks
MAX_ROUNDS = 1_000_000
#: where the last run's counters are published (a kmodemu file, not a Linux one)
PROC_WORKLOAD = "/proc/kmodemu/workload"


class WorkloadError(KernelError):
    """A workload the machine cannot run; ``subject`` is what to name in the message."""

    def __init__(self, err: int, subject: str):
        super().__init__(err, subject)
        self.subject = subject


@dataclass
class WorkloadSpec:
    """What to run. Sizes in bytes, ``duration`` in virtual seconds (0: run ``rounds``).

    ``directories``, when given, replaces ``directory``: files go round-robin
    into them. ``working_set`` (bytes), when given, replaces ``files``: files
    of exactly ``file_size`` (the last one smaller) until it is reached;
    otherwise each file is ½…1½ × ``file_size``.
    """

    seed: int = 1
    directory: str = "/mnt"
    files: int = 8
    file_size: int = 4 << 20
    anon: int = 16 << 20
    rounds: int = 4
    keep: bool = False
    directories: tuple[str, ...] = ()
    pattern: str = "skewed"
    passes: int = 1
    working_set: int = 0
    anon_pattern: str = "sequential"
    duration: float = 0.0

    def dirs(self) -> tuple[str, ...]:
        return tuple(self.directories) or (self.directory,)

    def nr_files(self) -> int:
        if self.working_set:
            return -(-self.working_set // self.file_size)
        return self.files

    def estimated_pages(self) -> int:
        """Pages read and touched over the run (mean file size): how long it will take."""
        ws = self.working_set or max(1, self.files) * self.file_size
        per_round = self.passes * (ws // PAGE_SIZE) + self.anon // PAGE_SIZE
        return self.rounds * per_round

    def progress_total(self) -> int:
        """Units of ``run_workload``'s ``on_round``: rounds, or µs of virtual time."""
        return round(self.duration * 1e9) // 1000 if self.duration else self.rounds

    def validate(self) -> None:
        """ValueError for a spec no machine could run (the CLI's option types check the same)."""
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r} (one of {', '.join(PATTERNS)})")
        if self.anon_pattern not in ANON_PATTERNS:
            raise ValueError(f"unknown anon pattern {self.anon_pattern!r} "
                             f"(one of {', '.join(ANON_PATTERNS)})")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ValueError(f"rounds must be 1…{MAX_ROUNDS}")
        if self.passes < 1 or self.file_size < 1:
            raise ValueError("passes and file size must be positive")
        if min(self.files, self.anon, self.working_set, self.duration) < 0:
            raise ValueError("files, sizes and duration cannot be negative")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|m|min|h)?")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from "2", "2s", "500ms", "100us", "1.5m" or "1h"; ValueError otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"invalid duration '{text}'")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _human(nbytes: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value, i = float(nbytes), 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {units[i]}"


def _file_sizes(spec: WorkloadSpec, rng: random.Random) -> list[tuple[str, int, int]]:
    """(kind, size, content seed) per file, drawn in the same order as ever."""
    out = []
    left = spec.working_set
    for _ in range(spec.nr_files()):
        kind = FILE_KINDS[rng.randrange(len(FILE_KINDS))]
        if spec.working_set:
            size = min(spec.file_size, left)
            left -= size
        else:
            size = max(PAGE_SIZE, spec.file_size // 2 + rng.randrange(spec.file_size + 1))
        out.append((kind, size, rng.getrandbits(32)))
    return out


def check(mm: "MemoryManager", spec: WorkloadSpec) -> None:
    """Refuse, before changing anything, what the machine cannot run.

    ENOENT/ENOTDIR for a bad directory; EEXIST if the process ``wl<seed>``
    runs already (a kept run); ENOSPC if files on in-RAM filesystems (tmpfs)
    would not fit in RAM; ENOMEM if the process's memory fails the
    ``__vm_enough_memory`` check an mmap of it would make.
    """
    spec.validate()
    for d in spec.dirs():
        if not mm.fs.is_dir(d):
            sb, rel = mm.fs.resolve(d)
            raise WorkloadError(errno.ENOTDIR if rel in sb.device.files else errno.ENOENT, d)
    pname = f"wl{spec.seed}"
    if pname in mm.anon.processes:
        raise WorkloadError(errno.EEXIST, pname)
    dirs = spec.dirs()
    sizes = _file_sizes(spec, random.Random(spec.seed))
    in_ram: dict[str, int] = {}
    for i, (_, size, _) in enumerate(sizes):
        d = dirs[i % len(dirs)]
        if mm.fs.resolve(d)[0].fstype.in_ram:
            in_ram[d] = in_ram.get(d, 0) + -(-size // PAGE_SIZE)
    ram_pages = sum(in_ram.values())
    room = mm.frames.nr_free + mm.pagecache.evictable_pages() - mm.frames.wmark_high
    if ram_pages and ram_pages > room:
        raise WorkloadError(errno.ENOSPC, max(in_ram, key=in_ram.__getitem__))
    npages = spec.anon // PAGE_SIZE
    if npages and not mm.swap.enough_memory(npages + ram_pages):
        raise WorkloadError(errno.ENOMEM, f"cannot allocate {_human(spec.anon)} of anonymous memory")


def _fs_report(sb: "Superblock") -> FsReport:
    key = (sb.source[5:] if sb.source.startswith("/dev/")
           else sb.mountpoint.strip("/").replace("/", "_") or "root")
    return FsReport(f"{sb.source} on {sb.mountpoint} ({sb.fstype.name})", key.replace("/", "_"))


def _reads(spec: WorkloadSpec, rng: random.Random, inodes: list["Inode"], chunks, zipf_cw):
    """One pass of the file pattern: (inode, first page, pages or None for all)."""
    n = len(inodes)
    if not n:
        return []
    if spec.pattern == "sequential":
        return [(inode, 0, None) for inode in inodes]
    if spec.pattern == "random":
        return [chunks[rng.randrange(len(chunks))] for _ in range(len(chunks))]
    if spec.pattern == "zipf":
        return [(inodes[i], 0, None) for i in rng.choices(range(n), cum_weights=zipf_cw, k=n)]
    out = []
    for _ in range(n):
        # hot files (the first quarter) are read three times as often
        if rng.random() < 0.6:
            out.append((inodes[rng.randrange(max(1, n // 4))], 0, None))
        else:
            out.append((inodes[rng.randrange(n)], 0, None))
    return out


def _touches(spec: WorkloadSpec, rng: random.Random, npages: int) -> list[int] | None:
    """The pages touched this round, in order; None for every page."""
    if spec.anon_pattern == "sequential":
        return None
    if spec.anon_pattern == "random":
        return [rng.randrange(npages) for _ in range(npages)]
    hot = max(1, npages // 4)
    cold = [hot + rng.randrange(npages - hot) for _ in range(npages // 16)] if npages > hot else []
    return list(range(hot)) + cold


def _target_mm(target: Any) -> "MemoryManager":
    """A MemoryManager from itself, a kernel (``.mm``) or a machine (``.kernel.mm``)."""
    for path in ((), ("mm",), ("kernel", "mm")):
        obj = target
        for name in path:
            obj = getattr(obj, name, None)
        if obj is not None and hasattr(obj, "pagecache"):
            return obj
    raise TypeError(f"not a machine, kernel or memory manager: {target!r}")


def _parsed(options: dict[str, Any]) -> dict[str, Any]:
    """Spec fields from keyword options: sizes may be "4M"-style strings, durations "2s"."""
    from kmodemu.kernel.cmdline import memparse

    out = dict(options)
    for name in ("file_size", "anon", "working_set"):
        if isinstance(out.get(name), str):
            out[name] = memparse(out[name])
    if isinstance(out.get("duration"), str):
        out["duration"] = parse_duration(out["duration"])
    dirs = out.get("directories")
    if isinstance(dirs, (list, str)):
        out["directories"] = (dirs,) if isinstance(dirs, str) else tuple(dirs)
    return out


def run_workload(target: Any, spec: WorkloadSpec | None = None,
                 on_round: Callable[[int], None] | None = None, **options: Any) -> WorkloadReport:
    """Run a workload on ``target`` (a machine, kernel or ``kernel.mm``); return its metrics.

    Either a ``WorkloadSpec`` or its fields as keywords (``pattern="random",
    working_set="1G", duration="2s"``…). Raises ``ValueError`` for a bad spec
    and ``WorkloadError`` (a ``KernelError``) for one the machine cannot run,
    before changing anything; a ``KernelError`` during the run (out of
    memory) comes out after the cleanup. ``on_round(units)`` is called after
    each round with the progress units it took (see ``progress_total``).
    Called on a persistent machine this is not journaled: use the console's
    ``workload`` command there.
    """
    mm = _target_mm(target)
    spec = replace(spec or WorkloadSpec(), **_parsed(options))
    check(mm, spec)
    rng = random.Random(spec.seed)
    clock = mm.kernel.clock
    t0 = clock.ns
    cc0, fs0 = dict(mm.cleancache.counters()), dict(mm.frontswap.counters())
    writes0, out0 = mm.swap.swap_writes, mm.anon.swapped_out
    rep = WorkloadReport()
    dirs = spec.dirs()
    per_fs: dict[int, FsReport] = {}
    for d in dirs:
        sb = mm.fs.resolve(d)[0]
        if id(sb) not in per_fs:
            per_fs[id(sb)] = _fs_report(sb)
    rep.filesystems = list(per_fs.values())
    inodes: list["Inode"] = []
    pname = f"wl{spec.seed}"
    npages = spec.anon // PAGE_SIZE
    try:
        for i, (kind, size, cseed) in enumerate(_file_sizes(spec, rng)):
            path = f"{dirs[i % len(dirs)].rstrip('/')}/wl{spec.seed}-{i}"
            inodes.append(mm.fs.create(path, size, Content(mm.corpus, kind, cseed)))
        rep.working_set_pages = sum(inode.nr_pages for inode in inodes)
        if npages:
            mm.anon.alloc(pname, npages, Content(mm.corpus, "mixed", rng.getrandbits(32)))
            rep.anon_pages = npages
        chunks = [(inode, start, RANDOM_CHUNK) for inode in inodes
                  for start in range(0, inode.nr_pages, RANDOM_CHUNK)]
        zipf_cw: list[float] = []
        for r in range(len(inodes)):
            zipf_cw.append((zipf_cw[-1] if zipf_cw else 0.0) + 1 / (r + 1))
        duration_ns = round(spec.duration * 1e9)
        shown = 0   # progress units reported so far
        while rep.rounds < MAX_ROUNDS:
            _round(mm, spec, rng, rep, per_fs, inodes, chunks, zipf_cw, pname, npages)
            rep.rounds += 1
            done = clock.ns - t0
            if on_round is not None:
                units = min(done, duration_ns) // 1000 if duration_ns else rep.rounds
                on_round(units - shown)
                shown = units
            if (done >= duration_ns) if duration_ns else rep.rounds >= spec.rounds:
                break
        rep.duration_ns = duration_ns
    finally:
        if not spec.keep:
            if npages and pname in mm.anon.processes:
                mm.anon.kill(pname)
            for inode in inodes:
                mm.fs.unlink(inode.path)
    rep.virtual_ns = clock.ns - t0
    rep.swap_disk_writes = mm.swap.swap_writes - writes0
    rep.swap_out = mm.anon.swapped_out - out0
    rep.cleancache = {k: v - cc0[k] for k, v in mm.cleancache.counters().items()}
    rep.frontswap = {k: v - fs0[k] for k, v in mm.frontswap.counters().items()}
    mm.kernel.vfs.add_file(PROC_WORKLOAD, rep.vmstat)
    return rep


def _round(mm, spec, rng, rep, per_fs, inodes, chunks, zipf_cw, pname, npages) -> None:
    """One round: the file pattern ``passes`` times, the touches, then some pressure."""
    read = mm.pagecache.read
    for _ in range(spec.passes):
        for inode, start, count in _reads(spec, rng, inodes, chunks, zipf_cw):
            st = read(inode, start, count)
            for r in (rep, per_fs[id(inode.sb)]):
                r.pages_read += st.pages
                r.page_cache_hits += st.cached
                r.cleancache_hits += st.cleancache_hits
                r.disk_reads += st.disk_reads
            rep.corrupt += st.corrupt
    if npages:
        t = mm.anon.touch(pname, _touches(spec, rng, npages))
        rep.anon_touches += t.pages
        rep.anon_faults += t.from_frontswap + t.from_disk
        rep.frontswap_loads += t.from_frontswap
        rep.swap_disk_reads += t.from_disk
        rep.corrupt += t.corrupt
    mm.reclaim(rng.randrange(16, 256))
