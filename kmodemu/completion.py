"""Shell completion: what the word under the cursor could be, without booting anything.

A TAB must be quick and must change nothing, so completion never boots or
replays a machine. It reads the machine directory (the definition in
``machine.json``, the module tree under ``root/lib/modules``) and, only when the
machine process is running, asks it read-only console commands through the
client (``ls -p``, ``cat /proc/modules``, ``modinfo -F parm``, ``info``), which
are never journaled. This is how bash-completion's own kmod completers work:
module names from ``/lib/modules/$(uname -r)``, loaded ones from
``/proc/modules``, parameters from ``modinfo``.

``Completer`` turns one command's words into candidates; ``MachineFacts`` is
where the facts come from (a test gives it a fake).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

#: how long one question to a running machine may take before completion gives up
QUERY_TIMEOUT_S = 2.0
MODULE_SUFFIXES = (".ko.xz", ".ko.zst", ".ko.gz", ".ko")


@dataclass(frozen=True)
class Candidate:
    """One completion: the text, and what the shell shows beside it (zsh, fish)."""

    value: str
    help: str | None = None
    #: "plain", or "file"/"dir": the shell completes paths itself
    kind: str = "plain"


class Facts(Protocol):
    """Where completion learns about a machine (``MachineFacts``, or a test's fake)."""

    def module_names(self) -> list[str]: ...
    def builtin_names(self) -> list[str]: ...
    def loaded_modules(self) -> list[str]: ...
    def params(self, module: str) -> list[tuple[str, str]]: ...
    def listdir(self, directory: str) -> list[str] | None: ...
    def domains(self) -> list[str]: ...
    def xl_commands(self) -> dict[str, str]: ...


def _modname(path: str) -> str:
    """kmod's module name of a file: its basename without the suffix, ``-`` as ``_``."""
    base = os.path.basename(path)
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_parm_lines(text: str) -> list[tuple[str, str]]:
    """(name, type) from ``modinfo -F parm`` lines (``name:description (type)``)."""
    out = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or not name:
            continue
        m = re.search(r"\(([^()]*)\)\s*$", rest)
        out.append((name, m.group(1) if m else ""))
    return out


class MachineFacts:
    """The machine in ``path`` (a guest of it when ``guest`` is set), read without booting it."""

    def __init__(self, path: Path, guest: str | None = None, *,
                 timeout: float = QUERY_TIMEOUT_S):
        self.path = Path(path)
        self.guest = guest
        self.timeout = timeout
        self._definition: dict | None | bool = False

    # -- the machine directory ------------------------------------------------------
    def _inside(self, p: str) -> Path | None:
        """A path the definition names, if it is inside the machine directory: as when the
        machine boots (``Machine._check_paths``), nothing outside is read or imported."""
        from kmodemu.machine.journal import inside
        full = self.path / p
        return full if not os.path.isabs(p) and inside(full, self.path) else None

    def _plugin_dirs(self) -> list[Path]:
        d = self.definition() or {}
        dirs = [self._inside(p) for p in d.get("module_path") or [] if isinstance(p, str)]
        return [p for p in dirs if p is not None and p.is_dir()]

    def definition(self) -> dict | None:
        """The definition in machine.json, or None (no machine yet, or unreadable)."""
        if self._definition is False:
            try:
                from kmodemu.machine import protocol as proto
                data = json.loads((self.path / proto.IMAGE_NAME).read_text())
                d = data.get("definition") if isinstance(data, dict) else None
                self._definition = d if isinstance(d, dict) else None
            except (OSError, ValueError):
                self._definition = None
        return self._definition if isinstance(self._definition, dict) else None

    def module_dir(self) -> Path | None:
        """``root/lib/modules/RELEASE`` of the machine (a guest's disk is the host's business)."""
        d = self.definition()
        if d is None or self.guest is not None:
            return None
        from kmodemu.kernel.profiles import get_profile
        try:
            release = d.get("release") or get_profile(str(d.get("profile", "3.10"))).release
        except (KeyError, ValueError):
            return None
        root = d.get("root") or "root"
        if not isinstance(root, str) or not isinstance(release, str) or "/" in release:
            return None
        base = self._inside(root)
        moddir = base / "lib" / "modules" / release if base is not None else None
        return moddir if moddir is not None and moddir.is_dir() else None

    def _dep_entries(self) -> dict[str, str]:
        """Module name -> file (relative to the module dir), from modules.dep."""
        moddir = self.module_dir()
        if moddir is None:
            return {}
        try:
            text = (moddir / "modules.dep").read_text(errors="replace")
        except OSError:
            return {}
        out: dict[str, str] = {}
        for line in text.splitlines():
            rel, sep, _ = line.partition(":")
            if sep and rel and not os.path.isabs(rel) and ".." not in rel.split("/"):
                out.setdefault(_modname(rel), rel)
        return out

    def _plugin_names(self) -> list[str]:
        """Modules the plugins declare (the tree of a machine not booted yet holds these)."""
        from kmodemu.modules.discovery import ModuleRegistry
        d = self.definition() or {}
        try:
            registry = ModuleRegistry(self._plugin_dirs())
        except (OSError, ValueError):
            return []
        builtin = {b.replace("-", "_") for b in d.get("builtin") or [] if isinstance(b, str)}
        return [n for n in registry.names() if n not in builtin]

    def module_names(self) -> list[str]:
        """Loadable modules: the module tree's, else (no tree yet, or a guest) the plugins'."""
        names = set(self._dep_entries())
        if not names:
            names = set(self._plugin_names())
        return sorted(names)

    def builtin_names(self) -> list[str]:
        moddir = self.module_dir()
        if moddir is None:
            d = self.definition() or {}
            return sorted(b.replace("-", "_") for b in d.get("builtin") or [] if isinstance(b, str))
        try:
            lines = (moddir / "modules.builtin").read_text(errors="replace").splitlines()
        except OSError:
            return []
        return sorted({_modname(line) for line in lines if line.strip()})

    def params(self, module: str) -> list[tuple[str, str]]:
        """(parameter, type) of a module: from its .ko's modinfo, or the running guest's modinfo."""
        rel = self._dep_entries().get(module.replace("-", "_"))
        moddir = self.module_dir()
        if rel is not None and moddir is not None:
            from kmodemu.errors import KernelError
            from kmodemu.kmod.log import Log
            from kmodemu.kmod.modinfo import merge_params, read_elf  # the file as modinfo reads it
            try:
                info = read_elf(moddir / rel)
            except (OSError, KernelError):
                return []
            log = Log("modinfo", io.StringIO())
            return sorted((n, t or "") for n, _, t in merge_params(info.modinfo, log))
        text = self.query(["modinfo", "-F", "parm", module])
        if text is not None:
            return sorted(parse_parm_lines(text))
        if self.guest is None and moddir is None:
            return self._plugin_params(module)
        return []

    def _plugin_params(self, module: str) -> list[tuple[str, str]]:
        """A machine not booted yet: the parameters its plugin declares."""
        from kmodemu.modules.discovery import ModuleRegistry
        try:
            decl = ModuleRegistry(self._plugin_dirs()).get(module)
        except (OSError, ValueError):
            return []
        if decl is None:
            return []
        return sorted((p.name, p.type) for p in decl.params)

    # -- the running machine ----------------------------------------------------------
    def query(self, argv: Sequence[str]) -> str | None:
        """stdout of a read-only console command on the running machine; None if it is not
        running, is busy past the timeout, or the command failed."""
        from kmodemu.console.commands import is_readonly
        from kmodemu.machine import client
        if not is_readonly(argv):
            raise ValueError(f"completion asks read-only commands only, not {argv[0]!r}")
        out, err = io.StringIO(), io.StringIO()
        try:
            rc = client.request(self.path, {"op": "run", "argv": list(argv), "target": self.guest,
                                            "tty": {"out": False, "err": False}},
                                stdout=out, stderr=err, timeout=self.timeout)
        except client.ClientError:
            return None
        return out.getvalue() if rc == 0 else None

    def loaded_modules(self) -> list[str]:
        text = self.query(["cat", "/proc/modules"])
        return sorted(line.split()[0] for line in (text or "").splitlines() if line.split())

    def listdir(self, directory: str) -> list[str] | None:
        """Entries of a pseudo directory (directories end in ``/``); None: machine not running."""
        text = self.query(["ls", "-p", directory or "/"])
        return None if text is None else [n for n in text.splitlines() if n]

    def domains(self) -> list[str]:
        """Xen domain names a host runs: Domain-0 and its registered guests."""
        from kmodemu.machine import client
        from kmodemu.machine.guests import DOM0
        if self.guest is not None:
            return []
        data = client.info(self.path, timeout=self.timeout)
        if data is None:
            return []
        return [DOM0, *sorted(g for g in data.get("guests") or [] if isinstance(g, str))]

    def xl_commands(self) -> dict[str, str]:
        """xl's subcommands and their one-line help, from this build's xl (none without Xen)."""
        import importlib
        try:
            xl = importlib.import_module("kmodemu.xen.xl")
        except ImportError:
            return {}
        summary = getattr(xl, "SUMMARY", {})
        return {k: v for k, v in summary.items() if isinstance(k, str) and isinstance(v, str)}


# -- machine names (--machine) ------------------------------------------------------------

def machine_candidates(state_dir: Path, incomplete: str,
                       guests_of: Callable[[Path], list[str]] | None = None) -> list[Candidate]:
    """Machine names under the state directory, and HOST/GUEST for running hosts' guests.

    A word that looks like a path (``/``, ``.``, ``~`` first) is the shell's to complete.
    """
    if incomplete.startswith(("/", ".", "~")):
        return [Candidate(incomplete, kind="dir")]
    from kmodemu.machine import client
    from kmodemu.machine import protocol as proto

    def running_guests(d: Path) -> list[str]:
        if not client.is_running(d):
            return []
        data = client.info(d, timeout=QUERY_TIMEOUT_S)
        return [g for g in (data or {}).get("guests") or [] if isinstance(g, str)]

    guests_of = guests_of or running_guests
    try:
        dirs = sorted(p for p in state_dir.iterdir() if (p / proto.IMAGE_NAME).is_file())
    except OSError:
        dirs = []
    out = []
    host_part = incomplete.rsplit("/", 1)[0] if "/" in incomplete else None
    for d in dirs:
        if host_part is None and d.name.startswith(incomplete):
            out.append(Candidate(d.name, "machine"))
        if host_part is None or host_part == d.name:
            for g in sorted(guests_of(d)):
                word = f"{d.name}/{g}"
                if word.startswith(incomplete):
                    out.append(Candidate(word, "guest"))
    return out


# -- one command's arguments -------------------------------------------------------------

@dataclass(frozen=True)
class _Opts:
    short: str
    long_required: frozenset[str]
    long_all: frozenset[str]


def _kmod_opts(tool: str) -> _Opts | None:
    import importlib
    try:
        mod = importlib.import_module(f"kmodemu.kmod.{tool}")
    except ImportError:
        return None
    from kmodemu.kmod.getopt import REQUIRED
    longs = list(getattr(mod, "LONGOPTS", []))
    return _Opts(getattr(mod, "SHORTOPTS", ""), frozenset(o.name for o in longs if o.has_arg == REQUIRED),
                 frozenset(o.name for o in longs))


def _split(args: Sequence[str], opts: _Opts) -> tuple[set[str], list[str], bool]:
    """(option letters/names seen, operands, whether the next word is an option's argument),
    with GNU getopt's rules: options anywhere, ``--`` ends them."""
    seen: set[str] = set()
    operands: list[str] = []
    pending = False
    short = opts.short.lstrip("+")
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            operands.extend(args[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, _ = a[2:].partition("=")
            full = [n for n in opts.long_all if n.startswith(name)]
            name = name if name in opts.long_all else (full[0] if len(full) == 1 else name)
            seen.add(name)
            if name in opts.long_required and not eq:
                if i >= len(args):
                    pending = True
                i += 1
            continue
        if a.startswith("-") and len(a) > 1:
            for j, ch in enumerate(a[1:]):
                seen.add(ch)
                k = short.find(ch)
                if k >= 0 and short[k + 1:k + 2] == ":":
                    if j == len(a) - 2:  # the argument is the next word
                        if i >= len(args):
                            pending = True
                        i += 1
                    break
            continue
        operands.append(a)
    return seen, operands, pending


def _prefixed(words: Iterable[str], incomplete: str, help: str | None = None) -> list[Candidate]:
    return [Candidate(w, help) for w in sorted(set(words)) if w.startswith(incomplete)]


def _looks_like_path(word: str) -> bool:
    return "/" in word or word.startswith((".", "~")) or word.endswith(MODULE_SUFFIXES)


#: xl subcommands whose first operand is a domain (tools/libxl/xl_cmdtable.c)
XL_DOMAIN_COMMANDS = frozenset({
    "destroy", "shutdown", "reboot", "pause", "unpause", "console", "list", "domid", "domname",
    "rename", "mem-set", "mem-max", "vcpu-list", "vcpu-set", "vcpu-pin", "sched-credit",
    "tmem-list", "tmem-freeze", "tmem-thaw", "tmem-flush", "tmem-destroy", "tmem-set",
    "tmem-shared-auth", "save", "migrate", "network-list", "block-list", "sysrq", "trigger",
})


class Completer:
    """Candidates for the word after ``words`` of one console command, from ``facts``."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def complete(self, command: str, words: Sequence[str], incomplete: str) -> list[Candidate]:
        fn = getattr(self, "_" + command.replace("-", "_"), None)
        return fn(list(words), incomplete) if fn is not None else []

    # -- module names and parameters ----------------------------------------------------
    def _params(self, module: str, given: Sequence[str], incomplete: str) -> list[Candidate]:
        if "=" in incomplete:
            return []  # a value: the module's own business
        have = {g.partition("=")[0].replace("-", "_") for g in given}
        return [Candidate(f"{name}=", ptype or None) for name, ptype in self.facts.params(module)
                if name.startswith(incomplete) and name.replace("-", "_") not in have]

    def _insmod(self, words: list[str], incomplete: str) -> list[Candidate]:
        opts = _kmod_opts("insmod")
        if opts is None:
            return []
        _, operands, _ = _split(words, opts)
        if not operands:
            if _looks_like_path(incomplete):
                return [Candidate(incomplete, kind="file")]
            return _prefixed(self.facts.module_names(), incomplete, "module")
        return self._params(_modname(operands[0]), operands[1:], incomplete)

    def _modprobe(self, words: list[str], incomplete: str) -> list[Candidate]:
        opts = _kmod_opts("modprobe")
        if opts is None:
            return []
        seen, operands, pending = _split(words, opts)
        if pending:
            return [Candidate(incomplete, kind="dir" if words[-1] in ("-d", "--dirname")
                              else "file")] if words[-1] not in ("-S", "--set-version", "-w",
                                                                  "--wait") else []
        if seen & {"c", "showconfig", "show-config"}:
            return []
        if seen & {"r", "remove"}:
            return _prefixed(self.facts.loaded_modules(), incomplete, "loaded")
        if not operands or seen & {"a", "all"}:
            names = set(self.facts.module_names()) | set(self.facts.builtin_names())
            return _prefixed(names, incomplete, "module")
        return self._params(operands[0], operands[1:], incomplete)

    def _rmmod(self, words: list[str], incomplete: str) -> list[Candidate]:
        return _prefixed(self.facts.loaded_modules(), incomplete, "loaded")

    def _modinfo(self, words: list[str], incomplete: str) -> list[Candidate]:
        opts = _kmod_opts("modinfo")
        if opts is None:
            return []
        _, operands, pending = _split(words, opts)
        if pending:
            return [Candidate(incomplete, kind="dir")] if words[-1] in ("-b", "--basedir") else []
        if operands:
            return []
        if _looks_like_path(incomplete):
            return [Candidate(incomplete, kind="file")]
        names = set(self.facts.module_names()) | set(self.facts.builtin_names())
        return _prefixed(names, incomplete, "module")

    # -- pseudo files ------------------------------------------------------------------
    def _path(self, incomplete: str) -> list[Candidate]:
        if not incomplete.startswith("/"):
            incomplete = "/" + incomplete if incomplete else "/"
        directory, _, stem = incomplete.rpartition("/")
        entries = self.facts.listdir(directory or "/")
        if entries is None:
            return []
        base = directory + "/"
        return [Candidate(base + e, "directory" if e.endswith("/") else None)
                for e in sorted(entries) if e.startswith(stem)]

    def _cat(self, words: list[str], incomplete: str) -> list[Candidate]:
        return [] if incomplete.startswith("-") else self._path(incomplete)

    def _ls(self, words: list[str], incomplete: str) -> list[Candidate]:
        if [w for w in words if not w.startswith("-")]:
            return []  # ls takes one path
        return [c for c in self._path(incomplete) if c.value.endswith("/")]

    def _write(self, words: list[str], incomplete: str) -> list[Candidate]:
        return self._path(incomplete) if not words else []

    # -- xl --------------------------------------------------------------------------
    def _xl(self, words: list[str], incomplete: str) -> list[Candidate]:
        operands = [w for w in words if not w.startswith("-")]
        if not operands:
            return [Candidate(name, help) for name, help in sorted(self.facts.xl_commands().items())
                    if name.startswith(incomplete)]
        if len(operands) != 1 or operands[0] not in XL_DOMAIN_COMMANDS:
            return []
        return _prefixed(self.facts.domains(), incomplete, "domain")


def builtin_candidates(module_paths: Sequence[str], incomplete: str) -> list[Candidate]:
    """``boot --builtin A,B,…``: the plugins' module names (with this boot's ``--module-path``
    directories), after the last comma."""
    head, sep, last = incomplete.rpartition(",")
    prefix = head + sep
    done = set(head.split(",")) if sep else set()
    from kmodemu.modules.discovery import ModuleRegistry
    try:
        names = ModuleRegistry([Path(p) for p in module_paths if os.path.isdir(p)]).names()
    except (OSError, ValueError):
        names = []
    return [Candidate(prefix + n, "module") for n in names if n.startswith(last) and n not in done]


# -- kmodemu shell: the same candidates through readline -----------------------------------

def line_candidates(line: str, facts: Facts, commands: Iterable[str]) -> list[str]:
    """Completions of the last word of a console line (``kmodemu shell``'s TAB)."""
    import shlex
    try:
        words = shlex.split(line)
    except ValueError:
        return []  # inside an open quote
    if not line or line[-1].isspace():
        words.append("")
    if len(words) <= 1:
        return sorted(c for c in commands if c.startswith(words[0] if words else ""))
    got = Completer(facts).complete(words[0], words[1:-1], words[-1])
    return [c.value for c in got if c.kind == "plain"]


def install_readline(facts: Facts, commands: Iterable[str]) -> bool:
    """TAB in ``kmodemu shell`` completes as the shells do; False when there is no readline."""
    try:
        import readline
    except ImportError:  # pragma: no cover
        return False
    names = sorted(commands)
    found: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            try:
                line = readline.get_line_buffer()[:readline.get_endidx()]
                found[:] = line_candidates(line, facts, names)
            except Exception:  # a TAB never breaks the prompt
                found[:] = []
        # (Python's readline cannot be told not to append a space after a lone match)
        return found[state] if state < len(found) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    return True


# -- the shell scripts -----------------------------------------------------------------

_BASH_PLAIN = """        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
"""
_BASH_NOSPACE = _BASH_PLAIN + """            # a directory or a param= key goes on: no space after it
            [[ $value == */ || $value == *= ]] && compopt -o nospace
"""
_ZSH_PLAIN = """            if [[ "$descr" == "_" ]]; then
                completions+=("$key")
            else
                completions_with_descriptions+=("$key":"$descr")
            fi
"""
_ZSH_NOSPACE = """            if [[ "$key" == */ || "$key" == *= ]]; then
                # a directory or a param= key goes on: no space after it
                if [[ "$descr" == "_" ]]; then
                    completions_open+=("$key")
                else
                    completions_open_with_descriptions+=("$key":"$descr")
                fi
            elif [[ "$descr" == "_" ]]; then
                completions+=("$key")
            else
                completions_with_descriptions+=("$key":"$descr")
            fi
"""
_ZSH_DECL = "    local -a completions_with_descriptions\n"
_ZSH_DECL_OPEN = (_ZSH_DECL + "    local -a completions_open\n"
                  "    local -a completions_open_with_descriptions\n")
_ZSH_ADD = """    if [ -n "$completions" ]; then
        compadd -U -V unsorted -a completions
    fi
"""
_ZSH_ADD_OPEN = _ZSH_ADD + """
    if [ -n "$completions_open_with_descriptions" ]; then
        _describe -V unsorted completions_open_with_descriptions -U -S ''
    fi

    if [ -n "$completions_open" ]; then
        compadd -U -S '' -V unsorted -a completions_open
    fi
"""


def shell_classes() -> list[tuple[str, type]]:
    """click's bash and zsh completion, except that a word ending in ``/`` or ``=`` (a
    directory, a ``param=`` key) gets no space after it. fish already leaves none there.
    A click whose scripts changed shape keeps its own (completion still works, with spaces)."""
    from click import shell_completion as sc

    out: list[tuple[str, type]] = []
    bash = sc.BashComplete.source_template
    if _BASH_PLAIN in bash:
        out.append(("bash", type("KmodemuBashComplete", (sc.BashComplete,),
                                 {"source_template": bash.replace(_BASH_PLAIN, _BASH_NOSPACE)})))
    zsh = sc.ZshComplete.source_template
    if _ZSH_PLAIN in zsh and _ZSH_DECL in zsh and _ZSH_ADD in zsh:
        zsh = zsh.replace(_ZSH_PLAIN, _ZSH_NOSPACE).replace(_ZSH_DECL, _ZSH_DECL_OPEN)
        out.append(("zsh", type("KmodemuZshComplete", (sc.ZshComplete,),
                                {"source_template": zsh.replace(_ZSH_ADD, _ZSH_ADD_OPEN)})))
    return out


__all__ = ["Candidate", "Completer", "Facts", "MachineFacts", "XL_DOMAIN_COMMANDS",
           "builtin_candidates", "install_readline", "line_candidates", "machine_candidates",
           "parse_parm_lines", "shell_classes"]
