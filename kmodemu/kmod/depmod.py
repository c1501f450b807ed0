"""``depmod``: build modules.dep and the other indexes of a module tree (kmod 30).

Dependencies come from symbols: each undefined symbol of a module is looked
up among the exports of all modules. The module list is ordered by
``modules.order`` (others keep kmod's hash-table order), dependencies are
topologically sorted, and every output file matches kmod's byte for byte,
including the binary tries modprobe reads.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from typing import TextIO

from kmodemu.errors import KernelError, strerror
from kmodemu.modules.elf import read_elf

from . import log as L
from .context import ToolContext
from .getopt import NO, REQUIRED, GetoptError, LongOpt, getopt_long
from .index import IndexBuilder
from .khash import hash_order
from .names import MODULE_EXTENSIONS, alias_normalize, modname_from_path


def _errno_of(e: OSError) -> int:
    """The errno of a failed file operation (EIO for the rare OSError that carries none)."""
    return e.errno if e.errno is not None else errno.EIO


SHORTOPTS = "aAb:C:E:F:euqrvnP:wmVh"
LONGOPTS = [
    LongOpt("all", NO, "a"), LongOpt("quick", NO, "A"), LongOpt("basedir", REQUIRED, "b"),
    LongOpt("config", REQUIRED, "C"), LongOpt("symvers", REQUIRED, "E"),
    LongOpt("filesyms", REQUIRED, "F"), LongOpt("errsyms", NO, "e"),
    LongOpt("unresolved-error", NO, "u"), LongOpt("quiet", NO, "q"), LongOpt("root", NO, "r"),
    LongOpt("verbose", NO, "v"), LongOpt("show", NO, "n"), LongOpt("dry-run", NO, "n"),
    LongOpt("symbol-prefix", REQUIRED, "P"), LongOpt("warn", NO, "w"), LongOpt("map", NO, "m"),
    LongOpt("version", NO, "V"), LongOpt("help", NO, "h"),
]
DEFAULT_CONFIG = ("/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/lib/depmod.d")
HELP = """Usage:
\t{p} -[aA] [options] [forced_version]

If no arguments (except options) are given, "depmod -a" is assumed

depmod will output a dependency list suitable for the modprobe utility.

Options:
\t-a, --all            Probe all modules
\t-A, --quick          Only does the work if there's a new module
\t-e, --errsyms        Report not supplied symbols
\t-n, --show           Write the dependency file on stdout only
\t-P, --symbol-prefix  Architecture symbol prefix
\t-C, --config=PATH    Read configuration from PATH
\t-v, --verbose        Enable verbose mode
\t-w, --warn           Warn on duplicates
\t-V, --version        show version
\t-h, --help           show this help

