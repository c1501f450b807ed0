"""Console commands of the memory model: util-linux/procps-style tools and workloads.

Errors use the real tools' words and exit codes: mount/umount exit 32 on a
failed mount (MNT_EX_FAIL), swapon 255 (its -1 status), swapoff 4
(SWAPOFF_EX_FAILURE) or 2 for ENOMEM, coreutils-style tools 1.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sys

import click

from kmodemu.console.context import machine_of, read_host
from kmodemu.console.mkfs import COMMANDS as MKFS_COMMANDS
from kmodemu.errors import KernelError
from kmodemu.kernel.cmdline import memparse
from kmodemu.mm.corpus import Content, parse_content
from kmodemu.mm.filesystem import format_uuid
from kmodemu.mm.page import PAGE_SIZE
from kmodemu.trust import policy_of
from kmodemu.workloads.workload import (ANON_PATTERNS, MAX_ROUNDS, PATTERNS, WorkloadSpec, parse_duration,
                                       run_workload)

MNT_EX_USAGE = 1
MNT_EX_FAIL = 32
SWAPON_FAIL = 255
SWAPOFF_EX_ENOMEM = 2
SWAPOFF_EX_FAILURE = 4


def _mm(ctx: click.Context):
    mm = machine_of(ctx).kernel.mm
    if mm is None:
        raise click.ClickException("this kernel has no memory model")
    return mm


def _size(text: str) -> int:
    try:
        return memparse(text)
    except ValueError:
        raise click.BadParameter(f"invalid size '{text}'") from None


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.echo(message, err=True)
    ctx.exit(code)


# -- mount / umount -------------------------------------------------------------------

@click.command("mount")
@click.argument("source", required=False)
@click.argument("target", required=False)
@click.option("-t", "--types", "fstype", default=None, help="Filesystem type (ext4, btrfs, ocfs2, tmpfs…).")
@click.option("-o", "--options", default="", help="Mount options; uuid=<uuid> mounts as a shared (clustered) fs.")
@click.pass_context
def mount_cmd(ctx, source, target, fstype, options):
    """Mount a filesystem: mount DEVICE DIR [-t TYPE] [-o OPTIONS]; no arguments lists mounts."""
    mm = _mm(ctx)
    if source is None:
        for sb in mm.fs.mounts:
            click.echo(f"{sb.source} on {sb.mountpoint} type {sb.fstype.name} ({sb.options})")
        return
    if target is None:
        _fail(ctx, f"mount: {source}: can't find in /etc/fstab.", MNT_EX_USAGE)
    try:
        mm.fs.mount(source, target, fstype, options)
    except KernelError as e:
        tgt = target if target.startswith("/") else "/" + target
        msg = {errno.ENOENT: "mount point does not exist.",
               errno.ENODEV: f"unknown filesystem type '{fstype}'.",
               errno.ENOTBLK: f"special device {source} does not exist.",
               errno.EBUSY: f"{source} already mounted or mount point busy.",
               }.get(e.errno, f"wrong fs type, bad option, bad superblock on {source}, missing "
                              "codepage or helper program, or other error.")
        click.echo(f"mount: {tgt}: {msg}", err=True)
        dev = mm.fs.devices.get(source)
        if (e.errno == errno.EINVAL and fstype is None and dev is not None and dev.fstype is None
                and dev.swap_size is None):
            # what Linux leaves unsaid: the device is blank
            click.echo(f"kmodemu: mount: {source} holds no filesystem yet: make one with "
                       f"'mkfs -t ext4 {source}' (or mkfs.ext4, mkfs.xfs, mkfs.btrfs, mkfs.vfat), or "
                       f"mount it with '-t TYPE', which formats a fresh device at its first mount.",
                       err=True)
        ctx.exit(MNT_EX_FAIL)


@click.command("umount")
@click.argument("target")
@click.pass_context
def umount_cmd(ctx, target):
    """Unmount a filesystem by its directory or device."""
    mm = _mm(ctx)
    try:
        mm.fs.umount(target)
    except KernelError as e:
        if e.errno == errno.EBUSY:
            _fail(ctx, f"umount: {target}: target is busy.", MNT_EX_FAIL)
        elif target.startswith("/") and not mm.fs.is_dir(target) and mm.fs.blockdev(target) is None:
            _fail(ctx, f"umount: {target}: no mount point specified.", MNT_EX_FAIL)
        else:
            _fail(ctx, f"umount: {target}: not mounted.", MNT_EX_FAIL)


# -- swap ----------------------------------------------------------------------------

def _scaled(nbytes: int, units: tuple[str, ...], sep: str) -> str:
    """A size in the largest binary unit that keeps it ≥ 1, one decimal at most."""
    value = float(nbytes)
    i = 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}{sep}{units[i]}"


def _human(nbytes: int) -> str:
    """util-linux's size_to_human_string: ``64 MiB``."""
    return _scaled(nbytes, ("B", "KiB", "MiB", "GiB", "TiB"), " ")


