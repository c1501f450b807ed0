"""``rmmod NAME…``: remove modules, no dependencies or config (kmod 30)."""

from __future__ import annotations

import errno
import os

from kmodemu.errors import strerror

from . import log as L
from .context import ToolContext
from .getopt import NO, GetoptError, LongOpt, getopt_long
from .kernelops import delete_module
from .library import Library
from .names import modname_from_path

SHORTOPTS = "fsvVh"
LONGOPTS = [LongOpt("force", NO, "f"), LongOpt("syslog", NO, "s"), LongOpt("verbose", NO, "v"),
            LongOpt("version", NO, "V"), LongOpt("help", NO, "h")]
HELP = """Usage:
\t{p} [options] modulename ...
Options:
\t-f, --force       forces a module unload and may crash your
\t                  machine. This requires Forced Module Removal
\t                  option in your kernel. DANGEROUS
\t-s, --syslog      print to syslog, not stderr
\t-v, --verbose     enables more messages
\t-V, --version     show version
\t-h, --help        show this help
"""


def main(argv: list[str], ctx: ToolContext) -> int:
    prog = os.path.basename(argv[0]) if argv else "rmmod"
    log = L.Log(prog, ctx.stderr, L.INFO)
    try:
        opts, operands = getopt_long(prog, list(argv[1:]), SHORTOPTS, LONGOPTS, ctx.stderr)
    except GetoptError:
        return 1
    force = False
    for opt, _ in opts:
        if opt == "f":
            force = True
        elif opt == "h":
            ctx.stdout.write(HELP.format(p=prog))
            return 0
        elif opt == "V":
            ctx.stdout.write("kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
            return 0
    if not operands:
        log.error("missing module name.\n")
        return 1
    lib = Library(ctx, None, False, [], use_config=False)
    err = 0
    for arg in operands:
        if os.path.exists(ctx.user_path(arg)) and "/" in arg:
            name = modname_from_path(arg)
        else:
            name = arg.split(".", 1)[0].replace("-", "_")
        mod = lib.module_from_name(name)
        builtin_idx = lib.index("modules.builtin.bin")
        if lib.search_moddep(name) is None and builtin_idx is not None \
                and builtin_idx.search(name):
            mod.builtin = True
        state = mod.initstate()
        if state == "builtin":
            log.error(f"Module {name} is builtin.\n")
            err = -errno.ENOENT
            continue
        if state is None:
            log.error(f"Module {name} is not currently loaded\n")
            err = -errno.ENOENT
            continue
        holders = lib.kernel_holders(name)
        if holders:
            log.error(f"Module {name} is in use by: {' '.join(holders)}\n")
            err = -errno.EBUSY
            continue
        refcnt = mod.refcnt()
        if refcnt is None:
            log.error("Module unloading is not supported\n")
            err = -errno.ENOENT
            continue
        if refcnt > 0:
            log.error(f"Module {name} is in use\n")
            err = -errno.EBUSY
            continue
        r = delete_module(ctx, name, force)
        if r < 0:
            log.lib(L.ERR, L.SRC_REMOVE, f"could not remove '{name}': {strerror(-r)}\n")
            log.error(f"could not remove module {name}: {strerror(-r)}\n")
            err = r
    return 0 if err >= 0 else 1
