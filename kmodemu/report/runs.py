"""What a demo run did and measured, and the figures derived from it.

The data the terminal table and the HTML report both render: the demo
(``kmodemu.demo``) fills these in by driving machines; the report layer only
reads them, so it imports nothing from the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

PAGE = 4096
#: RAMster's counters of the pages a RAM server holds for its peers
FOREIGN_FIELDS = ("foreign_eph_pages", "foreign_pers_pages")
#: the Xen host's tmem lines of ``xl info`` (kmodemu's accounting lines)
XL_TMEM_FIELDS = ("tmem_persistent_kb", "tmem_ephemeral_kb")
#: shown in every cell of a run whose backend this build does not have
NOT_AVAILABLE = "not available in this build"


@dataclass(frozen=True)
class Workload:
    """What every run does: the same files, process and read pattern."""

    mem: str = "48M"
    files: int = 16
    file_size: str = "3M"
    anon: str = "24M"
    rounds: int = 12
    reads_per_round: int = 8
    seed: int = 1

    def describe(self) -> str:
        return (f"{self.mem} RAM, {self.files} files of {self.file_size}, a {self.anon} process, "
                f"{self.rounds} rounds of {self.reads_per_round} file reads and a pass over the "
                f"process's memory")


@dataclass(frozen=True)
class Config:
    key: str
    title: str
    profile: str
    cmdline: str = ""
    builtin: tuple[str, ...] = ()
    modprobe: bool = False
    color: str = ""
    dashed: bool = False   # drawn over a solid line it may coincide with
    #: "local" (one in-process machine), "ramster" (a node and its RAM server) or "xen"
    #: (a guest; the xen configs are guests of one host and run together)
    kind: str = "local"
    #: what the run is on, under its title in the table (the profile, unless said)
    platform: str = ""
    #: a backend loaded in place of the first halfway through the rounds, without a
    #: reboot (``rmmod`` then this modprobe line; profile 3.10-unload, docs/unloading.md)
    swap_to: str = ""

    @property
    def where(self) -> str:
        return self.platform or self.profile


@dataclass
class Sample:
    """Cumulative counters after a round."""

    round: int
    cleancache_hits: int = 0
    disk_reads: int = 0
    frontswap_loads: int = 0
    swap_disk_reads: int = 0
    frontswap_stores: int = 0
    swap_writes: int = 0
    zcache: dict[str, int] = field(default_factory=dict)
    #: RAMster's counters (debugfs ramster/ of the node, foreign_* of the RAM server)
    remote: dict[str, int] = field(default_factory=dict)
    #: pages read or touched whose bytes were not what was written (``CORRUPT``)
    corrupt: int = 0
    #: the Xen host's memory in tmem (``xl info``'s XL_TMEM_FIELDS), shared by its guests
    host: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    config: Config
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    zcache_present: bool = False
    zcache_fields: tuple[str, ...] = ()
    #: why this build cannot make this run (its backend is missing); None when it ran
    unavailable: str | None = None
    #: sha256 of every file at the end (``sha256sum``), to compare with the other runs
    digests: dict[str, str] = field(default_factory=dict)
    #: commands run on other machines of the run (the RAM server, the Xen host), by machine
    others: dict[str, list[str]] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.unavailable is None and bool(self.samples)

    @property
    def final(self) -> Sample:
        return self.samples[-1] if self.samples else Sample(0)

    # -- figures ---------------------------------------------------------------
    def zpages(self, s: Sample | None = None) -> int:
        """Compressed pages stored in frames (zero- and same-filled pages take no space)."""
        s = s or self.final
        return (s.zcache.get("eph_zpages", 0) + s.zcache.get("pers_zpages", 0)
                - s.zcache.get("zero_filled_pages", 0) - s.zcache.get("same_filled_pages", 0))

    def zframes(self, s: Sample | None = None) -> int:
        s = s or self.final
        return s.zcache.get("eph_pageframes", 0) + s.zcache.get("pers_pageframes", 0)

    def zbytes(self, s: Sample | None = None) -> int:
        s = s or self.final
        return s.zcache.get("eph_zbytes", 0) + s.zcache.get("pers_zbytes", 0)

    def compression_ratio(self) -> float | None:
        return self.zpages() * PAGE / self.zbytes() if self.zbytes() else None

    def density(self, s: Sample | None = None) -> float | None:
        """Compressed pages per page frame (zbud holds at most two)."""
        frames = self.zframes(s)
        return self.zpages(s) / frames if frames else None

    def ram_used(self) -> int:
        return self.zframes() * PAGE

    def peak_ram_used(self) -> int:
        return max(self.zframes(s) for s in self.samples) * PAGE

    def rates(self, hits: str, misses: str) -> list[float | None]:
        """Per-round hit rate: hits / (hits + misses) among the round's deltas."""
        out, prev = [], Sample(0)
        for s in self.samples:
            h = getattr(s, hits) - getattr(prev, hits)
            m = getattr(s, misses) - getattr(prev, misses)
            out.append(h / (h + m) if h + m else None)
            prev = s
        return out


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