@click.command("mkswap")
@click.argument("device")
@click.argument("size", required=False)
@click.pass_context
def mkswap_cmd(ctx, device, size):
    """Set up a swap area: mkswap DEVICE [SIZE] (SIZE in 1 KiB blocks, or with K/M/G; default 64M)."""
    mm = _mm(ctx)
    if size is None:
        nbytes = 64 << 20
    elif size.isdigit():
        nbytes = int(size) * 1024
    else:
        nbytes = _size(size)
    pages = nbytes // PAGE_SIZE
    try:
        mm.swap.mkswap(device, pages)
    except KernelError as e:
        if e.errno == errno.ENOENT:
            _fail(ctx, f"mkswap: cannot open {device}: No such file or directory", 1)
        elif e.errno == errno.EBUSY:
            _fail(ctx, f"mkswap: {device}: cannot open {device}: Device or resource busy", 1)
        elif e.errno == errno.ENOSPC:
            _fail(ctx, f"mkswap: error: {e.message}", 1)
        else:
            _fail(ctx, "mkswap: error: swap area needs to be at least 40 KiB", 1)
        return
    uuid = format_uuid(mm.kernel.rng.randbytes(16))
    usable = (pages - 1) * PAGE_SIZE
    click.echo(f"Setting up swapspace version 1, size = {_human(usable)} ({usable} bytes)")
    click.echo(f"no label, UUID={uuid}")


def _swapon_show(mm) -> None:
    devs = mm.swap.devices()
    if not devs:
        return
    rows = [("NAME", "TYPE", "SIZE", "USED", "PRIO")]
    for d in devs:
        rows.append((d.path, "partition", _short(d.pages * PAGE_SIZE), _short(d.inuse_pages * PAGE_SIZE),
                     str(d.prio)))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo(f"{r[0]:<{w[0]}} {r[1]:<{w[1]}} {r[2]:>{w[2]}} {r[3]:>{w[3]}} {r[4]:>{w[4]}}")


def _short(nbytes: int) -> str:
    """lsblk-style short size: 64M, 1.5G, 0B."""
    return _scaled(nbytes, ("B", "K", "M", "G", "T"), "")


@click.command("swapon")
@click.argument("device", required=False)
@click.option("-p", "--priority", type=int, default=None, help="Priority of the swap device.")
@click.option("--show", is_flag=True, help="Show the swap devices in use.")
@click.pass_context
def swapon_cmd(ctx, device, priority, show):
    """Enable a swap device (after mkswap); no arguments shows those in use."""
    mm = _mm(ctx)
    if device is None or show:
        _swapon_show(mm)
        return
    try:
        mm.swap.swapon(device, priority)
    except KernelError as e:
        if e.errno == errno.ENOENT:
            _fail(ctx, f"swapon: cannot open {device}: No such file or directory", SWAPON_FAIL)
        elif e.message == "read swap header failed":
            _fail(ctx, f"swapon: {device}: read swap header failed", SWAPON_FAIL)
        else:
            _fail(ctx, f"swapon: {device}: swapon failed: {os.strerror(e.errno)}", SWAPON_FAIL)


@click.command("swapoff")
@click.argument("devices", nargs=-1)
@click.option("-a", "--all", "all_", is_flag=True, help="Disable every swap device.")
@click.pass_context
def swapoff_cmd(ctx, devices, all_):
    """Disable swap devices: every page comes back into RAM first."""
    mm = _mm(ctx)
    if not devices and not all_:
        _fail(ctx, "swapoff: bad usage\nTry 'swapoff --help' for more information.", 16)
    status = 0
    targets = list(devices)
    if all_:
        targets += [d.path for d in reversed(mm.swap.devices())]
    for dev in targets:
        try:
            mm.swap.swapoff(dev)
        except KernelError as e:
            click.echo(f"swapoff: {dev}: swapoff failed: {os.strerror(e.errno)}", err=True)
            status |= SWAPOFF_EX_ENOMEM if e.errno == errno.ENOMEM else SWAPOFF_EX_FAILURE
    ctx.exit(status)


