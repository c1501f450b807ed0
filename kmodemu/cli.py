"""``kmodemu``: the command-line front door.

Machine commands (``insmod``, ``mount``, ``dmesg``, …) are sent to a running
machine process (``--machine DIR``, ``$KMODEMU_MACHINE``, or a default one that
is booted on first use; see ``kmodemu.machine.client``). The others start and
stop machines (``boot``, ``reboot``, ``poweroff``), list them (``machines``) or run
many fresh ones in-process (``run``, ``demo``).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click

from kmodemu.machine import client
from kmodemu.machine import protocol as proto
from kmodemu.kernel.profiles import PROFILES


def _default_machine_dir() -> Path:
    import os
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kmodemu" / "default"


def _register_shells() -> None:
    """Our bash/zsh completion scripts (no space after a directory or a ``param=`` key)."""
    from click.shell_completion import add_completion_class

    from kmodemu.completion import shell_classes
    for shell, cls in shell_classes():
        add_completion_class(cls, shell)


_register_shells()


class KmodemuGroup(click.Group):
    """Own commands first; any other command is forwarded to the running machine.

    The console is imported only to list or describe its commands: a one-shot
    command is a small client that does not load the kernel.
    """

    #: commands imported only when used, so a one-shot machine command starts fast
    LAZY = {"run": ("kmodemu.scenario.cli", "run"), "demo": ("kmodemu.demo", "demo")}

    def list_commands(self, ctx):
        from kmodemu.console import console
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
        # anything else is the machine's to run (or to refuse: "No such command", exit 2)
        return _forwarder(name, "", "")

    def format_commands(self, ctx, formatter):
        from kmodemu.console import console
        rows = []
        for name in self.list_commands(ctx):
            cmd = super().get_command(ctx, name) or console.get_command(ctx, name)
            if cmd is None and name in self.LAZY:
                cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _items(produce) -> list:
    """Candidates as click's items. A TAB never prints a traceback into the shell: a completer
    that fails completes nothing (KMODEMU_DEBUG=1 shows the error)."""
    import os

    from click.shell_completion import CompletionItem
    try:
        return [CompletionItem(c.value, type=c.kind, help=c.help) for c in produce()]
    except Exception:
        if os.environ.get("KMODEMU_DEBUG"):
            raise
        return []


def _complete_args(name: str):
    """A machine command's words, completed from the machine without booting it."""
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        from kmodemu.completion import Completer, MachineFacts

        def produce():
            path, guest = resolve_target(ctx.find_root().params.get("machine_dir"))
            words = [str(w) for w in ctx.params.get("args") or ()]
            return Completer(MachineFacts(path, guest)).complete(name, words, incomplete)
        return _items(produce)
    return complete


def _complete_machine(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from kmodemu.completion import machine_candidates
    return _items(lambda: machine_candidates(_default_machine_dir().parent, incomplete))


def _complete_builtin(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from kmodemu.completion import builtin_candidates
    return _items(lambda: builtin_candidates([str(p) for p in ctx.params.get("module_path") or ()],
                                             incomplete))


def _forwarder(name: str, help_text: str, short: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []},
                   add_help_option=False, help=help_text, short_help=short)
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=_complete_args(name))
    @click.pass_context
    def forward(ctx: click.Context, args: tuple[str, ...]) -> None:
        path, guest = ctx.obj["machine_dir"], ctx.obj["guest"]
        try:
            if guest is None:
                _boot_default_if_new(path)
            ctx.exit(client.run_command(path, [name, *args], target=guest))
        except client.ClientError as e:
            _fail(ctx, str(e))
        except KeyboardInterrupt:  # Ctrl-C before the command was sent: while starting the machine
            _fail(ctx, f"interrupted before '{name}' ran (the machine goes on starting in the "
                       "background)", 130)

    return forward


def _fail(ctx: click.Context, message: str, code: int = 1) -> None:
    click.echo(f"kmodemu: {message}", err=True)
    ctx.exit(code)


def _boot_default_if_new(path: Path) -> None:
    """A machine never booted boots with the defaults on first use."""
    if (path / proto.IMAGE_NAME).exists():
        return
    from kmodemu.machine import Machine, MachineDef, MachineError
    with client.boot_lock(path):
        if (path / proto.IMAGE_NAME).exists():
            return
        if any(p.name not in (proto.LOCK_NAME, proto.BOOT_LOCK_NAME) for p in path.iterdir()):
            raise client.ClientError(f"{path}: not a kmodemu machine (no {proto.IMAGE_NAME})")
        click.echo(f"kmodemu: booting machine {path} with the default command line", err=True)
        try:
            Machine.create(path, MachineDef(), force=True).close()
        except MachineError as e:
            raise client.ClientError(str(e)) from None
        client.start(path, stderr=sys.stderr)


def resolve_machine_dir(value: str | None) -> Path:
    """``--machine``: a directory (has a ``/``, or exists), else a name under the state dir."""
    return resolve_target(value)[0]


