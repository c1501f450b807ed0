"""``kmodemu demo``: one file-and-swap workload on every tmem backend, side by side.

1. no backend (3.10);
2. zcache built in, enabled by the ``zcache`` boot parameter (3.10);
3. zcache loaded as a module after the filesystem is mounted and swap enabled
   (3.10: lazy init replays both, so it ends up like 2);
4. the same on 3.9, which has no lazy init: the module is refused;
5. RAMster (``zcache ramster=1``): the same RAM-poor node, its zcache pages sent to a
   RAM server over TCP;
6. and 7. Xen tmem: two guests of one Xen host, one booted with ``tmem``, one that
   loads the ``tmem`` module after its mounts;
8. beyond Linux (3.10-unload): zcache as in 3, swapped halfway for zcache with lz4
   without a reboot (``rmmod zcache``; docs/unloading.md).

Every run is a fresh machine driven through console commands (the same ones
``kmodemu shell`` takes), so the report can list exactly what ran. Runs 1-4 are
in-process machines; 5-7 are machine processes booted with the CLI and driven
through the client (``demo_nodes``). A backend this build does not have is shown
as "not available in this build", with the reason its commands gave, never
faked. Runs are deterministic and independent, so they go to worker processes
in parallel.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import click

from kmodemu.demo_nodes import Cluster, free_port
from kmodemu.kernel.cmdline import memparse
from kmodemu.machine import Machine, MachineDef
from kmodemu.report.html import render_report
from kmodemu.report.runs import (FOREIGN_FIELDS, NA_CELL, NOT_AVAILABLE, XL_TMEM_FIELDS, Config,
                                 Run, Sample, Workload, table_rows)
from kmodemu.scenario.session import Session

CONTENT_KINDS = ("text", "binary", "mixed", "text", "zero", "random")
ZCACHE_FIELDS = ("eph_pageframes", "pers_pageframes", "eph_zpages", "pers_zpages",
                 "eph_zbytes", "pers_zbytes", "zero_filled_pages", "same_filled_pages")

FULL = Workload()
QUICK = Workload(mem="16M", files=8, file_size="2M", anon="8M", rounds=4, reads_per_round=6)

CONFIGS = (
    Config("none", "no backend", "3.10", color="#888888"),
    Config("boot", "zcache boot param", "3.10", cmdline="zcache", builtin=("zcache",),
           color="#1f77b4"),
    Config("module", "zcache module", "3.10", modprobe=True, color="#ff7f0e", dashed=True),
    Config("module-3.9", "3.9 + module", "3.9", modprobe=True, color="#d62728", dashed=True),
    Config("ramster", "ramster", "3.10", modprobe=True, color="#2ca02c", kind="ramster",
           platform="3.10, TCP"),
    Config("xen-boot", "Xen tmem boot", "3.10", cmdline="tmem", builtin=("tmem",), color="#9467bd",
           kind="xen", platform="3.10 domU"),
    Config("xen-module", "Xen tmem module", "3.10", modprobe=True, color="#8c564b", dashed=True,
           kind="xen", platform="3.10 domU"),
    Config("swap", "zcache -> lz4", "3.10-unload", modprobe=True, color="#e377c2", dashed=True,
           swap_to="modprobe zcache zcache_comp_name=lz4"),
)


# -- one run --------------------------------------------------------------------

_READ = re.compile(r": \d+ pages, \d+ cached, (\d+) from cleancache, (\d+) from disk(?:, (\d+) CORRUPT)?")
_TOUCH = re.compile(r": \d+ pages, \d+ resident, (\d+) from frontswap, (\d+) from swap disk"
                    r"(?:, (\d+) CORRUPT)?")
RAMSTER_FIELDS = ("eph_pages_remoted", "pers_pages_remoted", "remote_eph_pages_succ_get",
                  "remote_pers_pages_succ_get")


class Shell(Protocol):
    """Runs one console command line on a machine (an in-process Session, or a ``demo_nodes.Node``)."""

    def run(self, line: str) -> Any: ...


class Driver:
    """The workload on one machine, a step at a time, so guests sharing a host can interleave."""

    def __init__(self, run: Run, work: Workload, shell: Shell):
        self.run, self.work, self.shell = run, work, shell
        self.rng = random.Random(work.seed)
        self.sample = Sample(0)
        #: extra counters read at each sample: (machine, debugfs dir, fields, into Sample.remote)
        self.remote_sources: list[tuple[Shell, str, tuple[str, ...]]] = []

    def sh(self, line: str, record: bool = True):
        outcome = self.shell.run(line)
        if record:
            self.run.commands.append(line)
        if outcome.rc:
            self.run.notes.append(f"$ {line}: " + " ".join(outcome.stderr.split("\n")).strip())
        return outcome

    def why(self, *words: str) -> list[str]:
        """The kernel's own lines about a refusal (dmesg), for the notes."""
        return [line.split("] ", 1)[-1] for line in self.sh("dmesg", False).stdout.splitlines()
                if any(w in line for w in words) and "staging" not in line]

    def disks(self) -> None:
        self.sh("mount /dev/sda1 /data -t ext4")
        self.sh("mkswap /dev/sdb1 256M")
        self.sh("swapon /dev/sdb1")

    def modprobe(self, line: str, *words: str) -> bool:
        if self.sh(line).rc:
            self.run.notes.extend(f"dmesg: {w}" for w in self.why(*words))
            return False
        return True

    def swap_backend(self, module: str, line: str) -> None:
        """Unload ``module`` and load ``line`` in its place, no reboot (3.10-unload)."""
        if self.sh(f"rmmod {module}").rc == 0:
            self.modprobe(line, module)
        else:
            self.run.notes.extend(f"dmesg: {w}" for w in self.why(module))

    def populate(self) -> None:
        work = self.work
        for i in range(work.files):
            self.sh(f"mkfile /data/f{i} --size {work.file_size} "
                    f"--content {CONTENT_KINDS[i % len(CONTENT_KINDS)]} --seed {work.seed + i}")
        self.sh(f"alloc app {work.anon} --content mixed --seed {work.seed}")
        self.run.zcache_present = "zcache" in self.sh("ls /sys/kernel/debug", False).stdout.split()
        if self.run.zcache_present:
            present = set(self.sh("ls /sys/kernel/debug/zcache", False).stdout.split())
            self.run.zcache_fields = tuple(f for f in ZCACHE_FIELDS if f in present)

    def round(self, r: int, pause: str | None = None) -> None:
        """One round of reads and a pass over the process (``pause``: a ``sleep`` after it, for
        a backend whose work runs on timers)."""
        work, rng, prev = self.work, self.rng, self.sample
        hot = max(1, work.files // 4)
        paths = [f"/data/f{rng.randrange(hot) if rng.random() < 0.6 else rng.randrange(work.files)}"
                 for _ in range(work.reads_per_round)]
        sample = Sample(r, cleancache_hits=prev.cleancache_hits, disk_reads=prev.disk_reads,
                        frontswap_loads=prev.frontswap_loads, swap_disk_reads=prev.swap_disk_reads,
                        corrupt=prev.corrupt)
        for m in _READ.finditer(self.sh("read " + " ".join(paths)).stdout):
            sample.cleancache_hits += int(m.group(1))
            sample.disk_reads += int(m.group(2))
            sample.corrupt += int(m.group(3) or 0)
        for m in _TOUCH.finditer(self.sh("touch-anon app").stdout):
            sample.frontswap_loads += int(m.group(1))
            sample.swap_disk_reads += int(m.group(2))
            sample.corrupt += int(m.group(3) or 0)
        if pause:
            self.sh(pause)
        self._counters(sample)
        self.run.samples.append(sample)
        self.sample = sample

    def _counters(self, sample: Sample) -> None:
        """What the console shows: debugfs counters, and pages written to swap (/proc/vmstat)."""
        sh = self.sh
        text = sh("cat /sys/kernel/debug/frontswap/succ_stores", False).stdout.strip()
        sample.frontswap_stores = int(text or 0)
        vmstat = dict(line.split() for line in sh("cat /proc/vmstat", False).stdout.splitlines())
        sample.swap_writes = int(vmstat.get("pswpout", 0))
        if self.run.zcache_fields:
            paths = " ".join(f"/sys/kernel/debug/zcache/{f}" for f in self.run.zcache_fields)
            values = sh(f"cat {paths}", False).stdout.split()
            sample.zcache = {f: int(v) for f, v in zip(self.run.zcache_fields, values)}
        for shell, directory, fields in self.remote_sources:
            out = shell.run("cat " + " ".join(f"{directory}/{f}" for f in fields))
            if out.rc == 0:
                sample.remote.update({f: int(v) for f, v in zip(fields, out.stdout.split())})

    def finish(self) -> None:
        """Every file's sha256 at the end: the bytes each backend gave back, compared in the table."""
        paths = [f"/data/f{i}" for i in range(self.work.files)]
        for line in self.sh("sha256sum " + " ".join(paths)).stdout.splitlines():
            digest, _, path = line.partition("  ")
            self.run.digests[path] = digest


def run_config(config: Config, work: Workload) -> Run:
    """Boot an in-process machine for ``config``, run the workload, sample counters every round."""
    run = Run(config)
    machine = Machine(MachineDef(profile=config.profile, cmdline=config.cmdline,
                                 builtin=list(config.builtin), mem=work.mem, seed=work.seed))
    with machine:
        d = Driver(run, work, Session(machine))
        d.disks()
        if config.modprobe:
            d.modprobe("modprobe zcache", "zcache")
        d.populate()
        for r in range(1, work.rounds + 1):
            if config.swap_to and r == work.rounds // 2 + 1:
                d.swap_backend("zcache", config.swap_to)
            d.round(r)
        d.finish()
    return run


def run_ramster(config: Config, work: Workload) -> Run:
    """The RAM-poor node (``work.mem``) runs zcache with RAMster; its pages go to a RAM
    server over loopback TCP (docs/ramster.md's admin procedure, console commands only)."""
    run = Run(config)
    with Cluster() as cluster:
        node, why = cluster.boot("node", "--mem", work.mem, "--seed", str(work.seed))
        if node is None:
            run.notes.append(f"kmodemu boot: {why}")
            return run
        d = Driver(run, work, node)
        d.disks()
        # the capability itself: a kernel configured without RAMster refuses ramster=1
        if not d.modprobe("modprobe zcache ramster=1", "ramster", "zcache"):
            run.unavailable = _reason(run, "RAMster")
            return run
        server, why = cluster.boot("server", "--mem", RAM_SERVER_MEM, "--seed", str(work.seed))
        if server is None:
            run.notes.append(f"kmodemu boot (the RAM server): {why}")
            return run
        sd = Driver(Run(config), work, server)
        sd.sh("modprobe zcache ramster=1")
        port = free_port(("127.0.0.1", "127.0.0.2"))
        nodes = (("system1", "127.0.0.1", 0), ("system2", "127.0.0.2", 1))
        for drv, me in ((sd, "system1"), (d, "system2")):
            _ramster_cluster(drv, nodes, port, me)
        for drv in (sd, d):
            for _, _, num in nodes:
                drv.sh(f"write /sys/kernel/mm/ramster/manual_node_up {num}")
        d.sh("write /sys/kernel/mm/ramster/remote_target_nodenum 0")
        d.sh("write /sys/kernel/mm/ramster/pers_remotify_enable 1")
        d.sh("write /sys/kernel/mm/ramster/eph_remotify_enable 1")
        d.remote_sources = [(node, "/sys/kernel/debug/ramster", RAMSTER_FIELDS),
                            (server, "/sys/kernel/debug/ramster", FOREIGN_FIELDS)]
        d.populate()
        d.sh("sleep 60")  # RAMster's worker starts remotifying once the node has been up a while
        for r in range(1, work.rounds + 1):
            d.round(r, pause="sleep 1")
        d.finish()
        run.others["RAM server"] = sd.run.commands
        run.notes.extend(f"RAM server: {n}" for n in sd.run.notes)
    return run


#: the RAM server's memory: room for the node's pages
RAM_SERVER_MEM = "256M"


def _ramster_cluster(d: Driver, nodes, port: int, me: str) -> None:
    """The cluster in configfs, as the howto writes it (nodemanager.c's attributes)."""
    base = "/sys/kernel/config/cluster/ramster"
    d.sh(f"mkdir {base}")
    for name, addr, num in nodes:
        d.sh(f"mkdir {base}/node/{name}")
        d.sh(f"write {base}/node/{name}/ipv4_address {addr}")
        d.sh(f"write {base}/node/{name}/ipv4_port {port}")
        d.sh(f"write {base}/node/{name}/num {num}")
        if name == me:
            d.sh(f"write {base}/node/{name}/local 1")


def _reason(run: Run, what: str) -> str:
    """The refusal as the commands gave it (the last note), for "not available" cells."""
    said = [n.split(": ", 1)[-1] for n in run.notes]
    return f"{what}: " + "; ".join(said) if said else f"{what} refused"


#: the Xen host's memory: both guests and what tmem keeps for them
XEN_HOST_MEM = "512M"
#: a guest's maxmem, in multiples of its memory: persistent tmem pages (frontswap's) are billed to
#: the domain, so at maxmem = memory every frontswap store fails (docs/xen.md)
XEN_MAXMEM_FACTOR = 2


def run_xen(configs: tuple[Config, ...], work: Workload) -> list[Run]:
    """Guests of one Xen host sharing its tmem: one booted with ``tmem`` on its command line,
    one that loads the ``tmem`` module after its mounts (docs/xen.md; console commands only:
    ``kmodemu boot --xen``, ``xl create``, ``--machine HOST/GUEST``)."""
    runs = [Run(c) for c in configs]
    with Cluster() as cluster:
        host, why = cluster.boot("host", "--xen", "--xen-cmdline", "tmem", "--mem", XEN_HOST_MEM,
                                 "--seed", str(work.seed))
        if host is None:
            said = why.removeprefix("Error: ").split(" (Did you mean")[0]
            for r in runs:
                if "'--xen'" in said:  # the CLI has no hypervisor to boot
                    r.unavailable = f"no Xen hypervisor: kmodemu boot --xen: {said}"
                else:  # it has one, and it did not boot: that is a failure, not a gap
                    r.notes.append(f"kmodemu boot --xen: {said}")
            return runs
        hd = Driver(Run(configs[0]), work, host)
        if hd.sh("xl list", False).rc:
            for r in runs:
                r.unavailable = "the Xen host has no xl: " + _reason(hd.run, "xl")
            return runs
        drivers = []
        for i, (c, r) in enumerate(zip(configs, runs)):
            name = f"guest{i + 1}"
            # xl create with key=value settings only (xl config syntax: strings are quoted);
            # builtin= and profile= choose the guest kernel's configuration as kmodemu boot does
            mb = memparse(work.mem) >> 20
            settings = [f'name="{name}"', f"memory={mb}", f"maxmem={XEN_MAXMEM_FACTOR * mb}",
                        f'profile="{c.profile}"']
            if c.cmdline:
                settings.append(f'extra="{c.cmdline}"')
            if c.builtin:
                settings.append(f'builtin="{",".join(c.builtin)}"')
            if hd.sh("xl create " + " ".join(shlex.quote(x) for x in settings)).rc:
                continue  # the host's note says why; the column shows "failed"
            d = Driver(r, work, host.guest(name))
            d.disks()
            if c.modprobe and not d.modprobe("modprobe tmem", "tmem", "xen"):
                r.unavailable = _reason(r, "the Xen tmem shim")
                continue
            d.populate()
            drivers.append(d)
        for rnd in range(1, work.rounds + 1):
            for d in drivers:  # the guests take turns: they compete for the host's tmem
                d.round(rnd)
            info = _xl_info(host.run("xl info").stdout)  # once a round: the host is shared
            for d in drivers:
                d.sample.host = dict(info)
        for d in drivers:
            d.finish()
        for r in runs:
            r.others["Xen host"] = hd.run.commands
            r.notes.extend(f"Xen host: {n}" for n in hd.run.notes)
    return runs


def _xl_info(text: str) -> dict[str, int]:
    """The tmem lines of ``xl info`` (``key  : value``); none when this xl has no such lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in XL_TMEM_FIELDS and value.strip().isdigit():
            out[key.strip()] = int(value)
    return out


def _run_group(group: str, work: Workload) -> list[Run]:
    """The runs of one worker: a local or RAMster config alone, the Xen guests together."""
    configs = tuple(c for c in CONFIGS if _group(c) == group)
    if configs[0].kind == "xen":
        return run_xen(configs, work)
    if configs[0].kind == "ramster":
        return [run_ramster(configs[0], work)]
    return [run_config(configs[0], work)]


def _group(c: Config) -> str:
    return "xen" if c.kind == "xen" else c.key


def run_all(work: Workload, jobs: int, keys: tuple[str, ...] | None = None) -> list[Run]:
    """Every run (or those in ``keys``), in worker processes when ``jobs`` > 1 (same results either
    way), in CONFIGS order."""
    groups = list(dict.fromkeys(_group(c) for c in CONFIGS if keys is None or c.key in keys))
    if jobs <= 1:
        batches = [_run_group(g, work) for g in groups]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(groups))) as pool:
            batches = list(pool.map(_run_group, groups, [work] * len(groups)))
    runs = {r.config.key: r for batch in batches for r in batch}
    return [runs[c.key] for c in CONFIGS if c.key in runs]


# -- the table ------------------------------------------------------------------

def format_table(runs: list[Run]) -> str:
    rows = table_rows(runs)
    heads = [r.config.title for r in runs]
    kernels = [f"({r.config.where})" for r in runs]
    w0 = max(len(name) for name, _ in rows)
    widths = [max(len(h), len(k), *(len(cells[i]) for _, cells in rows))
              for i, (h, k) in enumerate(zip(heads, kernels))]
    lines = [" " * w0 + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths)),
             " " * w0 + "".join(f"  {k:>{w}}" for k, w in zip(kernels, widths))]
    for name, cells in rows:
        lines.append(f"{name:<{w0}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths)))
    missing = [r for r in runs if r.unavailable]
    if missing:
        lines += ["", f"{NA_CELL}: {NOT_AVAILABLE}:"]
        lines += [f"  {r.config.title}: {r.unavailable}" for r in missing]
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
@click.option("--run", "only", multiple=True, type=click.Choice([c.key for c in CONFIGS]),
              help="Only this run (repeatable); 'none', the baseline, is always run.")
def demo(html_path, no_html, open_browser, quick, rounds, jobs, json_path, only) -> None:
    """Run one file-and-swap workload on every tmem backend and compare them.

    \b
    1. no backend                          (3.10)
    2. zcache built in, boot parameter     (3.10)
    3. zcache as a module, after mounting  (3.10: lazy init replays the mount)
    4. the same on 3.9                     (no lazy init: the module is refused)
    5. ramster: zcache ramster=1, pages to a RAM server over TCP
    6. Xen tmem: a guest booted with tmem  (one Xen host for 6 and 7)
    7. Xen tmem: a guest loading the module after its mounts
    8. zcache swapped for zcache with lz4 halfway, no reboot (3.10-unload)

    A backend this build does not have is shown as "not available in this build".
    Prints a side-by-side table and writes a self-contained HTML report.
    """
    work = QUICK if quick else FULL
    if rounds:
        work = Workload(**{**asdict(work), "rounds": rounds})
    keys = tuple(dict.fromkeys(("none", *only))) if only else None
    count = len(keys) if keys else len(CONFIGS)
    jobs = jobs or min(4, os.cpu_count() or 1)
    click.echo(f"kmodemu demo: {work.describe()}; {count} runs, {jobs} at a time…", err=True)
    runs = run_all(work, jobs, keys)
    click.echo(f"The same workload ({work.describe()}) on {len(runs)} runs:\n")
    click.echo(format_table(runs))
    notes = [f"{r.config.title}: {n}" for r in runs if not r.unavailable for n in r.notes]
    if notes:
        click.echo("\nNotes:")
        for n in notes:
            click.echo(f"  {n}")
    if json_path is not None:
        import json

        json_path.write_text(json.dumps({"workload": asdict(work), "runs": [asdict(r) for r in runs]},
                                        indent=1) + "\n")
    if not no_html:
        html_path.write_text(render_report(runs, work), encoding="utf-8")
        click.echo(f"\nReport: {html_path.resolve().as_uri()}")
        if open_browser:
            click.launch(str(html_path.resolve()))
    sys.stdout.flush()