# -- free / stat / ps -----------------------------------------------------------------

@click.command("free")
@click.option("-b", "--bytes", "unit", flag_value="b", help="Show output in bytes.")
@click.option("-k", "--kibi", "unit", flag_value="k", default=True, help="Show output in kibibytes.")
@click.option("-m", "--mebi", "unit", flag_value="m", help="Show output in mebibytes.")
@click.option("-g", "--gibi", "unit", flag_value="g", help="Show output in gibibytes.")
@click.pass_context
def free_cmd(ctx, unit):
    """Display the amount of free and used memory, as procps free does."""
    mm = _mm(ctx)
    info = {}
    for line in mm.meminfo().splitlines():
        name, _, rest = line.partition(":")
        info[name] = int(rest.split()[0])
    shift = {"b": -10, "k": 0, "m": 10, "g": 20}[unit]

    def fmt(kb: int) -> str:
        return str(kb << 10) if shift < 0 else str(kb >> shift)

    total, free, cache = info["MemTotal"], info["MemFree"], info["Cached"] + info["Buffers"]
    used = total - free - cache
    cols = ("total", "used", "free", "shared", "buff/cache", "available")
    click.echo(" " * 7 + "".join(f" {c:>11}" for c in cols))
    mem = (total, used, free, info["Shmem"], cache, info["MemAvailable"])
    click.echo(f"{'Mem:':<7}" + "".join(f" {fmt(v):>11}" for v in mem))
    st, sf = info["SwapTotal"], info["SwapFree"]
    click.echo(f"{'Swap:':<7}" + "".join(f" {fmt(v):>11}" for v in (st, st - sf, sf)))



@click.command("stat")
@click.pass_context
def stat_cmd(ctx):
    """Summary of the tmem frontends: backend, lazy-init state and counters."""
    mm = _mm(ctx)
    cc, fs = mm.cleancache, mm.frontswap
    lazy = "yes" if cc.lazy_init else "no"
    click.echo(f"cleancache: backend {'registered' if cc.registered else 'none'}, lazy init {lazy}")
    if cc.lazy_init:
        used = cc.slots()
        priv = [s for s in used if s[0] == "private"]
        shared = [s for s in used if s[0] == "shared"]
        pending = sum(1 for s in used if s[2] == -1)
        click.echo(f"  slots: {len(priv)} private, {len(shared)} shared in use; "
                   f"{pending} without a backend pool")
    for name, value in cc.counters().items():
        click.echo(f"  {name:<14}{value}")
    click.echo(f"frontswap: backend {'registered' if fs.registered else 'none'}, lazy init {lazy}")
    if fs.lazy_init:
        pending = fs.pending_types()
        click.echo(f"  swap types waiting for a backend: {' '.join(map(str, pending)) or '-'}")
    for name, value in fs.counters().items():
        click.echo(f"  {name:<14}{value}")
    click.echo(f"  {'curr_pages':<14}{fs.curr_pages()}")
    click.echo(f"tmem backend frames: {mm.frames.used['tmem']}")



@click.command("ps")
@click.pass_context
def ps_cmd(ctx):
    """Processes with anonymous memory: pages resident and swapped."""
    mm = _mm(ctx)
    click.echo(f"{'NAME':<16}{'PAGES':>8}{'RES':>8}{'SWAP':>8}  CONTENT")
    for p in mm.anon.processes.values():
        click.echo(f"{p.name:<16}{len(p.pages):>8}{p.resident():>8}{p.swapped():>8}  {p.content.label}")



# -- files ----------------------------------------------------------------------------

def _content(ctx: click.Context, spec: str, size: int, seed: int | None) -> Content:
    mm = _mm(ctx)
    try:
        kind, host = parse_content(spec)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--content") from None
    if seed is None:
        seed = mm.kernel.rng.getrandbits(32)
    if host is None:
        return Content(mm.corpus, kind, seed)
    try:
        data = read_host(ctx, policy_of(mm.kernel).host_file(host), size)
    except OSError as e:
        raise click.BadParameter(f"{host}: {e.strerror}", param_hint="--content") from None
    return Content(mm.corpus, "host", seed, data)


