"""The console: every command a machine understands, shared by the CLI, ``kmodemu
shell`` and scenario files, so a transcript means the same thing everywhere.

Commands print with ``click.echo``; ``execute`` points stdout/stderr at the
caller's streams for the duration of one command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import IO, Sequence

import click

from kmodemu.console.mm import COMMANDS as MM_COMMANDS, READONLY as MM_READONLY
from kmodemu.console.xen import COMMANDS as XEN_COMMANDS
from kmodemu.console.xen import xl_readonly
from kmodemu.console.context import ConsoleMachine, machine_of
from kmodemu.errors import KernelError

#: exit status of a command that hit a bug (sysexits' EX_SOFTWARE); never journaled
INTERNAL_ERROR = 70
KMOD_TOOLS = ("insmod", "rmmod", "lsmod", "modprobe", "modinfo", "depmod")
#: the most virtual time one ``sleep`` lets pass: a year
MAX_SLEEP_S = 365 * 86400
#: commands that never change a machine (not journaled)
READONLY = frozenset({"lsmod", "modinfo", "dmesg", "cat", "ls", "uname", "help"}) | MM_READONLY


def is_readonly(argv: Sequence[str]) -> bool:
    """True when the command cannot change the machine (never journaled)."""
    if not argv:
        return True
    if "--help" in argv[1:] or (argv[0] not in KMOD_TOOLS and "-h" in argv[1:]):
        return True
    if argv[0] == "dmesg":
        return not any(a in ("-c", "-C", "--clear", "--read-clear") for a in argv[1:])
    if argv[0] == "xl":
        return xl_readonly(argv[1:])
    if argv[0] == "xen-guest":
        return len(argv) < 3 or is_readonly(argv[2:])
    if argv[0] == "modprobe":
        return any(a in ("-n", "--dry-run", "--show-depends", "-D", "--showconfig", "-c",
                         "--show-config", "-R", "--resolve-alias") for a in argv[1:])
    return argv[0] in READONLY


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def console(ctx: click.Context) -> None:
    """Commands of an emulated machine."""


def _kmod_tool(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True, "help_option_names": []},
                   add_help_option=False, help=f"kmod's {name}, byte-exact with kmod 30.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def tool(ctx: click.Context, args: tuple[str, ...]) -> None:
        from kmodemu.kmod import TOOLS
        from kmodemu.kmod.context import ToolContext

        m = machine_of(ctx)
        if name == "lsmod" and "--json" in args:
            ctx.exit(_lsmod_json(m, args))
        tctx = ToolContext(kernel=m.kernel, root=m.root, stdout=sys.stdout, stderr=sys.stderr,
                           env=dict(os.environ))
        ctx.exit(TOOLS[name]([name, *args], tctx))

    return tool


def _lsmod_json(m: ConsoleMachine, args: Sequence[str]) -> int:
    """``lsmod --json``: the same facts as lsmod, as a JSON list (a kmodemu extension)."""
    if list(args) != ["--json"]:
        click.echo("lsmod: --json takes no other arguments", err=True)
        return 1
    mods = [{"name": x.name, "size": x.size, "refcnt": x.refcnt, "used_by": list(x.holders),
             "state": x.state, "permanent": x.permanent, "taint": x.taint.letters()}
            for x in m.kernel.modules.loaded()]
    click.echo(json.dumps(mods, indent=2))
    return 0


for _name in KMOD_TOOLS:
    console.add_command(_kmod_tool(_name))


@console.command()
@click.option("-c", "--read-clear", "clear_after", is_flag=True, help="Print, then clear the buffer.")
@click.option("-C", "--clear", "clear_only", is_flag=True, help="Clear the buffer.")
@click.option("-x", "--decode", is_flag=True, help="Show the level of each line.")
@click.option("-t", "--notime", is_flag=True, help="Do not show timestamps.")
@click.option("-l", "--level", "levels", default=None, help="Only these levels (err,warn,…).")
@click.pass_context
def dmesg(ctx, clear_after, clear_only, decode, notime, levels) -> None:
    """Print the kernel log, as util-linux dmesg does."""
    from kmodemu.kernel.printk import LEVEL_NAMES

    log = machine_of(ctx).kernel.log
    if clear_only:
        log.clear()
        return
    wanted = None
    if levels:
        wanted = set()
        for lv in levels.split(","):
            if lv not in LEVEL_NAMES:
                raise click.UsageError(f"unknown level '{lv}'")
            wanted.add(LEVEL_NAMES.index(lv))
    for rec in log.records():
        if wanted is None or rec.level in wanted:
            click.echo(rec.format(show_level=decode, show_time=not notime))
    if clear_after:
        log.clear()


@console.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON object: each file's text (directories: every file in them).")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def cat(ctx, as_json, paths) -> None:
    """Print pseudo files (/proc, /sys, /sys/kernel/debug)."""
    k = machine_of(ctx).kernel
    rc = 0
    if as_json:
        data: dict[str, str] = {}
        for p in paths:
            try:
                if k.vfs.is_dir(p):
                    for name in k.vfs.listdir(p):
                        full = p.rstrip("/") + "/" + name
                        if not k.vfs.is_dir(full):
                            data[full] = k.read(full)
                else:
                    data[p] = k.read(p)
            except KernelError as e:
                click.echo(f"cat: {p}: {os.strerror(e.errno)}", err=True)
                rc = 1
        click.echo(json.dumps(data, indent=2))
        ctx.exit(rc)
    for p in paths:
        try:
            click.echo(k.read(p), nl=False)
        except KernelError as e:
            click.echo(f"cat: {p}: {os.strerror(e.errno)}", err=True)
            rc = 1
    ctx.exit(rc)


@console.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("-p", "slash", is_flag=True,
              help="Append / to directories (coreutils ls -p).")
@click.argument("path", default="/")
@click.pass_context
def ls(ctx, as_json, slash, path) -> None:
    """List a pseudo directory."""
    k = machine_of(ctx).kernel
    try:
        names = k.vfs.listdir(path)
    except KernelError as e:
        click.echo(f"ls: cannot access '{path}': {os.strerror(e.errno)}", err=True)
        ctx.exit(2)
    if slash:  # what shell completion asks for: which entries go deeper
        base = path.rstrip("/")
        names = [n + "/" if k.vfs.is_dir(f"{base}/{n}") else n for n in names]
    if as_json:
        click.echo(json.dumps(names))
        return
    for n in names:
        click.echo(n)


@console.command(context_settings={"ignore_unknown_options": True})
@click.argument("path")
@click.argument("value")
@click.pass_context
def write(ctx, path, value) -> None:
    """Write VALUE (plus a newline, as echo does) to a pseudo file: ``echo VALUE > PATH``.

    VALUE may start with a dash (``write PATH -5``): it is data, as echo's is.
    """
    k = machine_of(ctx).kernel
    try:
        k.write(path, value + "\n")
    except KernelError as e:
        click.echo(f"write: {path}: {os.strerror(e.errno)}", err=True)
        ctx.exit(1)


@console.command()
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def rmdir(ctx, paths) -> None:
    """Remove configfs directories (e.g. a ramster node under /sys/kernel/config/cluster/)."""
    import errno

    k = machine_of(ctx).kernel
    rc = 0
    for p in paths:
        try:
            configfs = getattr(k, "configfs", None)
            if configfs is not None and configfs.owns(p):
                configfs.rmdir(p)
            elif k.vfs.exists(p):
                raise KernelError(errno.EPERM)  # /proc and sysfs directories stay
            else:
                raise KernelError(errno.ENOENT)
        except KernelError as e:
            click.echo(f"rmdir: failed to remove '{p}': {os.strerror(e.errno)}", err=True)
            rc = 1
    ctx.exit(rc)


@console.command()
@click.argument("name")
@click.argument("action")
@click.pass_context
def service(ctx, name, action) -> None:
    """Run an init script a driver provides (``service ramster start|status``)."""
    m = machine_of(ctx)
    handler = m.kernel.services.get(name)
    if handler is None:
        click.echo(f"{name}: unrecognized service", err=True)
        ctx.exit(1)
        return
    out, err, rc = handler(action, m.root)
    for line in out:
        click.echo(line)
    for line in err:
        click.echo(line, err=True)
    ctx.exit(rc)


@console.command()
@click.option("-r", "release", is_flag=True, help="Print the kernel release.")
@click.option("-a", "everything", is_flag=True, help="Print everything.")
@click.pass_context
def uname(ctx, release, everything) -> None:
    """Print the kernel name or release."""
    k = machine_of(ctx).kernel
    if release:
        click.echo(k.release)
    elif everything:
        click.echo(f"Linux kmodemu {k.release} #1 SMP kmodemu-{k.profile.name} x86_64 GNU/Linux")
    else:
        click.echo("Linux")


_SLEEP_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@console.command(context_settings={"ignore_unknown_options": True})
@click.argument("durations", nargs=-1, required=True)
@click.pass_context
def sleep(ctx: click.Context, durations: tuple[str, ...]) -> None:
    """Let virtual time pass (NUMBER[smhd]…, summed, as coreutils sleep): due timers and work run in order."""
    total = 0.0
    for d in durations:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", d)
        if not m:
            click.echo(f"sleep: invalid time interval '{d}'", err=True)
            click.echo("Try 'sleep --help' for more information.", err=True)
            ctx.exit(1)
        total += float(m.group(1)) * _SLEEP_UNIT[m.group(2)]
    if total > MAX_SLEEP_S:
        click.echo(f"sleep: invalid time interval '{' '.join(durations)}' "
                   f"(kmodemu lets at most {MAX_SLEEP_S // 86400} days pass at once)", err=True)
        ctx.exit(1)
    machine_of(ctx).kernel.clock.advance(int(round(total * 1e9)))


for _cmd in XEN_COMMANDS:  # a Xen host's toolstack and its guests' route
    console.add_command(_cmd)

for _cmd in MM_COMMANDS:  # the memory model's tools
    console.add_command(_cmd)


def execute(machine: ConsoleMachine, argv: Sequence[str], out: IO[str], err: IO[str]) -> int:
    """Run one console command line on ``machine``; return its exit status."""
    return execute_command(machine, argv, out, err)[0]


def _trace(kernel) -> tuple:
    """What a failed command may leave behind: log lines, virtual time, modules loaded."""
    return (kernel.log.seq, kernel.clock.ns,
            tuple((m.name, m.state) for m in kernel.modules.loaded()))


def _machine_trace(machine: ConsoleMachine) -> tuple:
    """The kernel's trace, and on a Xen host its guests' (a guest's failed command that
    logged changed the guest: the host journals it)."""
    host = getattr(machine, "xen", None)
    guests = host.machines if host is not None else {}
    return (_trace(machine.kernel),
            tuple((name, _trace(g.kernel)) for name, g in sorted(guests.items())))


class _CommandStream:
    """What a command's ``sys.stdout``/``sys.stderr`` is while it runs: the caller's stream, seen
    through an object click cannot cache.

    ``click.echo`` keeps, per ``sys.stdout`` object, the text stream it decided to write
    to, in a WeakKeyDictionary whose value refers to its key: a stream put there lives
    as long as the process. Every command gets fresh streams (a session's capture, a
    running machine's per-job sender), so each one, and all it captured, stayed. A
    class with ``__slots__`` and no ``__weakref__`` cannot be a weak key: click's cache
    gives up silently and writes to the stream as it is. ``write`` takes text only and
    ``errors`` is set so that click sees a proper text stream rather than wrapping it
    in a TextIOWrapper per command; bytes (``click.echo(b"…")``) go through ``buffer``.
    """

    __slots__ = ("_target", "buffer")
    encoding = "utf-8"
    errors = "strict"

    def __init__(self, target: IO[str]):
        self._target = target
        self.buffer = _CommandBytes(target)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return self._target.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        isatty = getattr(self._target, "isatty", None)
        return bool(isatty and isatty())

    def writable(self) -> bool:
        return True


class _CommandBytes:
    """``_CommandStream.buffer``: bytes a command writes, decoded as a terminal would show them."""

    __slots__ = ("_target",)

    def __init__(self, target: IO[str]):
        self._target = target

    def write(self, data: bytes) -> int:
        self._target.write(bytes(data).decode("utf-8", "backslashreplace"))
        return len(data)

    def flush(self) -> None:
        self._target.flush()


def execute_command(machine: ConsoleMachine, argv: Sequence[str], out: IO[str],
                    err: IO[str]) -> tuple[int, bool]:
    """Run one console command line; return (exit status, whether it may have changed the machine).

    A usage error (click's exit 2) is refused before the command runs, and a
    failed command that logged nothing and took no virtual time left the
    machine as it was: both change nothing, not even the clock, and callers do
    not journal them. A failure that logged (a module whose init failed, a
    modprobe that ran install commands) is kept, as its dmesg lines are.
    """
    if not argv:
        return 0, False
    changed = not is_readonly(argv)
    kernel = machine.kernel
    before = _machine_trace(machine)
    bkl = getattr(kernel, "bkl", None) or contextlib.nullcontext()
    with (bkl, contextlib.redirect_stdout(_CommandStream(out)),  # type: ignore[type-var]
          contextlib.redirect_stderr(_CommandStream(err))):  # type: ignore[type-var]
        for hook in list(getattr(machine.kernel, "entry_hooks", ())):
            hook()  # e.g. r2net: a peer's close that arrived before this command is seen first
        try:
            result = console.main(args=list(argv), prog_name="kmodemu", obj=machine,
                                  standalone_mode=False)
            rc = result if isinstance(result, int) else 0
        except click.exceptions.Exit as e:
            rc = e.exit_code
        except click.UsageError as e:
            e.show(file=err)
            rc, changed = e.exit_code, False
        except click.ClickException as e:
            e.show(file=err)
            rc = e.exit_code
        except click.exceptions.Abort as e:
            if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
                # click turns Ctrl-C into Abort; the machine must see it to drop the
                # half-run command instead of journaling it as if it had finished
                raise KeyboardInterrupt from None
            rc = 1
        except KernelError as e:
            click.echo(f"kmodemu: {argv[0]}: {os.strerror(e.errno)}", err=True)
            rc = 1
        except Exception as e:  # a bug in kmodemu or a plugin: say so, keep the machine usable
            if os.environ.get("KMODEMU_DEBUG"):
                raise
            click.echo(f"kmodemu: {argv[0]}: internal error: {type(e).__name__}: {e} "
                       "(KMODEMU_DEBUG=1 shows the traceback)", err=True)
            rc, changed = INTERNAL_ERROR, False
        if changed and rc and _machine_trace(machine) == before:
            # failed without a log line, a tick or a module loaded: it changed nothing (a
            # failed command leaves the machine as it was), so it is neither charged nor
            # journaled
            changed = False
        if changed:
            kernel.clock.advance_us(10_000)
    return rc or 0, changed
