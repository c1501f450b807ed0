"""modprobe.d configuration and the kernel command line, read as libkmod 30 does.

Files from all configuration directories are merged into one list sorted by
file name (the first directory wins a name clash), ``modules.softdep`` of the
module directory is one more file in that list, and module options found on
``/proc/cmdline`` come last. Parse problems are returned as messages; the
caller prints them in libkmod's default log format.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from .names import alias_normalize

#: where kmod 30 looks when no -C is given, most important first
DEFAULT_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                "/lib/modprobe.d")
#: libkmod's own source positions of its messages (kmod 30, Debian 12 build)
SRC_PARSE_BAD = ("../libkmod/libkmod-config.c", 712, "kmod_config_parse")
SRC_PARSE_DEPRECATED = ("../libkmod/libkmod-config.c", 708, "kmod_config_parse")
SRC_FILTER_DIR = ("../libkmod/libkmod-config.c", 772, "conf_files_filter_out")
SRC_KCMDLINE = ("../libkmod/libkmod-config.c", 0, "kcmdline_parse_result")
KCMD_LINE_SIZE = 4096


@dataclass(frozen=True)
class LibMessage:
    """A message libkmod logs: level name, source position, text (with newline)."""

    level: str
    src: tuple[str, int, str]
    text: str

    def default_format(self) -> str:
        """libkmod's built-in logger, used before a tool installs its own."""
        f, line, fn = self.src
        return f"libkmod: {self.level} {f}:{line} {fn}: {self.text}"


@dataclass(frozen=True)
class SoftDep:
    name: str
    pre: tuple[str, ...]
    post: tuple[str, ...]
    #: every pre/post token in order of appearance (libkmod's shared buffer)
    tokens: tuple[tuple[str, str], ...] = ()

    def plain(self) -> str:
        """The ``--showconfig`` text, including kmod's missing space before ``post:``."""
        out = ""
        words = [w for _, w in self.tokens]
        if self.pre:
            first = self._index("pre", 0)
            last = self._index("pre", len(self.pre) - 1)
            out += "pre: " + " ".join(words[first:last + 1])
        if self.post:
            first = self._index("post", 0)
            last = self._index("post", len(self.post) - 1)
            out += "post: " + " ".join(words[first:last + 1])
        return out

    def _index(self, kind: str, nth: int) -> int:
        seen = -1
        for i, (k, _) in enumerate(self.tokens):
            if k == kind:
                seen += 1
                if seen == nth:
                    return i
        raise ValueError(nth)


@dataclass
class Config:
    """Everything modprobe.d and the kernel command line said, in file order."""

    aliases: list[tuple[str, str]] = field(default_factory=list)      # (pattern, modname)
    blacklist: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)      # (modname, options)
    install: list[tuple[str, str]] = field(default_factory=list)      # (modname, command)
    remove: list[tuple[str, str]] = field(default_factory=list)
    softdeps: list[SoftDep] = field(default_factory=list)
    messages: list[LibMessage] = field(default_factory=list)