@click.command("mkdir")
@click.option("-p", "--parents", is_flag=True, help="Make parent directories as needed.")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def mkdir_cmd(ctx, parents, paths):
    """Make directories (mount points, or directories inside a filesystem)."""
    kernel = ctx.find_root().obj.kernel
    rc = 0
    for p in paths:
        try:
            configfs = getattr(kernel, "configfs", None)
            if configfs is not None and configfs.owns(p):
                configfs.mkdir(p)  # a kernel object, made by its configfs group
            else:
                _mm(ctx).fs.mkdir(p, parents=parents)
        except KernelError as e:
            click.echo(f"mkdir: cannot create directory '{p}': {os.strerror(e.errno)}", err=True)
            rc = 1
    ctx.exit(rc)


@click.command("mkfile")
@click.argument("path")
@click.option("--size", "size", default="8M", help="File size (K/M/G suffixes).")
@click.option("--content", default="text",
              help="zero, same, text, binary, random, mixed or host:PATH.")
@click.option("--seed", type=int, default=None, help="Content seed (default: from the kernel's RNG).")
@click.pass_context
def mkfile_cmd(ctx, path, size, content, seed):
    """Create a file with generated (or host) contents, as if written and synced earlier."""
    mm = _mm(ctx)
    nbytes = _size(size)
    c = _content(ctx, content, nbytes, seed)
    if c.data is not None and len(c.data) < nbytes:
        nbytes = len(c.data)
    try:
        inode = mm.fs.create(path, nbytes, c)
    except KernelError as e:
        _fail(ctx, f"mkfile: {path}: {os.strerror(e.errno)}", 1)
        return
    click.echo(f"{path}: {nbytes} bytes, {inode.nr_pages} pages, {c.label}")


@click.command("read")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def read_cmd(ctx, paths):
    """Read whole files through the page cache: pages, cache hits, cleancache hits, disk reads."""
    mm = _mm(ctx)
    rc = 0
    for p in paths:
        try:
            st = mm.pagecache.read(mm.fs.lookup(p))
        except KernelError as e:
            click.echo(f"read: {p}: {os.strerror(e.errno)}", err=True)
            rc = 1
            continue
        line = (f"{p}: {st.pages} pages, {st.cached} cached, {st.cleancache_hits} from cleancache, "
                f"{st.disk_reads} from disk")
        if st.corrupt:
            line += f", {st.corrupt} CORRUPT"
            rc = 1
        click.echo(line)
    ctx.exit(rc)


@click.command("sha256sum")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def sha256sum_cmd(ctx, paths):
    """Print the SHA-256 of files as coreutils does, reading them through the page cache like ``read``."""
    mm = _mm(ctx)
    rc = 0
    for p in paths:
        try:
            digest = mm.pagecache.sha256(mm.fs.lookup(p))
        except KernelError as e:
            text = "Is a directory" if e.errno == errno.EISDIR else os.strerror(e.errno)
            click.echo(f"sha256sum: {p}: {text}", err=True)
            rc = 1
            continue
        click.echo(f"{digest}  {p}")
    ctx.exit(rc)



@click.command("rm")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def rm_cmd(ctx, paths):
    """Remove files (their cached pages and cleancache copies are invalidated)."""
    mm = _mm(ctx)
    rc = 0
    for p in paths:
        try:
            mm.fs.unlink(p)
        except KernelError as e:
            text = "Is a directory" if e.errno == errno.EISDIR else os.strerror(e.errno)
            click.echo(f"rm: cannot remove '{p}': {text}", err=True)
            rc = 1
    ctx.exit(rc)


@click.command("truncate")
@click.option("-s", "--size", "size", required=True, help="New size (K/M/G suffixes).")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def truncate_cmd(ctx, size, paths):
    """Shrink or extend files (truncation invalidates cleancache for the inode)."""
    mm = _mm(ctx)
    nbytes = _size(size)
    rc = 0
    for p in paths:
        try:
            mm.fs.truncate(p, nbytes)
        except KernelError as e:
            click.echo(f"truncate: cannot open '{p}' for writing: {os.strerror(e.errno)}", err=True)
            rc = 1
    ctx.exit(rc)


# -- anonymous memory -----------------------------------------------------------------

