"""``modinfo``: show a module's .modinfo (kmod 30 format).

``filename:`` first, then every key in file order with the value at column
16, then the merged ``parm`` lines in reverse order of first appearance;
signature fields come from the appended PKCS#7. modinfo uses no modprobe.d.
"""

from __future__ import annotations

import errno
import os
import stat

from kmodemu.errors import KernelError, strerror
from kmodemu.modules.elf import read_elf
from kmodemu.modules.signature import modinfo_fields

from . import log as L
from .context import ToolContext
from .getopt import NO, REQUIRED, GetoptError, LongOpt, getopt_long
from .library import KModule, Library
from .names import has_module_extension

SHORTOPTS = "adlpn0mF:k:b:Vh"
LONGOPTS = [
    LongOpt("author", NO, "a"), LongOpt("description", NO, "d"), LongOpt("license", NO, "l"),
    LongOpt("parameters", NO, "p"), LongOpt("filename", NO, "n"), LongOpt("null", NO, "0"),
    LongOpt("modname", NO, "m"), LongOpt("field", REQUIRED, "F"),
    LongOpt("set-version", REQUIRED, "k"), LongOpt("basedir", REQUIRED, "b"),
    LongOpt("version", NO, "V"), LongOpt("help", NO, "h"),
]
HELP = """Usage:
\t{p} [options] <modulename|filename> [args]
Options:
\t-a, --author                Print only 'author'
\t-d, --description           Print only 'description'
\t-l, --license               Print only 'license'
\t-p, --parameters            Print only 'parm'
\t-n, --filename              Print only 'filename'
\t-0, --null                  Use \\0 instead of \\n
\t-m, --modname               Handle argument as module name instead of alias or filename
\t-F, --field=FIELD           Print only provided FIELD
\t-k, --set-version=VERSION   Use VERSION instead of `uname -r`
\t-b, --basedir=DIR           Use DIR as filesystem root for /lib/modules
\t-V, --version               Show version
\t-h, --help                  Show this help
"""


def merge_params(info: list[tuple[str, str]], log: L.Log) -> list[tuple[str, str | None, str | None]]:
    """(name, description, type) per parameter, newest first (kmod's list order)."""
    params: list[list] = []
    for key, value in info:
        if key not in ("parm", "parmtype"):
            continue
        name, sep, rest = value.partition(":")
        if not sep:
            log.error(f'Found invalid "{key}={value}": missing \':\'\n')
            continue
        entry = next((p for p in params if p[0] == name), None)
        if entry is None:
            entry = [name, None, None]
            params.insert(0, entry)
        if key == "parm":
            entry[1] = rest
        else:
            entry[2] = rest
    return [tuple(p) for p in params]  # type: ignore[misc]


class Modinfo:
    def __init__(self, ctx: ToolContext, log: L.Log, field: str | None, sep: str):
        self.ctx = ctx
        self.log = log
        self.field = field
        self.sep = sep
        self.w = ctx.stdout.write

    def info_of(self, mod: KModule | None, host: str | None) -> list[tuple[str, str]] | None:
        """The module's info list; None on error (already reported)."""
        if host is None:
            return None
        try:
            info = read_elf(host)
        except (KernelError, OSError) as e:
            name = mod.name if mod is not None else host
            self.log.error(f"could not get modinfo from '{name}': {strerror(e.errno or errno.EINVAL)}\n")
            return None
        out = list(info.modinfo)
        if info.signature is not None:
            out.extend(modinfo_fields(info.signature))
        return out

    def show(self, name: str, filename: str | None, info: list[tuple[str, str]] | None,
             builtin: bool) -> int:
        f, sep, w = self.field, self.sep, self.w
        if builtin:
            if f is None:
                w(f"{'name:':<16}{name}{sep}")
            elif f == "name":
                w(f"{name}{sep}")
            filename = "(builtin)"
        if f == "filename":
            w(f"{filename}{sep}")
            return 0
        if f is None:
            w(f"{'filename:':<16}{filename}{sep}")
        if info is None:
            return 0 if builtin else -errno.ENOENT
        if f == "parm":
            for pname, desc, ptype in merge_params(info, self.log):
                if desc is None:
                    w(f"{pname}: ({ptype}){sep}")
                elif ptype is not None:
                    w(f"{pname}:{desc} ({ptype}){sep}")
                else:
                    w(f"{pname}:{desc}{sep}")
            return 0
        for key, value in info:
            if f is not None:
                if key == f:
                    w(f"{value}{sep}")
                continue
            if key in ("parm", "parmtype"):
                continue
            if sep == "\0":
                w(f"{key}={value}{sep}")
                continue
            w(f"{key}:{'':<{max(0, 15 - len(key))}}{value}{sep}")
        if f is not None:
            return 0
        for pname, desc, ptype in merge_params(info, self.log):
            if desc is None:
                w(f"{'parm:':<16}{pname}:{ptype}{sep}")
            elif ptype is not None:
                w(f"{'parm:':<16}{pname}:{desc} ({ptype}){sep}")
            else:
                w(f"{'parm:':<16}{pname}:{desc}{sep}")
        return 0

    def module(self, lib: Library, mod: KModule) -> int:
        path = mod.get_path()
        if path is None:
            return self.show(mod.name, None, lib.builtin_modinfo(mod.name), True)
        info = self.info_of(mod, lib.host_of(path))
        if info is None:
            return -errno.ENOENT
        return self.show(mod.name, path, info, False)