The following options are useful for people managing distributions:
\t-b, --basedir=DIR    Use an image of a module tree.
\t-F, --filesyms=FILE  Use the file instead of the
\t                     current kernel symbols.
\t-E, --symvers=FILE   Use Module.symvers file to check
\t                     symbol versions.
"""


@dataclass(eq=False)
class Mod:
    """One module file depmod keeps."""

    name: str
    path: str            # as printed for files outside the tree
    relpath: str | None  # relative to the module directory
    host: str
    exports: list[str] = field(default_factory=list)
    crcs: dict[str, int] = field(default_factory=dict)
    undefined: list[tuple[str, bool]] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)
    deps: list["Mod"] = field(default_factory=list)
    users: int = 0
    idx: int = 0
    sort_idx: int = 1
    dep_sort_idx: int = 2**31 - 1

    @property
    def shown(self) -> str:
        return self.relpath if self.relpath is not None else self.path

    @property
    def uncrelpath(self) -> str | None:
        if self.relpath is None:
            return None
        return os.path.dirname(self.relpath) + ("/" if "/" in self.relpath else "") + \
            self.relpath.rsplit("/", 1)[-1].split(".", 1)[0] + ".ko"


@dataclass
class DepmodConfig:
    """depmod.d: search order, overrides, excluded directories."""

    searches: list[str | None] = field(default_factory=list)   # None = "built-in"
    overrides: list[tuple[str, str]] = field(default_factory=list)  # (modname, subdir)
    excludes: set[str] = field(default_factory=set)


def parse_depmod_config(tool: ToolContext, paths: list[str], kversion: str, log: L.Log,
                        user_given: bool) -> DepmodConfig:
    cfg = DepmodConfig()
    chosen: dict[str, str] = {}
    for path in paths:
        real = tool.user_path(path) if user_given else tool.machine_path(path)
        if os.path.isdir(real):
            for fn in sorted(os.listdir(real)):
                if fn.startswith(".") or not fn.endswith(".conf") or len(fn) < 6:
                    continue
                full = os.path.join(real, fn)
                if os.path.isdir(full):
                    log.error(f"Directories inside directories are not supported: {path}/{fn}\n")
                    continue
                chosen.setdefault(fn, full)
        elif os.path.exists(real):
            chosen.setdefault(os.path.basename(path), real)
    from .config import read_logical_lines
    for fn in sorted(chosen):
        try:
            with open(chosen[fn], "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for linenum, raw in read_logical_lines(data):
            words = raw.decode("utf-8", "surrogateescape").split()
            if not words or words[0].startswith("#"):
                continue
            cmd = words[0]
            if cmd == "search":
                for w in words[1:]:
                    cfg.searches.append(None if w == "built-in" else w)
            elif cmd == "override" and len(words) >= 4:
                if _kernel_matches(words[2], kversion):
                    cfg.overrides.append((words[1], words[3]))
            elif cmd == "exclude" and len(words) >= 2:
                cfg.excludes.update(words[1:])
            elif cmd in ("include", "make_map_files", "external"):
                continue
            else:
                log.error(f"{chosen[fn]}:{linenum}: ignoring bad line starting with '{cmd}'\n")
    if not cfg.searches:
        cfg.searches.append("updates")
    return cfg


def _kernel_matches(pattern: str, kversion: str) -> bool:
    """depmod.c cfg_kernel_matches: "*", else an extended regex; one that does not compile
    matches nothing (regcomp failed), it is not an error."""
    if pattern == "*":
        return True
    try:
        return re.search(pattern, kversion) is not None
    except re.error:
        return False


def _priority(cfg: DepmodConfig, relpath: str) -> int:
    """Index in the search list (built-in for paths no entry names)."""
    bprio = -1
    prio = -1
    for i, s in enumerate(cfg.searches):
        if s is None:
            bprio = i
        elif relpath.startswith(s + "/") and prio < 0:
            prio = i
    return prio if prio >= 0 else bprio


class Depmod:
    """One depmod run over one module directory."""

    def __init__(self, tool: ToolContext, dirname_shown: str, dirname_host: str,
                 cfg: DepmodConfig, log: L.Log, out: TextIO):
        self.tool = tool
        self.dirname = dirname_shown
        self.host = dirname_host
        self.cfg = cfg
        self.log = log
        self.out = out
        self.by_name: dict[str, Mod] = {}
        self.modules: list[Mod] = []
        self.symbols: dict[str, tuple[Mod | None, int]] = {}
        self.sym_prefix = ""
        self.print_unknown = False
        self.warn_dups = False
        self.verbose = False

    # -- scan -------------------------------------------------------------------
    def search(self) -> int:
        try:
            self._search_dir(self.host, "")
        except OSError as e:
            self.log.error(f"could not open directory {self.dirname}: {strerror(_errno_of(e))}\n")
            return -_errno_of(e)
        return 0

    def _search_dir(self, host: str, rel: str) -> None:
        with os.scandir(host) as it:
            entries = list(it)
        for de in entries:
            name = de.name
            if name in ("build", "source"):
                continue
            sub_rel = rel + name
            try:
                is_dir = de.is_dir()
            except OSError:
                continue
            if is_dir:
                if sub_rel in self.cfg.excludes or name in self.cfg.excludes:
                    continue
                try:
                    self._search_dir(de.path, sub_rel + "/")
                except OSError as e:
                    self.log.error(f"openat({self.dirname}/{rel}, {name}, O_RDONLY): "
                                   f"{strerror(_errno_of(e))}\n")
            elif name.endswith(MODULE_EXTENSIONS):
                self._add_file(de.path, sub_rel)

    def _add_file(self, host: str, rel: str) -> None:
        name = modname_from_path(rel)
        old = self.by_name.get(name)
        if old is not None:
            if not self._replaces(old, rel, name):
                return
            del self.by_name[name]
        self.by_name[name] = Mod(name, f"{self.dirname}/{rel}", rel, host)

    def _replaces(self, old: Mod, new_rel: str, name: str) -> bool:
        new_dir = os.path.dirname(new_rel)
        old_dir = os.path.dirname(old.relpath or "")
        for modname, subdir in reversed(self.cfg.overrides):
            if modname == name and subdir == new_dir:
                return True
            if modname == name and subdir == old_dir:
                return False
        newprio = _priority(self.cfg, new_rel)
        oldprio = _priority(self.cfg, old.relpath or "")
        return not (newprio <= oldprio)

    def add_files(self, files: list[str]) -> None:
        """depmod with explicit module files: only those."""
        for f in files:
            host = self.tool.user_path(f)
            rel = None
            if host.startswith(self.host + "/"):
                rel = host[len(self.host) + 1:]
            name = modname_from_path(f)
            self.by_name[name] = Mod(name, f, rel, host)

    # -- order -----------------------------------------------------------------
    def build_array(self) -> None:
        order = hash_order(self.by_name.keys(), 512)
        self.modules = [self.by_name[n] for n in order]
        for i, m in enumerate(self.modules):
            m.idx = i

    def sort_by_order(self) -> None:
        path = os.path.join(self.host, "modules.order")
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            self.log.warning(f"could not open modules.order at {self.dirname}: {strerror(_errno_of(e))}\n")
            return
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            self.log.error(f"{self.dirname}/modules.order:{len(lines)} corrupted line misses '\\n'\n")
            return
        total = len(lines) + 1
        by_unc = {m.uncrelpath: m for m in self.modules if m.uncrelpath is not None}
        for idx, line in enumerate(lines, 1):
            m = by_unc.get(line.decode("utf-8", "surrogateescape"))
            if m is not None:
                m.sort_idx = idx - total
        self.modules.sort(key=lambda m: m.sort_idx)
        for i, m in enumerate(self.modules):
            m.idx = i

    # -- symbols and dependencies ------------------------------------------------
    def _strip(self, name: str) -> str:
        if self.sym_prefix and name.startswith(self.sym_prefix):
            return name[1:]
        return name

    def load_kernel_symbols(self, symvers: str | None, system_map: str | None) -> int:
        host = self.tool.user_path(symvers or system_map or "")
        try:
            with open(host, "rb") as fh:
                text = fh.read().decode("utf-8", "surrogateescape")
        except OSError as e:
            return -_errno_of(e)
        for line in text.splitlines():
            if symvers:
                parts = line.replace("\t", " ").split()
                if len(parts) >= 3 and parts[2] == "vmlinux":
                    try:
                        crc = int(parts[0], 16)
                    except ValueError:
                        continue
                    self.symbols[self._strip(parts[1])] = (None, crc)
            else:
                parts = line.split(" ", 2)
                if len(parts) == 3:
                    sym = parts[2]
                    if self.sym_prefix and sym.startswith(self.sym_prefix):
                        sym = sym[1:]
                    if sym.startswith("__ksymtab_"):
                        self.symbols[sym[10:]] = (None, 0)
        self.symbols["__this_module"] = (None, 0)
        self.symbols["_GLOBAL_OFFSET_TABLE_"] = (None, 0)
        return 0

    def load_modules(self) -> None:
        for m in self.modules:
            try:
                info = read_elf(m.host)
            except (KernelError, OSError) as e:
                err = e.errno if isinstance(e, (KernelError, OSError)) else errno.EINVAL
                self.log.error(f"failed to load symbols from {m.path}: {strerror(err or errno.EINVAL)}\n")
                continue
            m.info = info.modinfo
            m.undefined = info.undefined + [(v, False) for v in info.versions_only]
            for sym in info.exports:
                self.symbols[self._strip(sym)] = (m, info.crcs.get(sym, 0))

    def load_dependencies(self) -> None:
        for m in self.modules:
            for sym, weak in m.undefined:
                s = sym[1:] if sym.startswith(".") else sym
                s = self._strip(s)
                found = self.symbols.get(s)
                if found is None:
                    if self.print_unknown and not weak:
                        self.log.warning(f"{m.path} needs unknown symbol {sym}\n")
                    continue
                owner = found[0]
                if owner is None or owner in m.deps:
                    continue
                m.deps.append(owner)
                owner.users += 1
                if self.verbose:
                    self.out.write(f'{m.path} needs "{s}": {owner.path}\n')

    def calculate(self) -> int:
        n = len(self.modules)
        users = [m.users for m in self.modules]
        roots = [i for i in range(n) if users[i] == 0]
        sorted_: list[int] = []
        while roots:
            src = roots.pop()
            self.modules[src].dep_sort_idx = len(sorted_)
            sorted_.append(src)
            for dst in self.modules[src].deps:
                users[dst.idx] -= 1
                if users[dst.idx] == 0:
                    roots.append(dst.idx)
        if len(sorted_) < n:
            self._report_cycles(users, n - len(sorted_))
            return -errno.EINVAL
        for m in self.modules:
            if len(m.deps) > 1:
                m.deps.sort(key=lambda d: d.dep_sort_idx)
        return 0

    def _report_cycles(self, users: list[int], n_roots: int) -> None:
        total = n_roots
        visited = [False] * len(self.modules)
        ir = 0
        n = len(self.modules)
        while n_roots > 0:
            while ir < n and users[ir] <= 0:
                ir += 1
            if ir >= n:
                break
            stack = [ir]
            edges: list[int] = []
            n_roots -= 1
            ir += 1
            while stack:
                idx = stack.pop()
                m = self.modules[idx]
                if visited[idx]:
                    loop: list[int] = []
                    for e in reversed(edges):
                        loop.append(e)
                        if e == idx:
                            break
                    loop.reverse()
                    names = [self.modules[e].name for e in loop] + [m.name]
                    self.log.error("Cycle detected: " + " -> ".join(names) + "\n")
                    continue
                visited[idx] = True
                if not m.deps:
                    continue
                edges.append(idx)
                for d in m.deps:
                    stack.append(d.idx)
                    users[d.idx] -= 1
        self.log.error(f"Found {total} modules in dependency cycles!\n")

    # -- outputs -----------------------------------------------------------------
    def _closure(self, m: Mod) -> list[Mod]:
        seen: list[Mod] = []
        ids: set[int] = set()

        def fill(x: Mod) -> None:
            for d in x.deps:
                if id(d) in ids:
                    continue
                ids.add(id(d))
                seen.append(d)
                fill(d)
        fill(m)
        seen.sort(key=lambda d: d.dep_sort_idx)
        return seen

    def out_dep(self) -> bytes:
        lines = []
        for m in self.modules:
            deps = self._closure(m) if m.deps else []
            lines.append(m.shown + ":" + "".join(" " + d.shown for d in deps) + "\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    def out_dep_bin(self) -> bytes:
        b = IndexBuilder()
        for m in self.modules:
            deps = self._closure(m)
            line = m.shown + ":" + "".join(" " + d.shown for d in deps)
            if b.insert(m.name, line, m.idx) and self.warn_dups:
                self.log.warning(f"duplicate module deps:\n{line}\n")
        return b.to_bytes()

    def out_alias(self) -> bytes:
        s = "# Aliases extracted from modules themselves.\n"
        for m in self.modules:
            for k, v in m.info:
                if k == "alias":
                    s += f"alias {v} {m.name}\n"
        return s.encode("utf-8", "surrogateescape")

    def out_alias_bin(self) -> bytes:
        b = IndexBuilder()
        for m in self.modules:
            for k, v in m.info:
                if k != "alias":
                    continue
                a = alias_normalize(v)
                if a is None:
                    self.log.warning(f"Unmatched bracket in {v}\n")
                    continue
                if b.insert(a, m.name, m.idx) and self.warn_dups:
                    self.log.warning(f"duplicate module alias:\n{a} {m.name}\n")
        return b.to_bytes()

    def out_softdep(self) -> bytes:
        s = "# Soft dependencies extracted from modules themselves.\n"
        for m in self.modules:
            for k, v in m.info:
                if k == "softdep":
                    s += f"softdep {m.name} {v}\n"
        return s.encode("utf-8", "surrogateescape")

    def _owned_symbols(self) -> list[tuple[str, Mod]]:
        out = []
        for name in hash_order(self.symbols.keys(), 2048):
            owner = self.symbols[name][0]
            if owner is not None:
                out.append((name, owner))
        return out

    def out_symbols(self) -> bytes:
        s = "# Aliases for symbols, used by symbol_request().\n"
        for name, owner in self._owned_symbols():
            s += f"alias symbol:{name} {owner.name}\n"
        return s.encode("utf-8", "surrogateescape")

    def out_symbols_bin(self) -> bytes:
        b = IndexBuilder()
        for name, owner in self._owned_symbols():
            if b.insert("symbol:" + name, owner.name, owner.idx) and self.warn_dups:
                self.log.warning(f"duplicate module syms:\nsymbol:{name} {owner.name}\n")
        return b.to_bytes()

    def out_builtin_bin(self) -> bytes:
        try:
            with open(os.path.join(self.host, "modules.builtin"), "rb") as fh:
                data = fh.read()
        except OSError as e:
            self.log.warning(f"could not open modules.builtin at {self.dirname}: {strerror(_errno_of(e))}\n")
            return b""
        b = IndexBuilder()
        for raw in data.split(b"\n"):
            if not raw:
                continue
            line = raw.decode("utf-8", "surrogateescape")
            if not line[:1].isalpha():
                self.log.error(f"Invalid modules.builtin line: {line}\n")
                continue
            b.insert(modname_from_path(line), "", 0)
        return b.to_bytes()

    def out_builtin_alias_bin(self) -> bytes:
        try:
            with open(os.path.join(self.host, "modules.builtin.modinfo"), "rb") as fh:
                data = fh.read()
        except OSError as e:
            self.log.warning(f"could not open modules.builtin.modinfo at {self.dirname}: "
                             f"{strerror(_errno_of(e))}\n")
            return b""
        b = IndexBuilder()
        for raw in data.split(b"\0"):
            entry = raw.decode("utf-8", "surrogateescape")
            modname, dot, rest = entry.partition(".")
            if not dot or not modname:
                continue
            key, eq, value = rest.partition("=")
            if key != "alias" or not eq or not value:
                continue
            a = alias_normalize(value)
            if a is None:
                self.log.warning(f"Unmatched bracket in {value}\n")
                continue
            b.insert(a, modname, 0)
        return b.to_bytes()

    def out_devname(self) -> bytes:
        s = ""
        header = "# Device nodes to trigger on-demand module loading.\n"
        for m in self.modules:
            devname = None
            kind = ""
            major = minor = 0
            for k, v in m.info:
                if k != "alias":
                    continue
                if v.startswith("devname:"):
                    devname = v[8:]
                else:
                    mm = re.match(r"(char|block)-major-(\d+)-(\d+)", v)
                    if mm:
                        kind = "c" if mm.group(1) == "char" else "b"
                        major, minor = int(mm.group(2)), int(mm.group(3))
                if kind and devname is not None:
                    break
            if devname is not None:
                if kind:
                    s += (header if not s else "") + f"{m.name} {devname} {kind}{major}:{minor}\n"
                else:
                    self.log.error(f"Module '{m.name}' has devname ({devname}) but lacks major "
                                   "and minor information. Ignoring.\n")
        return s.encode("utf-8", "surrogateescape")

    OUTPUTS = (("modules.dep", "out_dep", False), ("modules.dep.bin", "out_dep_bin", True),
               ("modules.alias", "out_alias", False), ("modules.alias.bin", "out_alias_bin", True),
               ("modules.softdep", "out_softdep", False), ("modules.symbols", "out_symbols", False),
               ("modules.symbols.bin", "out_symbols_bin", True),
               ("modules.builtin.bin", "out_builtin_bin", True),
               ("modules.builtin.alias.bin", "out_builtin_alias_bin", True),
               ("modules.devname", "out_devname", False))

    def output(self, to_stdout: bool) -> int:
        if to_stdout:
            for _name, fn, binary in self.OUTPUTS:
                if not binary:
                    self.out.write(getattr(self, fn)().decode("utf-8", "surrogateescape"))
            return 0
        results = [(name, getattr(self, fn)()) for name, fn, _ in self.OUTPUTS]
        for name, data in results:
            final = os.path.join(self.host, name)
            tmp = final + ".tmp"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
            except OSError as e:
                self.log.error(f"Could not write index '{name}': {strerror(_errno_of(e))}\n")
                return -_errno_of(e)
        return 0


def _is_version(s: str) -> bool:
    return re.match(r"\s*[+]?\d+\.\s*[+]?\d+", s) is not None


def _up_to_date(host: str) -> bool:
    try:
        ref = os.stat(os.path.join(host, "modules.dep")).st_mtime
    except OSError:
        return False
    for dirpath, dirnames, filenames in os.walk(host):
        dirnames[:] = [d for d in dirnames if d not in ("build", "source")]
        for f in filenames:
            if f.endswith(MODULE_EXTENSIONS) and os.stat(os.path.join(dirpath, f)).st_mtime > ref:
                return False
    return True


def main(argv: list[str], ctx: ToolContext) -> int:
    """``depmod [-b DIR] [-n] [-e -E/-F FILE] [-A] [version] [files]``."""
    prog = os.path.basename(argv[0]) if argv else "depmod"
    log = L.Log(prog, ctx.stderr, L.WARNING)
    try:
        opts, operands = getopt_long(prog, list(argv[1:]), SHORTOPTS, LONGOPTS, ctx.stderr)
    except GetoptError:
        return 1
    root = None
    config_paths: list[str] = []
    symvers = system_map = None
    quick = dry = verbose = print_unknown = warn_dups = False
    prefix = ""
    for opt, val in opts:
        if opt == "b":
            root = val
        elif opt == "C":
            config_paths.append(val or "")
        elif opt == "E":
            symvers = val
        elif opt == "F":
            system_map = val
        elif opt == "e":
            print_unknown = True
        elif opt == "v":
            verbose = True
        elif opt == "n":
            dry = True
        elif opt == "P":
            if val and len(val) > 1:
                log.error("-P only takes a single char\n")
                return 1
            prefix = val or ""
        elif opt == "w":
            warn_dups = True
        elif opt == "A":
            quick = True
        elif opt in ("a", "u", "q", "r", "m"):
            if opt == "m":
                log.warning("Ignored deprecated option -m\n")
            continue
        elif opt == "V":
            ctx.stdout.write("kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
            return 0
        elif opt == "h":
            ctx.stdout.write(HELP.format(p=prog))
            return 0
    files: list[str] = []
    if operands and _is_version(operands[0]):
        kversion = operands[0]
        files = operands[1:]
    elif operands and not operands[0].endswith(MODULE_EXTENSIONS):
        log.error(f"Bad version passed {operands[0]}\n")
        return 1
    else:
        kversion = ctx.release()
        files = operands
    shown = f"{root or ''}/lib/modules/{kversion}"
    host = shown if (root and os.path.exists(root)) else ctx.machine_path(shown)
    cfg = parse_depmod_config(ctx, config_paths or list(DEFAULT_CONFIG), kversion, log,
                              bool(config_paths))
    if quick and not dry and not files and _up_to_date(host):
        return 0
    d = Depmod(ctx, shown, host, cfg, log, ctx.stdout)
    d.sym_prefix = prefix
    d.warn_dups = warn_dups
    d.verbose = verbose
    if files:
        d.add_files(files)
    else:
        err = d.search()
        if err < 0:
            log.log(L.CRIT, f"could not search modules: {strerror(-err)}\n")
            return 1
    d.build_array()
    d.sort_by_order()
    if symvers is not None or system_map is not None:
        err = d.load_kernel_symbols(symvers, system_map)
        if err < 0:
            log.log(L.CRIT, f"could not load {symvers or system_map}: {strerror(-err)}\n")
            return 1
        d.print_unknown = print_unknown
    elif print_unknown:
        log.warning("-e needs -E or -F\n")
    d.load_modules()
    d.load_dependencies()
    if d.calculate() < 0:
        return 1
    return 0 if d.output(dry) >= 0 else 1