def resolve_target(value: str | None) -> tuple[Path, str | None]:
    """``--machine`` as (directory, guest): ``HOST/GUEST`` names a guest of a host machine.

    A value is a directory when it exists, or has a ``/`` and is no
    ``HOST/GUEST`` of an existing host; else a machine name under the state dir.
    """
    if not value:
        return _default_machine_dir(), None
    if Path(value).is_dir() or value in (".", ".."):
        return Path(value), None
    if "/" in value and not value.endswith("/"):
        host, guest = value.rsplit("/", 1)
        hostdir = resolve_machine_dir(host) if host else None
        if hostdir is not None and (hostdir / proto.IMAGE_NAME).exists():
            return hostdir, (None if guest == "Domain-0" else guest)
    if "/" in value:
        return Path(value), None
    return _default_machine_dir().parent / value, None


def _boot_hints(cmdline: str, builtin, registry) -> None:
    """What Linux would not say about the command line just booted (stderr only, never dmesg)."""
    from kmodemu.hints import boot_hints

    for line in boot_hints(cmdline, builtin, registry):
        click.echo(line, err=True)


def _image_hints(path: Path) -> None:
    """The hints for the definition a machine directory holds now."""
    import json

    from kmodemu.machine import MachineDef
    from kmodemu.modules.discovery import ModuleRegistry

    try:
        d = MachineDef.from_dict(json.loads((path / proto.IMAGE_NAME).read_text())["definition"])
        registry = ModuleRegistry([Path(path) / p for p in d.module_path])  # relative to the machine
    except (OSError, ValueError, KeyError, TypeError):
        return  # no definition to read: no hint, the command's own status stands
    _boot_hints(d.cmdline, d.builtin, registry)


def _plugin_errors(machine) -> None:
    for err in machine.registry.errors:
        click.echo(f"kmodemu: plugin ignored: {err}", err=True)


@click.group(cls=KmodemuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--machine", "machine_dir", metavar="NAME|DIR|HOST/GUEST", envvar="KMODEMU_MACHINE",
              default=None, shell_complete=_complete_machine,
              help="Machine name or directory (default: $KMODEMU_MACHINE, else the machine "
                   "'default' in ~/.local/state/kmodemu/); HOST/GUEST is a guest of a host.")
@click.version_option(package_name="kmodemu")
@click.pass_context
def main(ctx: click.Context, machine_dir: str | None) -> None:
    """Emulate Linux's module machinery and transcendent memory.

    A booted machine is a running process, as a VM is: machine commands are
    sent to it; `kmodemu boot` starts one, `kmodemu poweroff` ends it, and a
    machine whose process died is recovered from its journal on the next command.
    """
    ctx.ensure_object(dict)
    path, guest = resolve_target(machine_dir)
    ctx.obj["machine_dir"], ctx.obj["guest"] = path, guest


@main.command()
@click.option("--cmdline", default="", help="The kernel command line.")
@click.option("--profile", "--kernel", "profile", type=click.Choice(list(PROFILES)), default="3.10",
              show_default=True, help="3.10 has the tmem lazy-init patchset; 3.9 is the pre-patch "
                                      "kernel; 3.10-unload is 3.10 whose tmem backends can be "
                                      "unloaded (beyond Linux: docs/unloading.md).")
@click.option("--mem", default="256M", show_default=True, help="RAM size (mem= on the command line wins).")
@click.option("--builtin", "builtin", multiple=True, shell_complete=_complete_builtin,
              help="Configure a module built in (=y). Repeatable.")
@click.option("--module-path", multiple=True, type=click.Path(file_okay=False),
              help="Another directory of module plugins (copied into the machine). Repeatable.")
@click.option("--release", default=None, help="Kernel release string (default from the profile).")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option("--clock", type=click.Choice(["virtual", "real"]), default="virtual", show_default=True,
              help="virtual: time passes only with commands (deterministic); real: the running "
                   "machine follows wall time.")
@click.option("--force", is_flag=True, help="Replace an existing machine (only once the new one boots).")
@click.option("--xen", is_flag=True, help="Boot a Xen host: the hypervisor with --mem of RAM, this "
                                          "kernel as dom0; guests come from xl create (docs/xen.md).")
@click.option("--xen-cmdline", default="", metavar="OPTIONS",
              help="The hypervisor's boot options (with --xen), e.g. \"tmem tmem_compress\".")
