"""``kmodemu``: the command-line front door.

Machine commands (``insmod``, ``mount``, ``dmesg``, …) run on a persistent
machine (``--machine DIR``, ``$KMODEMU_MACHINE``, or a default one that is
booted on first use). The others create machines (``boot``) or run many
fresh ones (``run``, ``demo``).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import sys
from pathlib import Path

import click

from kmodemu.console import console
from kmodemu.errors import KernelError
from kmodemu.machine import Machine, MachineDef, MachineError
from kmodemu.machine.machine import IMAGE_NAME, default_machine_dir


class KmodemuGroup(click.Group):
    """Own commands first; any console command is forwarded to the machine."""

    #: commands imported only when used, so a one-shot machine command starts fast
    LAZY = {"run": ("kmodemu.scenario.cli", "run"), "demo": ("kmodemu.demo", "demo")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(console.list_commands(ctx))
                      | set(self.LAZY))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        if name in self.LAZY:
            modname, attr = self.LAZY[name]
            try:
                return getattr(importlib.import_module(modname), attr)
            except ImportError:
                return None
        target = console.get_command(ctx, name)
        if target is None:
            return None
        return _forwarder(name, target)


def _forwarder(name: str, target: click.Command) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []},
                   add_help_option=False, help=target.help, short_help=target.get_short_help_str(limit=70))
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def forward(ctx: click.Context, args: tuple[str, ...]) -> None:
        path = ctx.obj["machine_dir"]
        with machine_lock(path):
            machine = open_machine(path)
            ctx.exit(machine.run([name, *args]))

    return forward


def resolve_machine_dir(value: str | None) -> Path:
    """``--machine``: a directory (has a ``/``, or exists), else a name under the state dir."""
    if not value:
        return default_machine_dir()
    if "/" in value or value in (".", "..") or Path(value).is_dir():
        return Path(value)
    return default_machine_dir().parent / value


def open_machine(path: Path) -> Machine:
    """Resume the machine; one never booted (or powered off) boots with the defaults."""
    path = Path(path)
    try:
        if not (path / IMAGE_NAME).exists():
            if path.exists() and any(p.name != ".lock" for p in path.iterdir()):
                raise MachineError(f"{path}: not a kmodemu machine (no {IMAGE_NAME})")
            click.echo(f"kmodemu: booting machine {path} with the default command line", err=True)
            return Machine.create(path, MachineDef(), force=True)
        machine = Machine.open(path)
        _plugin_errors(machine)
        if machine.powered_off:
            click.echo(f"kmodemu: machine {path} was powered off; booting it again", err=True)
            machine.reboot()
        return machine
    except MachineError as e:
        click.echo(f"kmodemu: {e}", err=True)
        sys.exit(1)


def _plugin_errors(machine: Machine) -> None:
    for err in machine.registry.errors:
        click.echo(f"kmodemu: plugin ignored: {err}", err=True)


@contextlib.contextmanager
def machine_lock(path: Path):
    """One command at a time per machine, across processes."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            click.echo(f"kmodemu: machine {path} is busy (another command or shell); waiting", err=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@click.group(cls=KmodemuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--machine", "machine_dir", metavar="NAME|DIR", envvar="KMODEMU_MACHINE", default=None,
              help="Machine name or directory (default: $KMODEMU_MACHINE, else the machine "
                   "'default' in ~/.local/state/kmodemu/).")
@click.version_option(package_name="kmodemu")
@click.pass_context
def main(ctx: click.Context, machine_dir: Path | None) -> None:
    """Emulate Linux's module machinery and transcendent memory.

    Machine commands act on a persistent machine that is booted on first use;
    `kmodemu boot` makes a new one with a chosen command line and profile.
    """
    ctx.ensure_object(dict)
    ctx.obj["machine_dir"] = resolve_machine_dir(machine_dir)


@main.command()
@click.option("--cmdline", default="", help="The kernel command line.")
@click.option("--profile", "--kernel", "profile", type=click.Choice(["3.10", "3.9"]), default="3.10",
              show_default=True, help="3.10 has the tmem lazy-init patchset; 3.9 is the pre-patch kernel.")
@click.option("--mem", default="256M", show_default=True, help="RAM size (mem= on the command line wins).")
@click.option("--builtin", "builtin", multiple=True, help="Configure a module built in (=y). Repeatable.")
@click.option("--module-path", multiple=True, type=click.Path(file_okay=False),
              help="Another directory of module plugins. Repeatable.")
@click.option("--release", default=None, help="Kernel release string (default from the profile).")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option("--force", is_flag=True, help="Replace an existing machine.")
@click.pass_context
def boot(ctx, cmdline, profile, mem, builtin, module_path, release, seed, force) -> None:
    """Create and boot a machine (the old one is kept unless --force)."""
    path = ctx.obj["machine_dir"]
    builtins = [b for item in builtin for b in item.split(",") if b]
    try:
        definition = MachineDef(cmdline=cmdline, profile=profile, mem=mem, builtin=builtins,
                                module_path=[str(Path(p).resolve()) for p in module_path],
                                release=release, seed=seed).validate()
        with machine_lock(path):
            machine = Machine.create(path, definition, force=force)
    except (MachineError, ValueError) as e:
        click.echo(f"kmodemu: {e}", err=True)
        ctx.exit(1)
    except KernelError as e:
        click.echo(f"kmodemu: the kernel did not boot: {e}", err=True)
        ctx.exit(1)
    _plugin_errors(machine)
    click.echo(f"Booted {machine.kernel.release} ({profile}) in {path}")


@main.command()
@click.option("--cmdline", default=None, help="Boot with this command line instead of the old one.")
@click.pass_context
def reboot(ctx, cmdline) -> None:
    """Reboot the machine: a fresh kernel from its definition; its disk is kept."""
    path = ctx.obj["machine_dir"]
    with machine_lock(path):
        machine = open_machine(path)
        try:
            machine.reboot(cmdline=cmdline)
        except KernelError as e:
            click.echo(f"kmodemu: the kernel did not boot: {e}", err=True)
            ctx.exit(1)


@main.command()
@click.pass_context
def poweroff(ctx) -> None:
    """Power the machine off; the next command boots it again."""
    path = ctx.obj["machine_dir"]
    with machine_lock(path):
        machine = open_machine(path)
        machine.poweroff()


@main.command()
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the session as a scenario file.")
@click.pass_context
def shell(ctx, record) -> None:
    """An interactive console on the machine (one command per line)."""
    from kmodemu.shell import run_shell

    path = ctx.obj["machine_dir"]
    with machine_lock(path):  # held for the session: the shell's machine is the only writer
        machine = open_machine(path)
        rc = run_shell(machine, record=record)
    ctx.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    main()
