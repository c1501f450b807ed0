"""``mkfs`` and ``mkfs.TYPE``: make an empty filesystem on a block device, the Linux way.

``mkfs [-t TYPE] [fs-options] DEVICE`` is util-linux's front end
(disk-utils/mkfs.c): it runs ``mkfs.TYPE`` (ext2 when no type is given) and says
``failed to execute mkfs.TYPE`` when there is no such builder. The builders
speak their own tools' words: e2fsprogs' mke2fs (misc/mke2fs.c ``check_mount``,
``check_plausibility``) for ext2/3/4, mkfs.xfs, mkfs.btrfs and mkfs.fat for the
others. Every failure exits 1, as those tools do, and leaves the device as it was.

kmodemu's devices have no size, so the lines mke2fs prints about block counts,
inode tables and superblock backups are left out rather than made up, and the
fs-specific options are not modelled: only the quiet and force flags below.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import click

from kmodemu.console.context import machine_of
from kmodemu.errors import KernelError
from kmodemu.mm.filesystem import format_uuid


@dataclass(frozen=True)
class Builder:
    """One ``mkfs.TYPE`` program: its banner, flags and error wording."""

    types: tuple[str, ...]
    banner: str                 # printed first (stderr for mke2fs, stdout for the others)
    banner_to_stderr: bool
    quiet: str | None           # the flag that silences it
    force: str | None           # the flag that lets it overwrite an existing filesystem
    overwrite_needs_force: bool
    mounted: str                # {prog} {dev}
    busy: str
    missing: str
    existing: str = ""          # {prog} {dev} {old}; when overwrite_needs_force
    done: tuple[str, ...] = ()  # {uuid}


E2FS = Builder(
    types=("ext2", "ext3", "ext4"), banner="mke2fs 1.47.0 (5-Feb-2023)", banner_to_stderr=True,
    quiet="-q", force="-F", overwrite_needs_force=False,
    mounted="{dev} is mounted; will not make a filesystem here!",
    busy="{dev} is apparently in use by the system; will not make a filesystem here!",
    missing="The file {dev} does not exist and no size was specified.",
    done=("Filesystem UUID: {uuid}", "Allocating group tables: done", "Writing inode tables: done",
          "{journal}Writing superblocks and filesystem accounting information: done", ""),
)
XFS = Builder(
    types=("xfs",), banner="", banner_to_stderr=False, quiet="-q", force="-f", overwrite_needs_force=True,
    mounted="{prog}: {dev} contains a mounted filesystem",
    busy="{prog}: cannot open {dev}: Device or resource busy",
    missing="{prog}: Error: {dev} does not exist",
    existing="{prog}: {dev} appears to contain an existing filesystem ({old}).\n"
             "{prog}: Use the -f option to force overwrite.",
)
BTRFS = Builder(
    types=("btrfs",), banner="btrfs-progs v6.2", banner_to_stderr=False, quiet="-q", force="-f",
    overwrite_needs_force=True,
    mounted="ERROR: {dev} is mounted", busy="ERROR: unable to open {dev}: Device or resource busy",
    missing="ERROR: unable to open {dev}: No such file or directory",
    existing="ERROR: {dev} appears to contain an existing filesystem ({old})\n"
             "ERROR: use the -f option to force overwrite of {dev}",
    done=("UUID:               {uuid}",),
)
FAT = Builder(
    types=("vfat",), banner="mkfs.fat 4.2 (2021-01-31)", banner_to_stderr=False, quiet=None, force=None,
    overwrite_needs_force=False,
    mounted="{prog}: {dev} contains a mounted filesystem.",
    busy="{prog}: unable to open {dev}: Device or resource busy",
    missing="{prog}: unable to open {dev}: No such file or directory",
)
#: program name -> (builder, filesystem type it makes)
PROGRAMS: dict[str, tuple[Builder, str]] = {
    "mkfs.ext2": (E2FS, "ext2"), "mkfs.ext3": (E2FS, "ext3"), "mkfs.ext4": (E2FS, "ext4"),
    "mkfs.xfs": (XFS, "xfs"), "mkfs.btrfs": (BTRFS, "btrfs"),
    "mkfs.vfat": (FAT, "vfat"), "mkfs.fat": (FAT, "vfat"), "mkfs.msdos": (FAT, "vfat"),
}
MKFS_USAGE = """
Usage:
 mkfs [options] [-t <type>] [fs-options] <device> [<size>]