def read_logical_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Lines joined on backslash-newline; ``\\x`` keeps only ``x``.

    Returns (line number of the last physical line, text) like libkmod's
    wrapped line reader, which counts every newline it consumed.
    """
    out: list[tuple[int, bytes]] = []
    buf = bytearray()
    linenum = 0
    n = 0
    i = 0
    size = len(data)
    while True:
        if i >= size:
            if buf or n:
                pass
            if not buf:
                break
            linenum += n + 1
            out.append((linenum, bytes(buf)))
            break
        ch = data[i]
        i += 1
        if ch == 0x0A:
            n += 1
            linenum += n
            out.append((linenum, bytes(buf)))
            buf.clear()
            n = 0
            continue
        if ch == 0x5C:  # backslash
            if i >= size:
                buf.append(0xFF)  # C reads EOF and stores (char)-1
                continue
            nxt = data[i]
            i += 1
            if nxt == 0x0A:
                n += 1
                continue
            buf.append(nxt)
            continue
        buf.append(ch)
    return out


def _tok(s: str, pos: int, delims: str = "\t ") -> tuple[str | None, int]:
    """strtok_r: skip delimiters, take a token, step over one delimiter."""
    n = len(s)
    while pos < n and s[pos] in delims:
        pos += 1
    if pos >= n:
        return None, n
    start = pos
    while pos < n and s[pos] not in delims:
        pos += 1
    tok = s[start:pos]
    return tok, (pos + 1 if pos < n else n)


def _rest(s: str, pos: int) -> str | None:
    """strtok_r with an empty delimiter set: the remainder, or None when empty."""
    return s[pos:] if pos < len(s) else None


def _parse_softdep(modname: str, line: str) -> SoftDep:
    tokens: list[tuple[str, str]] = []
    mode = None
    for word in line.split():
        if word == "pre:":
            mode = "pre"
        elif word == "post:":
            mode = "post"
        elif mode is not None:
            tokens.append((mode, word))
    pre = tuple(w for k, w in tokens if k == "pre")
    post = tuple(w for k, w in tokens if k == "post")
    return SoftDep(modname, pre, post, tuple(tokens))


def parse_config_text(cfg: Config, data: bytes, filename: str) -> None:
    """Add one file's commands to ``cfg`` (bad lines become messages)."""
    for linenum, raw in read_logical_lines(data):
        line = raw.decode("utf-8", "surrogateescape")
        if not line or line[0] == "#":
            continue
        cmd, pos = _tok(line, 0)
        if cmd is None:
            continue
        ok = True
        if cmd == "alias":
            alias, pos = _tok(line, pos)
            target, pos = _tok(line, pos)
            a = alias_normalize(alias) if alias is not None else None
            t = alias_normalize(target) if target is not None else None
            if a is None or t is None:
                ok = False
            else:
                cfg.aliases.append((a, t))
        elif cmd in ("install", "remove", "options", "softdep"):
            name, pos = _tok(line, pos)
            rest = _rest(line, pos)
            n = alias_normalize(name) if name is not None else None
            if n is None or rest is None:
                ok = False
            elif cmd == "options":
                cfg.options.append((n, rest.replace("\t", " ")))
            elif cmd == "install":
                cfg.install.append((n, rest))
            elif cmd == "remove":
                cfg.remove.append((n, rest))
            else:
                cfg.softdeps.append(_parse_softdep(n, rest))
        elif cmd == "blacklist":
            name, pos = _tok(line, pos)
            n = alias_normalize(name) if name is not None else None
            if n is None:
                ok = False
            else:
                cfg.blacklist.append(n)
        elif cmd in ("include", "config"):
            cfg.messages.append(LibMessage(
                "ERROR", SRC_PARSE_DEPRECATED,
                f"{filename}: command {cmd} is deprecated and not parsed anymore\n"))
            continue
        else:
            ok = False
        if not ok:
            cfg.messages.append(LibMessage(
                "ERROR", SRC_PARSE_BAD,
                f"{filename} line {linenum}: ignoring bad line starting with '{cmd}'\n"))


def list_config_files(paths: list[str], host_path, messages: list[LibMessage],
                      module_dir: str | None) -> list[tuple[str, str]]:
    """The (display path, host path) of every file to read, sorted by file name.

    ``host_path`` maps a path as the tool sees it to the file to open on the
    host (the machine's root directory, or the identity for -d/-C given paths).
    """
    chosen: dict[str, tuple[str, str]] = {}

    def insert(name: str, shown: str, real: str) -> None:
        if name not in chosen:
            chosen[name] = (shown, real)

    if module_dir is not None:
        insert("modules.softdep", f"{module_dir}/modules.softdep",
               host_path(f"{module_dir}/modules.softdep"))
    for path in paths:
        real = host_path(path)
        try:
            st = os.stat(real)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            insert(os.path.basename(path), path, real)
            continue
        try:
            names = os.listdir(real)
        except OSError as exc:
            messages.append(LibMessage("ERROR", ("../libkmod/libkmod-config.c", 0, "conf_files_list"),
                                       f"opendir({path}): {exc.strerror}\n"))
            continue
        for fn in names:
            if fn.startswith("."):
                continue
            if len(fn) < 6 or not (fn.endswith(".conf") or fn.endswith(".alias")):
                continue
            if os.path.isdir(os.path.join(real, fn)):
                messages.append(LibMessage(
                    "ERROR", SRC_FILTER_DIR,
                    f"Directories inside directories are not supported: {path}/{fn}\n"))
                continue
            insert(fn, f"{path}/{fn}", os.path.join(real, fn))
    return [chosen[k] for k in sorted(chosen, key=lambda s: s.encode("utf-8", "surrogateescape"))]


