"""Console commands of a Xen host: ``xl`` and the route of ``--machine HOST/GUEST`` commands.

``xl`` exists on every machine, as the binary would on a dom0 image; on a
machine that is not a Xen host it fails the way xl does without a hypervisor
(libxc cannot open the privcmd interface). ``xen-guest NAME ARGV…`` runs one
console command line in a guest; the CLI sends it for ``HOST/NAME`` so the
host's journal records guests' commands with its own (see kmodemu/xen/host.py).
"""

from __future__ import annotations

import sys
from typing import Sequence

import click

from kmodemu.console.context import machine_of, read_host

#: xl subcommands that only read (never journaled)
XL_READONLY = {"list", "info", "tmem-list", "tmem-freeable", "help"}
MAX_XL_CONFIG = 1 << 20


def xl_readonly(args: Sequence[str]) -> bool:
    if not args:
        return True
    if args[0] == "dmesg":
        return "-c" not in args[1:]
    return args[0] in XL_READONLY or "-h" in args[1:]


@click.command("xl", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                       "help_option_names": []},
               add_help_option=False, help="Xen's toolstack (xl 4.2) on a Xen host.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def xl_cmd(ctx: click.Context, args: tuple[str, ...]) -> None:
    m = machine_of(ctx)
    host = getattr(m, "xen", None)
    if host is None:
        click.echo("xc: error: Could not obtain handle on privileged command interface "
                   "(2 = No such file or directory): Internal error", err=True)
        click.echo("libxl: error: libxl.c:libxl_ctx_alloc: cannot open libxc handle: "
                   "No such file or directory", err=True)
        click.echo("cannot init xl context", err=True)
        ctx.exit(1)
    from kmodemu.xen.xl import Xl

    def read(path: str) -> bytes:
        return read_host(ctx, path, MAX_XL_CONFIG)

    # the streams execute_command redirected to (click's get_text_stream would bypass them)
    out, err = sys.stdout, sys.stderr
    rc = Xl(host.hv, read_file=read, builder=host, hostname="xenhost",
            release=m.kernel.release).run(list(args), out, err)
    ctx.exit(rc)


@click.command("xen-guest", context_settings={"ignore_unknown_options": True,
                                              "allow_extra_args": True, "help_option_names": []},
               add_help_option=False, hidden=True)
@click.argument("name")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def xen_guest_cmd(ctx: click.Context, name: str, argv: tuple[str, ...]) -> None:
    m = machine_of(ctx)
    host = getattr(m, "xen", None)
    guest = host.guest(name) if host is not None else None
    if guest is None:
        click.echo(f"kmodemu: {name}: no such domain", err=True)
        ctx.exit(1)
    rc = guest.run(list(argv), stdout=sys.stdout, stderr=sys.stderr)
    ctx.exit(rc)


COMMANDS = (xl_cmd, xen_guest_cmd)