def main(argv: list[str], ctx: ToolContext) -> int:
    """``modinfo [-F field|-p|-n|-a|-d|-l] [-0] [-m] [-b DIR] [-k VER] name|file…``."""
    prog = os.path.basename(argv[0]) if argv else "modinfo"
    log = L.Log(prog, ctx.stderr, L.INFO)
    try:
        opts, operands = getopt_long(prog, list(argv[1:]), SHORTOPTS, LONGOPTS, ctx.stderr)
    except GetoptError:
        return 1
    field = None
    sep = "\n"
    by_name = False
    root = kversion = None
    for opt, val in opts:
        if opt in "adlpn" and len(opt) == 1 and opt != "0":
            field = {"a": "author", "d": "description", "l": "license", "p": "parm",
                     "n": "filename"}[opt]
        elif opt == "0":
            sep = "\0"
        elif opt == "m":
            by_name = True
        elif opt == "F":
            field = val
        elif opt == "k":
            kversion = val
        elif opt == "b":
            root = val
        elif opt == "h":
            ctx.stdout.write(HELP.format(p=prog))
            return 0
        elif opt == "V":
            ctx.stdout.write("kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
            return 0
    if not operands:
        log.error("missing module or filename.\n")
        return 1
    dirname = None
    dir_is_host = False
    if root is not None or kversion is not None:
        dirname = f"{root or ''}/lib/modules/{kversion if kversion is not None else ctx.release()}"
        dir_is_host = bool(root and os.path.exists(root))
    lib = Library(ctx, dirname, dir_is_host, [], use_config=False)
    mi = Modinfo(ctx, log, field, sep)
    err = 0
    for name in operands:
        if by_name:
            mod = lib.lookup_name(name)
            if mod is None:
                log.error(f"Module name {name} not found.\n")
                err = -errno.ENOENT
                continue
            r = mi.module(lib, mod)
        elif _is_module_file(ctx, name):
            host = ctx.user_path(name)
            info = mi.info_of(None, host)
            r = -errno.ENOENT if info is None else mi.show(name, name, info, False)
        else:
            found = lib.lookup(name)
            if found is None:
                log.error(f"Module alias {name} not found.\n")
                err = -errno.EINVAL
                continue
            if not found:
                log.error(f"Module {name} not found.\n")
                err = -errno.ENOENT
                continue
            r = 0
            for mod in found:
                rr = mi.module(lib, mod)
                if rr < 0:
                    r = rr
        if r < 0:
            err = r
    return 0 if err >= 0 else 1


def _is_module_file(ctx: ToolContext, name: str) -> bool:
    host = ctx.user_path(name)
    try:
        return stat.S_ISREG(os.stat(host).st_mode) and has_module_extension(name)
    except OSError:
        return False