def parse_kcmdline(cmdline: str) -> list[tuple[str, str, str | None]]:
    """``/proc/cmdline`` → (modname, "param[=value]", value) words kmod accepts.

    A word is ``mod.param[=value]``; the first dot splits it, a second dot
    before ``=`` or a ``=`` before the dot makes it ignored. Quotes toggle a
    quoted state in which only the value may contain spaces; a quote at the
    very start of a word is moved in front of the value. Parsing does not stop
    at ``--``.
    """
    buf = cmdline[:KCMD_LINE_SIZE - 1]
    out: list[tuple[str, str, str | None]] = []
    IGNORE, MODNAME, PARAM, VALUE = range(4)
    state = MODNAME
    quoted = False
    word_start = 0          # where the current word's module name starts
    quote_start = -1        # index of a leading quote, if the word had one
    dot = eq = -1
    n = len(buf)
    i = 0
    while True:
        ch = buf[i] if i < n else "\0"
        complete = False
        if ch == '"':
            quoted = not quoted
            if quoted and state == MODNAME and i == word_start:
                quote_start = i
                word_start = i + 1
            elif state != VALUE:
                state = IGNORE
        elif ch in "\0 \n\t\v\f\r":
            if quoted and state == VALUE:
                pass
            elif quoted:
                state = IGNORE
            elif state in (VALUE, PARAM):
                complete = True
            else:
                word_start = i + 1
                state = MODNAME
                quote_start = -1
        elif ch == ".":
            if state == MODNAME:
                dot = i
                state = PARAM
            elif state == PARAM:
                state = IGNORE
        elif ch == "=":
            if state == PARAM:
                eq = i
                state = VALUE
            elif state == MODNAME:
                state = IGNORE
        if complete:
            modname = buf[word_start:dot]
            param = buf[dot + 1:i]
            value = buf[eq + 1:i] if state == VALUE else None
            if quote_start >= 0 and quote_start < word_start and value is not None:
                name = buf[dot + 1:eq]
                value = '"' + value
                param = f"{name}={value}"
            out.append((modname, param, value))
            word_start = i + 1
            state = MODNAME
            quote_start = -1
        if ch == "\0":
            break
        i += 1
    return out


def apply_kcmdline(cfg: Config, cmdline: str) -> None:
    """Options and ``modprobe.blacklist=`` from the kernel command line."""
    for modname, param, value in parse_kcmdline(cmdline):
        if modname == "modprobe" and param.startswith("blacklist="):
            for name in (value or "").split(","):
                cfg.blacklist.append(name)
            continue
        norm = alias_normalize(modname)
        if norm is None:
            cfg.messages.append(LibMessage(
                "ERROR", SRC_KCMDLINE,
                f"Ignoring bad option on kernel command line while parsing module name: '{modname}'\n"))
            norm = modname
        cfg.options.append((norm, param.replace("\t", " ")))


def load_config(paths: list[str], host_path, module_dir: str | None,
                cmdline: str | None) -> Config:
    """Read every configuration file, then the kernel command line."""
    cfg = Config()
    for shown, real in list_config_files(paths, host_path, cfg.messages, module_dir):
        try:
            with open(real, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        parse_config_text(cfg, data, shown)
    if cmdline is not None:
        apply_kcmdline(cfg, cmdline)
    return cfg
