"""``kmodemu demo``: one file-and-swap workload on four kernels, side by side.

1. no backend (3.10);
2. zcache built in, enabled by the ``zcache`` boot parameter (3.10);
3. zcache loaded as a module after the filesystem is mounted and swap enabled
   (3.10: lazy init replays both, so it ends up like 2);
4. the same on 3.9, which has no lazy init: the module is refused.

Every run is a fresh machine driven through console commands (the same ones
``kmodemu shell`` takes), so the report can list exactly what ran. Runs are
deterministic and independent, so they go to worker processes in parallel.
"""

from __future__ import annotations

import os
import random
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

PAGE = 4096
CONTENT_KINDS = ("text", "binary", "mixed", "text", "zero", "random")
ZCACHE_FIELDS = ("eph_pageframes", "pers_pageframes", "eph_zpages", "pers_zpages",
                 "eph_zbytes", "pers_zbytes", "zero_filled_pages", "same_filled_pages")


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


FULL = Workload()
QUICK = Workload(mem="16M", files=8, file_size="2M", anon="8M", rounds=4, reads_per_round=6)


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


CONFIGS = (
    Config("none", "no backend", "3.10", color="#888888"),
    Config("boot", "zcache boot param", "3.10", cmdline="zcache", builtin=("zcache",),
           color="#1f77b4"),
    Config("module", "zcache module", "3.10", modprobe=True, color="#ff7f0e", dashed=True),
    Config("module-3.9", "3.9 + module", "3.9", modprobe=True, color="#d62728", dashed=True),
)


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


@dataclass
class Run:
    config: Config
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    zcache_present: bool = False
    zcache_fields: tuple[str, ...] = ()

    @property
    def final(self) -> Sample:
        return self.samples[-1]

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


# -- one run --------------------------------------------------------------------

_READ = re.compile(r": \d+ pages, \d+ cached, (\d+) from cleancache, (\d+) from disk")
_TOUCH = re.compile(r": \d+ pages, \d+ resident, (\d+) from frontswap, (\d+) from swap disk")


