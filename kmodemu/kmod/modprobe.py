"""``modprobe``: load or remove modules with their dependencies (kmod 30).

Follows kmod's tools/modprobe.c and libkmod's probe: lookup (config aliases,
modules.dep, symbols, install/remove commands, modules.alias, built-ins),
the probe list (dependencies from last to first, each with its softdeps),
blacklist only for alias hits, install commands instead of insertion, and
kmod's messages and exit codes.
"""

from __future__ import annotations

import errno
import os
from typing import TextIO

from kmodemu.errors import strerror
from kmodemu.trust import policy_of

from . import log as L
from .context import ToolContext
from .getopt import NO, REQUIRED, GetoptError, LongOpt, getopt_long
from .kernelops import delete_module, insert_file
from .library import INDEX_ALIAS, INDEX_SYMBOL, KModule, Library
from . import sh
from .shell import replay, run_command

VERSION_TEXT = "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n"
SHORTOPTS = "arw:RibfDcnC:d:S:sqvVh"
LONGOPTS = [
    LongOpt("all", NO, "a"), LongOpt("remove", NO, "r"),
    LongOpt("remove-dependencies", NO, "\5"), LongOpt("remove-holders", NO, "\5"),
    LongOpt("wait", REQUIRED, "w"), LongOpt("resolve-alias", NO, "R"),
    LongOpt("first-time", NO, "\3"), LongOpt("ignore-install", NO, "i"),
    LongOpt("ignore-remove", NO, "i"), LongOpt("use-blacklist", NO, "b"),
    LongOpt("force", NO, "f"), LongOpt("force-modversion", NO, "\2"),
    LongOpt("force-vermagic", NO, "\1"), LongOpt("show-depends", NO, "D"),
    LongOpt("showconfig", NO, "c"), LongOpt("show-config", NO, "c"),
    LongOpt("show-modversions", NO, "\4"), LongOpt("dump-modversions", NO, "\4"),
    LongOpt("show-exports", NO, "\6"), LongOpt("dry-run", NO, "n"), LongOpt("show", NO, "n"),
    LongOpt("config", REQUIRED, "C"), LongOpt("dirname", REQUIRED, "d"),
    LongOpt("set-version", REQUIRED, "S"), LongOpt("syslog", NO, "s"),
    LongOpt("quiet", NO, "q"), LongOpt("verbose", NO, "v"), LongOpt("version", NO, "V"),
    LongOpt("help", NO, "h"),
]

HELP = """Usage:
\t{p} [options] [-i] [-b] modulename
\t{p} [options] -a [-i] [-b] modulename [modulename...]
\t{p} [options] -r [-i] modulename
\t{p} [options] -r -a [-i] modulename [modulename...]
\t{p} [options] -c
\t{p} [options] --dump-modversions filename
Management Options:
\t-a, --all                   Consider every non-argument to
\t                            be a module name to be inserted
\t                            or removed (-r)
\t-r, --remove                Remove modules instead of inserting
\t    --remove-dependencies   Deprecated: use --remove-holders
\t    --remove-holders        Also remove module holders (use together with -r)
\t-w, --wait <MSEC>           When removing a module, wait up to MSEC for
\t                            module's refcount to become 0 so it can be
\t                            removed (use together with -r)
\t    --first-time            Fail if module already inserted or removed
\t-i, --ignore-install        Ignore install commands
\t-i, --ignore-remove         Ignore remove commands
\t-b, --use-blacklist         Apply blacklist to resolved alias.
\t-f, --force                 Force module insertion or removal.
\t                            implies --force-modversions and
\t                            --force-vermagic
\t    --force-modversion      Ignore module's version
\t    --force-vermagic        Ignore module's version magic

Query Options:
\t-R, --resolve-alias         Only lookup and print alias and exit
\t-D, --show-depends          Only print module dependencies and exit
\t-c, --showconfig            Print out known configuration and exit
\t-c, --show-config           Same as --showconfig
\t    --show-modversions      Dump module symbol version and exit
\t    --dump-modversions      Same as --show-modversions
\t    --show-exports          Only print module exported symbol versions and exit

General Options:
\t-n, --dry-run               Do not execute operations, just print out
\t-n, --show                  Same as --dry-run
\t-C, --config=FILE           Use FILE instead of default search paths
\t-d, --dirname=DIR           Use DIR as filesystem root for /lib/modules
\t-S, --set-version=VERSION   Use VERSION instead of `uname -r`
\t-s, --syslog                print to syslog, not stderr
\t-q, --quiet                 disable messages
\t-v, --verbose               enables more messages
\t-V, --version               show version
\t-h, --help                  show this help
"""