Make a Linux filesystem.

Options:
 -t, --type=<type>  filesystem type; when unspecified, ext2 is used
     fs-options     parameters for the real filesystem builder
     <device>       path to the device to be used
 -h, --help         display this help text and exit
"""


def _mm(ctx: click.Context):
    mm = machine_of(ctx).kernel.mm
    if mm is None:
        raise click.ClickException("this kernel has no memory model")
    return mm


def build(ctx: click.Context, prog: str, args: list[str]) -> int:
    """Run builder ``prog`` with its arguments; print as it does; return its exit status."""
    builder, fstype = PROGRAMS[prog]
    flags = {f for f in (builder.quiet, builder.force) if f}
    quiet = force = False
    device = None
    for a in args:
        if a in flags:
            quiet = quiet or a == builder.quiet
            force = force or a == builder.force
        elif a.startswith("-") and a != "-":
            click.echo(f"{prog}: invalid option -- '{a.lstrip('-')[:1]}'", err=True)
            click.echo(f"Usage: {prog} {' '.join(f'[{f}]' for f in sorted(flags))} device".replace("  ", " "),
                       err=True)
            return 1
        elif device is None:
            device = a
        else:
            click.echo(f"{prog}: kmodemu's devices have no size: '{a}' cannot be honoured", err=True)
            return 1
    if device is None:
        click.echo(f"Usage: {prog} {' '.join(f'[{f}]' for f in sorted(flags))} device".replace("  ", " "),
                   err=True)
        return 1
    if builder.banner and not quiet:
        click.echo(builder.banner, err=builder.banner_to_stderr)
    mm = _mm(ctx)
    dev = mm.fs.blockdev(device)
    words = {"prog": prog, "dev": device}
    old = dev.fstype if dev is not None else None
    if dev is not None and dev.swap_size is not None:
        old = "swap"
    if dev is not None and dev.user is None and builder.overwrite_needs_force and old and not force:
        click.echo(builder.existing.format(old=old, **words), err=True)
        return 1
    try:
        dev = mm.fs.mkfs(device, fstype)
    except KernelError as e:
        text = {errno.ENOENT: builder.missing, errno.EBUSY: builder.mounted}.get(e.errno, builder.busy)
        click.echo(text.format(**words), err=True)
        return 1
    if not quiet:
        uuid = format_uuid(dev.uuid or bytes(16))
        journal = "Creating journal: done\n" if fstype in ("ext3", "ext4") else ""
        for line in builder.done:
            click.echo(line.format(uuid=uuid, journal=journal), nl=True)
    return 0


def _builder_command(prog: str) -> click.Command:
    @click.command(prog, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []},
                   add_help_option=False,
                   help=f"Make an empty {PROGRAMS[prog][1]} filesystem on a device, as {prog} does.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def cmd(ctx: click.Context, args: tuple[str, ...]) -> None:
        ctx.exit(build(ctx, prog, list(args)))

    return cmd


@click.command("mkfs", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                         "help_option_names": []}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def mkfs_cmd(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Make a filesystem: mkfs [-t TYPE] [fs-options] DEVICE (ext2 when no type is given)."""
    rest = list(args)
    fstype = "ext2"
    while rest:
        a = rest[0]
        if a in ("-h", "--help"):
            click.echo(MKFS_USAGE, nl=False)
            ctx.exit(0)
        if a in ("-t", "--type") and len(rest) > 1:
            fstype, rest = rest[1], rest[2:]
        elif a.startswith("--type="):
            fstype, rest = a[len("--type="):], rest[1:]
        elif a.startswith("-t") and len(a) > 2:
            fstype, rest = a[2:], rest[1:]
        else:
            break  # the builder's own options and the device
    if not rest or rest[0] in ("-t", "--type"):
        click.echo(MKFS_USAGE, nl=False, err=True)
        ctx.exit(1)
    prog = f"mkfs.{fstype}"
    if prog not in PROGRAMS:
        click.echo(f"mkfs: failed to execute {prog}: No such file or directory", err=True)
        ctx.exit(1)
    ctx.exit(build(ctx, prog, rest))


COMMANDS: list[click.Command] = [mkfs_cmd, *(_builder_command(p) for p in PROGRAMS)]