#: the cell of a run that did not happen: its backend is missing, or it failed before sampling
NA_CELL, FAILED_CELL = "n/a", "failed"


def table_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """The side-by-side figures, as text cells (shared by the terminal and the HTML).

    A run without samples has ``n/a`` (not available in this build) or ``failed`` cells.
    """
    base = runs[0]

    def avoided(attr: str, run: Run) -> str:
        if run is base:
            return "-"
        saved = getattr(base.final, attr) - getattr(run.final, attr)
        pct = f" ({100 * saved / getattr(base.final, attr):.0f}%)" if getattr(base.final, attr) else ""
        return f"{saved}{pct}"

    def zc(run: Run, fn) -> str:
        return fn(run) if run.zcache_present and run.zframes() else "-"

    def remote(run: Run, *fields: str) -> str:
        return str(sum(run.final.remote.get(f, 0) for f in fields)) if run.final.remote else "-"

    def intact(run: Run) -> str:
        same = sum(1 for p, d in run.digests.items() if base.digests.get(p) == d)
        return f"{same}/{len(base.digests)}" if run.digests else "-"

    figures: list[tuple[str, Callable[[Run], str]]] = [
        ("cleancache hits", lambda r: str(r.final.cleancache_hits)),
        ("frontswap stores", lambda r: str(r.final.frontswap_stores)),
        ("frontswap loads", lambda r: str(r.final.frontswap_loads)),
        ("disk reads", lambda r: str(r.final.disk_reads)),
        ("  avoided", lambda r: avoided("disk_reads", r)),
        ("swap writes", lambda r: str(r.final.swap_writes)),
        ("  avoided", lambda r: avoided("swap_writes", r)),
        ("compression ratio", lambda r: zc(r, lambda r: f"{r.compression_ratio():.2f}x")),
        ("zbud density", lambda r: zc(r, lambda r: f"{r.density():.2f} pages/frame")),
        ("RAM used by zcache", lambda r: zc(r, lambda r: _mib(r.ram_used()))),
        ("  peak", lambda r: zc(r, lambda r: _mib(r.peak_ram_used()))),
    ]
    if any(r.final.remote for r in runs):
        figures += [
            ("pages sent to a peer", lambda r: remote(r, "eph_pages_remoted", "pers_pages_remoted")),
            ("  fetched back", lambda r: remote(r, "remote_eph_pages_succ_get",
                                                "remote_pers_pages_succ_get")),
            ("  held by the peer", lambda r: remote(r, *FOREIGN_FIELDS)),
        ]
    if any(r.final.host for r in runs):
        def host_tmem(s: Sample) -> int:
            return sum(s.host.get(f, 0) for f in XL_TMEM_FIELDS) << 10

        figures += [
            ("Xen host RAM in tmem", lambda r: _mib(host_tmem(r.final)) if r.final.host else "-"),
            ("  peak", lambda r: _mib(max(host_tmem(s) for s in r.samples)) if r.final.host else "-"),
        ]
    figures += [
        ("files intact (sha256)", intact),
        ("pages read back wrong", lambda r: str(r.final.corrupt)),
    ]

    def cell(run: Run, fn: Callable[[Run], str]) -> str:
        if run.samples:
            return fn(run)
        return NA_CELL if run.unavailable else FAILED_CELL

    return [(name, [cell(r, fn) for r in runs]) for name, fn in figures]