def split_env_options(env: str) -> list[str]:
    """MODPROBE_OPTIONS → words: split on spaces, quotes group and are removed."""
    words: list[str] = []
    cur: list[str] = []
    quote: str | None = None
    started = False
    i = 0
    while i < len(env):
        ch = env[i]
        if quote is None:
            if ch == " ":
                words.append("".join(cur))
                cur = []
                started = False
            elif ch in "\"'":
                quote = ch
                started = True
            else:
                cur.append(ch)
                started = True
        else:
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        i += 1
    if cur or started:
        words.append("".join(cur))
    return words


def options_from_args(args: list[str]) -> str | None:
    """The command-line module options; a value with a space is re-quoted."""
    parts = []
    for a in args:
        key, eq, value = a.partition("=")
        if eq and value[:1] not in ('"', "'") and " " in value:
            parts.append(f'{key}="{value}"')
        else:
            parts.append(a)
    return " ".join(parts) if parts else None


class Modprobe:
    """One modprobe invocation's settings and state."""

    def __init__(self, tool: ToolContext, prog: str):
        self.tool = tool
        self.prog = prog
        self.out = tool.stdout
        self.log = L.Log(prog, tool.stderr, L.INFO)
        self.log_priority = L.CRIT
        self.verbose = L.WARNING
        self.do_show = False
        self.dry_run = False
        self.ignore_loaded = False
        self.lookup_only = False
        self.first_time = False
        self.ignore_commands = False
        self.use_blacklist = False
        self.force = False
        self.remove_holders = False
        self.wait_msec = 0
        self.child_env = dict(tool.env)
        self.lib: Library | None = None

    # -- helpers --------------------------------------------------------------
    @property
    def library(self) -> Library:
        """The module library; main() sets ``lib`` before any operation runs."""
        if self.lib is None:
            raise RuntimeError("modprobe: no module library")
        return self.lib

    def LOG(self, text: str) -> None:
        self.log.log(self.log_priority, text)

    def show(self, text: str) -> None:
        if self.do_show or self.verbose > L.WARNING:
            self.out.write(text)

    def env_append(self, value: str) -> None:
        old = self.child_env.get("MODPROBE_OPTIONS")
        self.child_env["MODPROBE_OPTIONS"] = value if old is None else f"{old} {value}"

    def run_shell(self, mod: KModule, kind: str, cmd: str) -> int:
        """system(cmd) with MODPROBE_MODULE set: the emulated sh, or the host's when opted in."""
        env = dict(self.child_env)
        env["MODPROBE_MODULE"] = mod.name
        from . import TOOLS
        tool = self.tool

        def run_tool(name: str, argv: list[str], e: dict[str, str], out: TextIO = tool.stdout,
                     err: TextIO = tool.stderr) -> int:
            sub = ToolContext(kernel=tool.kernel, root=tool.root, stdout=out, stderr=err, env=e,
                              sh_depth=tool.sh_depth + 1)
            return TOOLS[name](argv, sub)

        if not policy_of(tool.kernel).host_shell:
            status, stdout, stderr = sh.run(cmd, sh.machine_env(env), run_tool, tool.sh_depth)
            self.out.write(stdout)
            tool.stderr.write(stderr)
            return status
        res = run_command(cmd, env)
        self.out.write(res.stdout)
        tool.stderr.write(res.stderr)
        if tool.sh_depth + 1 >= sh.MAX_DEPTH and res.requests:
            tool.stderr.write("sh: 1: Cannot fork\n")
            return 2
        replay(res.requests, run_tool, self.child_env)
        return res.status

    # -- probe (kmod_module_probe_insert_module) ------------------------------
    def _fill_softdep(self, mod: KModule, out: list[KModule]) -> None:
        pre, post = mod.softdeps()
        for m in pre:
            self._probe_list(m, False, False, out)
        out.append(mod)
        mod.ignorecmd = bool(pre or post)
        for m in post:
            self._probe_list(m, False, False, out)

    def _probe_list(self, mod: KModule, required: bool, ignorecmd: bool,
                    out: list[KModule]) -> None:
        if mod.visited:
            return
        mod.visited = True
        deps = mod.dependencies()
        if required:
            mod.required = True
            for d in deps:
                d.required = True
        for d in deps:
            self._fill_softdep(d, out)
        if ignorecmd:
            out.append(mod)
            mod.ignorecmd = True
        else:
            self._fill_softdep(mod, out)

    def _insert_module(self, m: KModule, options: str | None) -> int:
        path = m.get_path()
        if path is None:
            self.log.lib(L.ERR, L.SRC_INSERT_NO_PATH, f"could not find module by name='{m.name}'\n")
            return -errno.ENOENT
        err = insert_file(self.tool, self.library.host_of(path), options or "")
        if err < 0:
            self.log.lib(L.INFO, L.SRC_INSERT_FAILED,
                         f"Failed to insert module '{path}': {strerror(-err)}\n")
        return err

    def _install_command(self, m: KModule, options: str | None) -> int:
        cmd = m.install_command() or ""
        cmd = cmd.replace("$CMDLINE_OPTS", options or "")
        status = self.run_shell(m, "install", cmd)
        if status != 0:
            self.log.lib(L.ERR, L.SRC_COMMAND,
                         f"Error running install command '{cmd}' for module {m.name}: "
                         f"retcode {status}\n")
            return -errno.EINVAL
        return 0

    def probe_insert(self, mod: KModule, extra: str | None) -> int:
        if not self.ignore_loaded and mod.is_inkernel():
            return -errno.EEXIST if self.first_time else 0
        if (mod.alias is not None or self.use_blacklist) and mod.is_blacklisted():
            return 1
        lib = self.library
        lib.reset_probe_marks()
        plist: list[KModule] = []
        self._probe_list(mod, True, self.ignore_commands, plist)
        err = 0
        for m in plist:
            if not self.ignore_loaded and m.is_inkernel():
                err = -errno.EEXIST
            else:
                moptions = m.options()
                xopt = extra if m is mod else None
                if not moptions and not xopt:
                    options = None
                else:  # libkmod always puts a space after the config options
                    options = (moptions + " " if moptions else "") + (xopt or "")
                cmd = m.install_command()
                show = self.do_show or self.verbose > L.WARNING
                if cmd is not None and not m.ignorecmd:
                    if show:
                        self.out.write(f"install {cmd} {options or ''}\n")
                    if not self.dry_run:
                        err = self._install_command(m, options)
                else:
                    if show:
                        self._print_insmod(m, options or "")
                    if not self.dry_run:
                        err = self._insert_module(m, options)
            if err == -errno.EEXIST and m is mod and self.first_time:
                break
            if err == -errno.EEXIST or not m.required:
                err = 0
            elif err < 0:
                break
        return err

    def _print_insmod(self, m: KModule, options: str) -> None:
        path = m.get_path()
        if path is None:
            if m.initstate() == "builtin":
                self.out.write(f"builtin {m.name}\n")
            return
        self.out.write(f"insmod {path} {options}\n")

    def insmod_insert(self, mod: KModule, extra: str | None) -> int:
        if self.lookup_only:
            self.out.write(mod.name + "\n")
            return 0
        err = self.probe_insert(mod, extra)
        if err >= 0:
            return 0
        if err == -errno.EEXIST:
            self.log.error(f"could not insert '{mod.name}': Module already in kernel\n")
        elif err == -errno.ENOENT:
            self.log.error(f"could not insert '{mod.name}': Unknown symbol in module, "
                           "or unknown parameter (see dmesg)\n")
        else:
            self.log.error(f"could not insert '{mod.name}': {strerror(-err)}\n")
        return err

    def insmod(self, alias: str, extra: str | None) -> int:
        lib = self.library
        if alias.startswith("/") or alias.startswith("./"):
            if not os.path.exists(self.tool.user_path(alias)):
                self.LOG(f"Failed to get module from path {alias}: No such file or directory\n")
                return -errno.ENOENT
            mods = [lib.module_from_path(alias)]
        else:
            found = lib.lookup(alias)
            if not found:
                self.LOG(f"Module {alias} not found in directory {lib.dirname}\n")
                return -errno.ENOENT
            mods = found
        err = 0
        for m in mods:
            err = self.insmod_insert(m, extra)
        return err

    # -- removal --------------------------------------------------------------
    def _remove_one(self, mod: KModule) -> int:
        self.show(f"rmmod {mod.name}\n")
        if self.dry_run:
            return 0
        err = delete_module(self.tool, mod.name, self.force)
        if err < 0:
            self.log.lib(L.ERR, L.SRC_REMOVE, f"could not remove '{mod.name}': {strerror(-err)}\n")
        return err

    def _remove_list(self, mods: list[KModule], stop_on_errors: bool) -> int:
        for m in reversed(mods):
            r = self.rmmod_module(m, remove_holders=False, ignore_builtin=True)
            if r < 0 and stop_on_errors:
                return r
        return 0

    def rmmod_module(self, mod: KModule, *, remove_holders: bool, ignore_builtin: bool) -> int:
        pre: list[KModule] = []
        post: list[KModule] = []
        cmd = None
        if not self.ignore_commands:
            pre, post = mod.softdeps()
            cmd = mod.remove_command()
        if cmd is None and not self.ignore_loaded:
            state = mod.initstate()
            if state is None:
                if self.first_time:
                    self.LOG(f"Module {mod.name} is not in kernel.\n")
                    return -errno.ENOENT
                return 0
            if state == "builtin":
                if ignore_builtin:
                    return 0
                self.LOG(f"Module {mod.name} is builtin.\n")
                return -errno.ENOENT
        self._remove_list(post, False)
        if remove_holders:
            err = self._remove_list(mod.holders(), True)
            if err < 0:
                return err
        if cmd is None and not self.ignore_loaded and not self.wait_msec:
            usage = mod.refcnt() or 0
            if usage > 0:
                self.LOG(f"Module {mod.name} is in use.\n")
                return -errno.EBUSY
        if cmd is None:
            err = self._remove_one(mod)
        else:
            full = cmd.replace("$CMDLINE_OPTS", "")
            self.show(f"remove {full}\n")
            err = 0
            if not self.dry_run:
                status = self.run_shell(mod, "remove", full)
                if status != 0:
                    self.LOG(f"Error running remove command for {mod.name}\n")
                    err = -status
        if err < 0:
            return err
        if cmd is None:
            for dep in mod.dependencies():
                if (dep.refcnt() or 0) == 0 and dep.initstate() not in (None, "builtin"):
                    self._remove_one(dep)
        self._remove_list(pre, False)
        return 0

    def rmmod(self, alias: str) -> int:
        found = self.library.lookup(alias)
        if found is None:
            return -errno.EINVAL
        err = 0
        if not found:
            self.LOG(f"Module {alias} not found.\n")
            err = -errno.ENOENT
        for m in found:
            err = self.rmmod_module(m, remove_holders=self.remove_holders, ignore_builtin=False)
            if err < 0:
                break
        return err

    # -- show config ----------------------------------------------------------
    def show_config(self) -> int:
        cfg = self.library.config
        w = self.out.write
        for name in cfg.blacklist:
            w(f"blacklist {name}\n")
        for name, cmd in cfg.install:
            w(f"install {name} {cmd}\n")
        for name, cmd in cfg.remove:
            w(f"remove {name} {cmd}\n")
        for pat, mod in cfg.aliases:
            w(f"alias {pat} {mod}\n")
        for name, opts in cfg.options:
            w(f"options {name} {opts}\n")
        for sd in cfg.softdeps:
            w(f"softdep {sd.name} {sd.plain()}\n")
        w("\n# End of configuration files. Dumping indexes now:\n\n")
        for name in (INDEX_ALIAS, INDEX_SYMBOL):
            idx = self.library.index(name)
            if idx is None:
                continue
            for key, values in idx.items():
                for _, v in values:
                    w(f"alias {key} {v}\n")
        return 0


