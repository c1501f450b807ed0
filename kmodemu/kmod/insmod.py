"""``insmod FILE [args]``: insert one module file, no dependencies (kmod 30).

Extension: when FILE is not an existing file but names a module of the
machine (a plugin or a module of its tree), that module's file is used.
"""

from __future__ import annotations

import errno
import os

from kmodemu.errors import strerror

from . import log as L
from .context import ToolContext
from .getopt import NO, GetoptError, LongOpt, getopt_long
from .kernelops import insert_file
from .library import Library

SHORTOPTS = "psfVh"
LONGOPTS = [LongOpt("version", NO, "V"), LongOpt("help", NO, "h")]
HELP = """Usage:
\t{p} [options] filename [args]
Options:
\t-V, --version     show version
\t-h, --help        show this help
"""
MOD_ERRORS = {errno.ENOEXEC: "Invalid module format", errno.ENOENT: "Unknown symbol in module",
              errno.ESRCH: "Module has wrong symbol version", errno.EINVAL: "Invalid parameters"}


def mod_strerror(err: int) -> str:
    return MOD_ERRORS.get(err, strerror(err))


def resolve_module_name(ctx: ToolContext, name: str) -> str | None:
    """The host file of a module the machine knows by name (kmodemu extension)."""
    if "/" in name or name.endswith((".ko", ".xz", ".zst")):
        return None
    lib = Library(ctx, None, False, [], use_config=False)
    found = lib.lookup_name(name)
    if found is not None and found.get_path() is not None:
        return found.host_path()
    return None


def main(argv: list[str], ctx: ToolContext) -> int:
    prog = os.path.basename(argv[0]) if argv else "insmod"
    log = L.Log(prog, ctx.stderr, L.INFO)
    try:
        opts, operands = getopt_long(prog, list(argv[1:]), SHORTOPTS, LONGOPTS, ctx.stderr)
    except GetoptError:
        return 1
    for opt, _ in opts:
        if opt == "h":
            ctx.stdout.write(HELP.format(p=prog))
            return 0
        if opt == "V":
            ctx.stdout.write("kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
            return 0
    if not operands:
        log.error("missing filename.\n")
        return 1
    filename = operands[0]
    args = " ".join(operands[1:])
    host = ctx.user_path(filename)
    if not os.path.exists(host):
        alt = resolve_module_name(ctx, filename)
        if alt is None:
            log.error(f"could not load module {filename}: {strerror(errno.ENOENT)}\n")
            return 1
        host = alt
    err = insert_file(ctx, host, args)
    if err < 0:
        log.error(f"could not insert module {filename}: {mod_strerror(-err)}\n")
        return 1
    return 0