def run_config(config: Config, work: Workload) -> Run:
    """Boot a machine for ``config``, run the workload, sample counters every round."""
    from kmodemu.machine import Machine, MachineDef
    from kmodemu.scenario.session import Session

    run = Run(config)
    machine = Machine(MachineDef(profile=config.profile, cmdline=config.cmdline,
                                 builtin=list(config.builtin), mem=work.mem, seed=work.seed))
    with machine:
        session = Session(machine)

        def sh(line: str, record: bool = True):
            outcome = session.run(line)
            if record:
                run.commands.append(line)
            if outcome.rc:
                run.notes.append(f"$ {line}: " + " ".join(outcome.stderr.split("\n")).strip())
            return outcome

        sh("mount /dev/sda1 /data -t ext4")
        sh("mkswap /dev/sdb1 256M")
        sh("swapon /dev/sdb1")
        if config.modprobe and sh("modprobe zcache").rc:
            why = [line.split("] ", 1)[-1] for line in sh("dmesg", False).stdout.splitlines()
                   if "zcache" in line and "staging" not in line]
            run.notes.extend(f"dmesg: {w}" for w in why)
        for i in range(work.files):
            sh(f"mkfile /data/f{i} --size {work.file_size} "
               f"--content {CONTENT_KINDS[i % len(CONTENT_KINDS)]} --seed {work.seed + i}")
        sh(f"alloc app {work.anon} --content mixed --seed {work.seed}")
        run.zcache_present = "zcache" in sh("ls /sys/kernel/debug", False).stdout.split()
        if run.zcache_present:
            present = set(sh("ls /sys/kernel/debug/zcache", False).stdout.split())
            run.zcache_fields = tuple(f for f in ZCACHE_FIELDS if f in present)
        rng = random.Random(work.seed)
        hot = max(1, work.files // 4)
        sample = Sample(0)
        for r in range(1, work.rounds + 1):
            paths = [f"/data/f{rng.randrange(hot) if rng.random() < 0.6 else rng.randrange(work.files)}"
                     for _ in range(work.reads_per_round)]
            sample = Sample(r, cleancache_hits=sample.cleancache_hits, disk_reads=sample.disk_reads,
                            frontswap_loads=sample.frontswap_loads,
                            swap_disk_reads=sample.swap_disk_reads)
            for m in _READ.finditer(sh("read " + " ".join(paths)).stdout):
                sample.cleancache_hits += int(m.group(1))
                sample.disk_reads += int(m.group(2))
            for m in _TOUCH.finditer(sh("touch-anon app").stdout):
                sample.frontswap_loads += int(m.group(1))
                sample.swap_disk_reads += int(m.group(2))
            _counters(sh, run, sample)
            run.samples.append(sample)
    return run


def _counters(sh, run: Run, sample: Sample) -> None:
    """What the console shows: debugfs counters, and pages written to swap (/proc/vmstat)."""
    text = sh("cat /sys/kernel/debug/frontswap/succ_stores", False).stdout.strip()
    sample.frontswap_stores = int(text or 0)
    vmstat = dict(line.split() for line in sh("cat /proc/vmstat", False).stdout.splitlines())
    sample.swap_writes = int(vmstat.get("pswpout", 0))
    if run.zcache_fields:
        paths = " ".join(f"/sys/kernel/debug/zcache/{f}" for f in run.zcache_fields)
        values = sh(f"cat {paths}", False).stdout.split()
        sample.zcache = {f: int(v) for f, v in zip(run.zcache_fields, values)}


def run_all(work: Workload, jobs: int) -> list[Run]:
    """The four runs, in worker processes when ``jobs`` > 1 (same results either way)."""
    if jobs <= 1:
        return [run_config(c, work) for c in CONFIGS]
    with ProcessPoolExecutor(max_workers=min(jobs, len(CONFIGS))) as pool:
        return list(pool.map(run_config, CONFIGS, [work] * len(CONFIGS)))


# -- the table ------------------------------------------------------------------

def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def table_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """The side-by-side figures, as text cells (shared by the terminal and the HTML)."""
    base = runs[0].final

    def avoided(attr: str, run: Run) -> str:
        if run is runs[0]:
            return "-"
        saved = getattr(base, attr) - getattr(run.final, attr)
        pct = f" ({100 * saved / getattr(base, attr):.0f}%)" if getattr(base, attr) else ""
        return f"{saved}{pct}"

    def zc(run: Run, fn) -> str:
        return fn(run) if run.zcache_present and run.zframes() else "-"

    rows = [
        ("cleancache hits", [str(r.final.cleancache_hits) for r in runs]),
        ("frontswap stores", [str(r.final.frontswap_stores) for r in runs]),
        ("frontswap loads", [str(r.final.frontswap_loads) for r in runs]),
        ("disk reads", [str(r.final.disk_reads) for r in runs]),
        ("  avoided", [avoided("disk_reads", r) for r in runs]),
        ("swap writes", [str(r.final.swap_writes) for r in runs]),
        ("  avoided", [avoided("swap_writes", r) for r in runs]),
        ("compression ratio", [zc(r, lambda r: f"{r.compression_ratio():.2f}x") for r in runs]),
        ("zbud density", [zc(r, lambda r: f"{r.density():.2f} pages/frame") for r in runs]),
        ("RAM used by zcache", [zc(r, lambda r: _mib(r.ram_used())) for r in runs]),
        ("  peak", [zc(r, lambda r: _mib(r.peak_ram_used())) for r in runs]),
    ]
    return rows


def format_table(runs: list[Run]) -> str:
    rows = table_rows(runs)
    heads = [r.config.title for r in runs]
    kernels = [f"({r.config.profile})" for r in runs]
    w0 = max(len(name) for name, _ in rows)
    widths = [max(len(h), len(k), *(len(cells[i]) for _, cells in rows))
              for i, (h, k) in enumerate(zip(heads, kernels))]
    lines = [" " * w0 + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths)),
             " " * w0 + "".join(f"  {k:>{w}}" for k, w in zip(kernels, widths))]
    for name, cells in rows:
        lines.append(f"{name:<{w0}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths)))
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------

@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("kmodemu-demo.html"), show_default=True,
              help="Where the HTML report goes (replaced if it exists).")
@click.option("--no-html", is_flag=True, help="Only print the table.")
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a browser.")
@click.option("--quick", is_flag=True, help="A small workload (seconds; for tests).")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Rounds of the workload.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Runs in parallel (default: CPUs, at most 4).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every sample as JSON.")
def demo(html_path, no_html, open_browser, quick, rounds, jobs, json_path) -> None:
    """Run one file-and-swap workload on four kernels and compare them.

    \b
    1. no backend                          (3.10)
    2. zcache built in, boot parameter     (3.10)
    3. zcache as a module, after mounting  (3.10: lazy init replays the mount)
    4. the same on 3.9                     (no lazy init: the module is refused)

    Prints a side-by-side table and writes a self-contained HTML report.
    """
    work = QUICK if quick else FULL
    if rounds:
        work = Workload(**{**asdict(work), "rounds": rounds})
    jobs = jobs or min(4, os.cpu_count() or 1)
    click.echo(f"kmodemu demo: {work.describe()}; {len(CONFIGS)} kernels, {jobs} at a time…",
               err=True)
    runs = run_all(work, jobs)
    click.echo(f"The same workload ({work.describe()}) on four kernels:\n")
    click.echo(format_table(runs))
    notes = [f"{r.config.title}: {n}" for r in runs for n in r.notes]
    if notes:
        click.echo("\nNotes:")
        for n in notes:
            click.echo(f"  {n}")
    if json_path is not None:
        import json

        json_path.write_text(json.dumps({"workload": asdict(work), "runs": [asdict(r) for r in runs]},
                                        indent=1) + "\n")
    if not no_html:
        from kmodemu.report.html import render_report

        html_path.write_text(render_report(runs, work), encoding="utf-8")
        click.echo(f"\nReport: {html_path.resolve().as_uri()}")
        if open_browser:
            click.launch(str(html_path.resolve()))
    sys.stdout.flush()