@click.command("alloc")
@click.argument("name")
@click.argument("size")
@click.option("--content", default="mixed", help="zero, same, text, binary, random, mixed or host:PATH.")
@click.option("--seed", type=int, default=None, help="Content seed (default: from the kernel's RNG).")
@click.pass_context
def alloc_cmd(ctx, name, size, content, seed):
    """Start process NAME with SIZE of anonymous memory, every page written."""
    mm = _mm(ctx)
    if not name or any(ch.isspace() or not ch.isprintable() for ch in name):
        # ps and kill name processes by this word: it must be one visible word
        raise click.BadParameter("a process name is one word of printable characters",
                                 param_hint="'NAME'")
    nbytes = _size(size)
    c = _content(ctx, content, nbytes, seed)
    try:
        proc = mm.anon.alloc(name, (nbytes + PAGE_SIZE - 1) // PAGE_SIZE, c)
    except KernelError as e:
        msg = "process exists" if e.errno == errno.EEXIST else os.strerror(e.errno)
        _fail(ctx, f"alloc: {name}: {msg}", 1)
        return
    click.echo(f"{name}: {len(proc.pages)} pages, {proc.resident()} resident, {proc.swapped()} swapped")


@click.command("touch-anon")
@click.argument("name")
@click.option("--sha256", "sha256", is_flag=True,
              help="Then print the SHA-256 of the pages as read, as sha256sum prints a file's.")
@click.pass_context
def touch_anon_cmd(ctx, name, sha256):
    """Touch every page of process NAME: swapped pages fault back in and are checked."""
    mm = _mm(ctx)
    digest = hashlib.sha256() if sha256 else None
    try:
        st = mm.anon.touch(name, digest=digest)
    except KernelError as e:
        _fail(ctx, f"touch-anon: {name}: {'no such process' if e.errno == errno.ESRCH else os.strerror(e.errno)}", 1)
        return
    line = (f"{name}: {st.pages} pages, {st.resident} resident, {st.from_frontswap} from frontswap, "
            f"{st.from_disk} from swap disk")
    if st.corrupt:
        line += f", {st.corrupt} CORRUPT"
    click.echo(line)
    if digest is not None:
        click.echo(f"{digest.hexdigest()}  {name}")
    ctx.exit(1 if st.corrupt else 0)


@click.command("kill")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def kill_cmd(ctx, names):
    """End processes: their frames and swap slots are freed."""
    mm = _mm(ctx)
    rc = 0
    for n in names:
        try:
            mm.anon.kill(n)
        except KernelError:
            click.echo(f"kill: ({n}) - No such process", err=True)
            rc = 1
    ctx.exit(rc)


# -- pressure -------------------------------------------------------------------------

@click.command("pressure")
@click.argument("pages", type=click.IntRange(min=1))
@click.pass_context
def pressure_cmd(ctx, pages):
    """Ask reclaim to free PAGES frames now (file pages go to cleancache, anon to frontswap)."""
    mm = _mm(ctx)
    before = (mm.reclaimer.file_evicted, mm.reclaimer.anon_swapped, mm.reclaimer.shrunk)
    freed = mm.reclaim(pages)
    r = mm.reclaimer
    click.echo(f"reclaimed {freed} frames: {r.file_evicted - before[0]} file pages evicted, "
               f"{r.anon_swapped - before[1]} anon pages swapped, {r.shrunk - before[2]} from shrinkers")


@click.command("drop-caches")
@click.argument("mode", type=click.IntRange(1, 3), default=1)
@click.pass_context
def drop_caches_cmd(ctx, mode):
    """``echo MODE > /proc/sys/vm/drop_caches``: clean file pages leave RAM (into cleancache)."""
    mm = _mm(ctx)
    n = mm.drop_caches(mode)
    click.echo(f"dropped {n} page cache pages")


#: a run estimated to touch this many pages takes about a second: worth a progress bar
LONG_RUN_PAGES = 500_000


def _progress(spec, stream):
    """A progress bar over the rounds (or the virtual time), only on a terminal, only when long.

    A run for a ``--duration`` counts as long: how many rounds it takes is
    not known in advance. Captured output (tests, scenarios,
    ``machine.capture``) never gets one.
    """
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty() or (not spec.duration
                                          and spec.estimated_pages() < LONG_RUN_PAGES):
        return contextlib.nullcontext(None)
    return click.progressbar(length=spec.progress_total(), label="workload", file=stream)


def _duration(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--duration'") from None


def _exclusive(ctx: click.Context, *names: str) -> None:
    from click.core import ParameterSource

    given = [n for n in names if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
    if len(given) > 1:
        opts = [f"--{n.replace('_', '-')}" for n in given]
        raise click.UsageError(f"{opts[0]} and {opts[1]} cannot be used together.")


@click.command("workload")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--dir", "directories", multiple=True, default=["/mnt"], show_default=True,
              help="Where the files go; repeat it to spread them over several filesystems.")
@click.option("--files", type=click.IntRange(min=0), default=8, show_default=True)
@click.option("--file-size", default="4M", show_default=True)
@click.option("--working-set", default=None,
              help="Total size of the files (may exceed RAM): files of --file-size until it is "
                   "reached, instead of --files.")
@click.option("--pattern", type=click.Choice(PATTERNS),
              default="skewed", show_default=True, help="How files are read each round.")
@click.option("--passes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Times each round goes over its file reads.")
@click.option("--anon", default="16M", show_default=True, help="Anonymous memory of the process.")
@click.option("--anon-pattern", type=click.Choice(ANON_PATTERNS),
              default="sequential", show_default=True, help="How the process touches its memory.")
@click.option("--rounds", type=click.IntRange(1, MAX_ROUNDS), default=4, show_default=True)
@click.option("--duration", default=None,
              help="Run rounds until this much virtual time has passed (2s, 500ms…), "
                   "instead of --rounds.")
@click.option("--keep", is_flag=True, help="Keep the files and the process afterwards.")
@click.pass_context
def workload_cmd(ctx, seed, directories, files, file_size, working_set, pattern, passes, anon,
                 anon_pattern, rounds, duration, keep):
    """A seeded mixed workload: file reads in a pattern, anonymous memory, pressure.

    Reports per-filesystem cleancache hit rates, swap I/O and faults, and the
    disk I/O tmem avoided; the same figures go to /proc/kmodemu/workload.
    """
    _exclusive(ctx, "files", "working_set")
    _exclusive(ctx, "rounds", "duration")
    mm = _mm(ctx)
    ws = 0 if working_set is None else _size(working_set)
    fsize = _size(file_size)
    if fsize == 0 or (working_set is not None and ws == 0):
        raise click.BadParameter("must be at least 1 byte",
                                 param_hint="'--file-size'" if fsize == 0 else "'--working-set'")
    spec = WorkloadSpec(seed=seed, directory=directories[0], directories=tuple(directories),
                        files=files, file_size=fsize, anon=_size(anon), rounds=rounds,
                        keep=keep, pattern=pattern, passes=passes, working_set=ws,
                        anon_pattern=anon_pattern, duration=_duration(duration))
    stream = sys.stdout
    try:
        with _progress(spec, stream) as bar:
            rep = run_workload(mm, spec, None if bar is None else bar.update)
    except KernelError as e:  # refused before anything changed, or out of memory in a round
        subject = getattr(e, "subject", None)
        what = "process exists" if e.errno == errno.EEXIST else os.strerror(e.errno)
        _fail(ctx, f"workload: {subject}: {what}" if subject else f"workload: {what}", 1)
        return
    for line in rep.lines():
        click.echo(line)
    if spec.duration and rep.virtual_ns < round(spec.duration * 1e9):
        # a duration the round limit cuts short is said, not silently shortened
        click.echo(f"workload: stopped at the limit of {MAX_ROUNDS} rounds, after "
                   f"{rep.virtual_ns / 1e9:.3f} s of the {spec.duration:g} s asked", err=True)
    ctx.exit(1 if rep.corrupt else 0)


COMMANDS: list[click.Command] = [
    mount_cmd, umount_cmd, mkswap_cmd, swapon_cmd, swapoff_cmd, free_cmd, stat_cmd, ps_cmd,
    mkdir_cmd, mkfile_cmd, read_cmd, sha256sum_cmd, rm_cmd, truncate_cmd, alloc_cmd, touch_anon_cmd, kill_cmd,
    pressure_cmd, drop_caches_cmd, workload_cmd, *MKFS_COMMANDS,
]
#: the commands above that only report (never journaled)
READONLY: frozenset[str] = frozenset({"free", "stat", "ps"})