@click.pass_context
def boot(ctx, cmdline, profile, mem, builtin, module_path, release, seed, clock, force, xen,
         xen_cmdline) -> None:
    """Boot a machine: its process starts and runs until poweroff (an old one is kept unless --force)."""
    from kmodemu.errors import KernelError
    from kmodemu.machine import Machine, MachineDef, MachineError

    path = ctx.obj["machine_dir"]
    builtins = [b for item in builtin for b in item.split(",") if b]
    try:
        definition = MachineDef(cmdline=cmdline, profile=profile, mem=mem, builtin=builtins,
                                module_path=[str(Path(p).resolve()) for p in module_path],
                                release=release, seed=seed, clock=clock, xen=xen,
                                xen_cmdline=xen_cmdline).validate()
        with client.boot_lock(path, wait=False):
            if (path / proto.IMAGE_NAME).exists() and not force:
                raise MachineError(f"{path}: a machine already exists (use --force to replace it)")
            Machine(definition).close()  # the new kernel boots (or panics) before anything changes
            if client.is_running(path):
                client.stop(path, "quit")
            machine = Machine.create(path, definition, force=force)
            machine.close()
            client.start(path, stderr=sys.stderr)
    except (MachineError, ValueError, client.ClientError) as e:
        _fail(ctx, str(e))
    except KernelError as e:
        _fail(ctx, f"the kernel did not boot: {e}")
    _plugin_errors(machine)
    _boot_hints(machine.definition.cmdline, machine.definition.builtin, machine.registry)
    click.echo(f"Booted {machine.kernel.release} ({profile}) in {path}")


@main.command()
@click.option("--cmdline", default=None, help="Boot with this command line instead of the old one.")
@click.pass_context
def reboot(ctx, cmdline) -> None:
    """Reboot the machine: a fresh kernel from its definition; its disk is kept."""
    path = ctx.obj["machine_dir"]
    try:
        client.ensure_running(path, stderr=sys.stderr)
        rc = client.request(path, {"op": "reboot", "cmdline": cmdline}, stdout=sys.stdout, stderr=sys.stderr)
    except client.ClientError as e:
        _fail(ctx, str(e))
    if cmdline is not None and rc == 0:
        _image_hints(path)
    ctx.exit(rc)


@main.command()
@click.pass_context
def poweroff(ctx) -> None:
    """Power the machine off: its process ends; the next command boots it afresh."""
    path = ctx.obj["machine_dir"]
    try:
        if client.is_running(path):
            client.stop(path, "poweroff")
            return
        if not (path / proto.IMAGE_NAME).exists():
            raise client.ClientError(f"{path}: no machine here (create one with 'kmodemu boot')")
        from kmodemu.machine import Machine, MachineError
        try:
            Machine.mark_powered_off(path)
        except MachineError as e:
            raise client.ClientError(str(e)) from None
    except client.ClientError as e:
        _fail(ctx, str(e))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def machines(ctx, as_json, dirs) -> None:
    """List machines (those in the state directory and the one --machine names, or DIRS)."""
    if not dirs:
        base = _default_machine_dir().parent
        found = sorted(p for p in base.iterdir() if (p / proto.IMAGE_NAME).is_file()) \
            if base.is_dir() else []
        chosen = ctx.obj["machine_dir"]  # --machine or $KMODEMU_MACHINE may live elsewhere
        if (chosen / proto.IMAGE_NAME).is_file() and \
                all(chosen.resolve() != p.resolve() for p in found):
            found.append(chosen)
        dirs = tuple(found)
    rows = [_machine_row(d) for d in dirs]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'NAME':<16} {'STATE':<8} {'PID':>7} {'RELEASE':<18} {'PROFILE':<7} "
               f"{'UPTIME':>10} {'WALL':>10}")
    for r in rows:
        click.echo(f"{r['name']:<16} {r['state']:<8} {r['pid'] or '-':>7} {r['release'] or '-':<18} "
                   f"{r['profile'] or '-':<7} {_secs(r['uptime_virtual']):>10} "
                   f"{_secs(r['uptime_wall']):>10}")


def _secs(v) -> str:
    return "-" if v is None else f"{v:.2f}s"


def _machine_row(d: Path) -> dict:
    row = {"name": d.name, "path": str(d), "state": "stopped", "pid": None, "release": None,
           "profile": None, "uptime_virtual": None, "uptime_wall": None}
    data = client.info(d) if client.is_running(d) else None
    if data is not None:
        row.update(state="running", pid=data["pid"], release=data["release"],
                   profile=data["profile"], uptime_virtual=round(data["uptime_virtual"], 6),
                   uptime_wall=round(data["uptime_wall"], 3))
        return row
    try:
        image = json.loads((d / proto.IMAGE_NAME).read_text())
        definition = image.get("definition") or {}
        row["profile"] = definition.get("profile")
        row["release"] = definition.get("release")
        if image.get("powered_off"):
            row["state"] = "off"
    except (OSError, ValueError, AttributeError):
        row["state"] = "damaged"
    return row


@main.command()
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the session as a scenario file.")
@click.pass_context
def shell(ctx, record) -> None:
    """An interactive console on the machine (one command per line)."""
    from kmodemu.shell import run_shell

    path, guest = ctx.obj["machine_dir"], ctx.obj["guest"]
    try:
        if guest is None:
            _boot_default_if_new(path)
        client.ensure_running(path, stderr=sys.stderr)
        machine = client.RemoteMachine(path, guest)
    except client.ClientError as e:
        _fail(ctx, str(e))
    ctx.exit(run_shell(machine, record=record))


if __name__ == "__main__":  # pragma: no cover
    main()