def main(argv: list[str], ctx: ToolContext) -> int:
    """``modprobe [options] module [params]`` — returns the exit status."""
    prog = os.path.basename(argv[0]) if argv else "modprobe"
    mp = Modprobe(ctx, prog)
    args = list(argv[1:])
    env_opts = ctx.env.get("MODPROBE_OPTIONS")
    if env_opts is not None:
        args = split_env_options(env_opts) + args
    try:
        opts, operands = getopt_long(prog, args, SHORTOPTS, LONGOPTS, ctx.stderr)
    except GetoptError:
        return 1
    use_all = do_remove = do_show_config = False
    config_paths: list[str] | None = None
    root: str | None = None
    kversion: str | None = None
    for opt, val in opts:
        if opt == "a":
            mp.log_priority = L.WARNING
            use_all = True
        elif opt == "r":
            do_remove = True
        elif opt == "\5":
            mp.remove_holders = True
        elif opt == "w":
            try:
                mp.wait_msec = int(val or "", 0)
            except ValueError:
                mp.log.error(f"unexpected wait value '{val}'.\n")
                return 1
        elif opt == "\3":
            mp.first_time = True
        elif opt == "i":
            mp.ignore_commands = True
        elif opt == "b":
            mp.use_blacklist = True
        elif opt == "f":
            mp.force = True
        elif opt in ("\2", "\1"):
            pass
        elif opt == "D":
            mp.ignore_loaded = mp.dry_run = mp.do_show = True
        elif opt == "R":
            mp.lookup_only = True
        elif opt == "c":
            do_show_config = True
        elif opt in ("\4", "\6"):
            mp.log.error("dumping modversions/exports is not supported by kmodemu\n")
            return 1
        elif opt == "n":
            mp.dry_run = True
        elif opt == "C":
            config_paths = (config_paths or []) + [val or ""]
            mp.env_append("-C")
            mp.env_append(val or "")
        elif opt == "d":
            root = val
        elif opt == "S":
            kversion = val
        elif opt == "s":
            mp.env_append("-s")
        elif opt == "q":
            mp.env_append("-q")
            mp.verbose = L.EMERG
        elif opt == "v":
            mp.env_append("-v")
            mp.verbose += 1
        elif opt == "V":
            ctx.stdout.write(VERSION_TEXT)
            return 0
        elif opt == "h":
            ctx.stdout.write(HELP.format(p=prog))
            return 0
    if not do_show_config and not operands:
        mp.log.error("missing parameters. See -h.\n")
        return 1
    dirname = None
    dir_is_host = False
    if root is not None or kversion is not None:
        ver = kversion if kversion is not None else ctx.release()
        dirname = f"{root or ''}/lib/modules/{ver}"
        if root:
            dir_is_host = os.path.exists(root)
    lib = Library(ctx, dirname, dir_is_host, config_paths)
    mp.lib = lib
    for msg in lib.config.messages:  # libkmod parses config before the logger is set
        ctx.stderr.write(msg.default_format())
    mp.log.threshold = mp.verbose
    if do_show_config:
        err = mp.show_config()
    elif do_remove:
        err = 0
        for name in operands if use_all else operands:
            r = mp.rmmod(name)
            if r < 0:
                err = r
    elif use_all:
        err = 0
        for name in operands:
            r = mp.insmod(name, None)
            if r < 0:
                err = r
    else:
        err = mp.insmod(operands[0], options_from_args(operands[1:]))
    return 0 if err >= 0 else 1
