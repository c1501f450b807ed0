"""Run command lines on a machine the way ``kmodemu shell`` and scenarios both do.

A command line is a console command (the same as ``kmodemu <command>``), plus a
little shell so transcripts read like real sessions:

* ``cmd | grep PATTERN | head -n 3``: filters over the command's stdout
  (``grep`` [-v -i -E -F -c -e], ``head``/``tail`` [-n N], ``wc -l``, ``sort``);
* ``echo TEXT > PATH`` / ``>>``, and ``cat > PATH <<EOF`` … ``EOF``: write a
  file. Paths under /proc and /sys go to the kernel (as the ``write`` command);
  any other path is a file on the machine's disk (``/etc/modprobe.d/…``).

stdout and stderr are captured apart but in the order they were written.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kmodemu.scenario.lines import ERR, OUT, RC, Line
from kmodemu.trust import UntrustedPath, confine

PSEUDO_ROOTS = ("/proc/", "/sys/")


class CommandSyntaxError(ValueError):
    """A command line the session cannot run (bad quoting, unsupported redirection)."""


@dataclass
class Outcome:
    """What one command line did: its output lines (in order) and its exit status."""

    lines: list[Line]
    rc: int

    @property
    def stdout(self) -> str:
        return _join(line for line in self.lines if line.stream == OUT)

    @property
    def stderr(self) -> str:
        return _join(line for line in self.lines if line.stream == ERR)

    def transcript(self) -> list[Line]:
        """The output as a scenario records it: the lines, then ``[N]`` if N is not 0."""
        return self.lines + ([Line(RC, str(self.rc))] if self.rc else [])


def _join(lines) -> str:
    return "".join(line.text + ("\n" if line.eol else "") for line in lines)


class _Capture:
    """Collects writes to two streams as ordered lines."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self._partial = {OUT: "", ERR: ""}

    def feed(self, stream: str, text: str) -> None:
        parts = (self._partial[stream] + text).split("\n")
        self._partial[stream] = parts.pop()
        self.lines.extend(Line(stream, p) for p in parts)

    def finish(self) -> list[Line]:
        for stream in (OUT, ERR):
            if self._partial[stream]:
                self.lines.append(Line(stream, self._partial[stream], eol=False))
                self._partial[stream] = ""
        return self.lines


class _Stream(io.TextIOBase):
    """A text stream that hands what it gets to a ``_Capture`` under a tag."""

    def __init__(self, capture: _Capture, stream: str):
        self._capture, self._stream = capture, stream

    # typeshed declares TextIOBase.encoding a plain attribute; CPython's is a read-only
    # descriptor, so a property is the way to give it a value.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # text only: a command's bytes were decoded by execute_command's stream already
        self._capture.feed(self._stream, text)
        return len(text)


@dataclass
class Command:
    """A parsed command line."""

    argv: list[str]
    filters: list[list[str]] = field(default_factory=list)
    redirect: tuple[str, str] | None = None     # (">" or ">>", path)
    heredoc: str | None = None                  # the terminating word


def parse_command(line: str) -> Command:
    """Split a command line into the console command, its filters and redirection."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|<>")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as e:
        raise CommandSyntaxError(str(e)) from None
    segments: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            segments.append([])
        else:
            segments[-1].append(tok)
    if any(not s for s in segments):
        raise CommandSyntaxError("empty command in pipeline")
    first, cmd = segments[0], Command([])
    i = 0
    while i < len(first):
        tok = first[i]
        if tok in (">", ">>", "<<", "<<-"):
            if i + 1 == len(first):
                raise CommandSyntaxError(f"syntax error near '{tok}'")
            if tok.startswith("<<"):
                cmd.heredoc = first[i + 1]
            else:
                cmd.redirect = (tok, first[i + 1])
            i += 2
            continue
        if set(tok) <= set("<>|"):
            raise CommandSyntaxError(f"unsupported redirection '{tok}'")
        cmd.argv.append(tok)
        i += 1
    cmd.filters = segments[1:]
    if (cmd.redirect or cmd.heredoc) and (not cmd.argv or cmd.argv[0] not in ("echo", "cat")):
        raise CommandSyntaxError("redirection works with 'echo TEXT > PATH' and 'cat > PATH <<EOF' only")
    if cmd.heredoc and not cmd.redirect:
        raise CommandSyntaxError("a here-document needs 'cat > PATH'")
    for f in cmd.filters:
        if f[0] not in FILTERS:
            raise CommandSyntaxError(f"'{f[0]}' cannot follow '|' (filters: {', '.join(sorted(FILTERS))})")
    return cmd


class Session:
    """Runs command lines on one machine and reports what they printed."""

    def __init__(self, machine):
        self.machine = machine

    def run(self, line: str, stdin: str | None = None) -> Outcome:
        """Run a command line; ``stdin`` is the body of its here-document, if any.

        Internal errors of the emulator propagate: a caller decides whether
        they end a scenario or just a shell command.
        """
        try:
            cmd = parse_command(line)
        except CommandSyntaxError as e:
            return Outcome([Line(ERR, f"kmodemu: {e}")], 2)
        if not cmd.argv:
            return Outcome([], 0)
        capture = _Capture()
        out, err = _Stream(capture, OUT), _Stream(capture, ERR)
        if cmd.argv[0] == "echo" or (cmd.argv[0] == "cat" and cmd.redirect):
            rc = self._shell_write(cmd, stdin, out, err)
        else:
            rc = self.machine.run(cmd.argv, stdout=out, stderr=err)
        lines = capture.finish()
        if cmd.filters:
            piped = [x for x in lines if x.stream == OUT]
            lines = [x for x in lines if x.stream != OUT]
            for f in cmd.filters:
                piped, rc = _apply_filter(f, piped, lines)
            lines += piped
        return Outcome(lines, rc)

    # -- echo and cat > FILE ----------------------------------------------------
    def _shell_write(self, cmd: Command, stdin: str | None, out, err) -> int:
        if cmd.argv[0] == "echo":
            args = cmd.argv[1:]
            newline = True
            if args[:1] == ["-n"]:
                args, newline = args[1:], False
            text = " ".join(args) + ("\n" if newline else "")
        else:
            if len(cmd.argv) > 1:
                err.write("kmodemu: cat with a redirection reads its here-document only\n")
                return 2
            text = stdin or ""
        if cmd.redirect is None:
            out.write(text)
            return 0
        op, path = cmd.redirect
        if not path.startswith("/"):
            err.write(f"kmodemu: {path}: use an absolute path on the machine\n")
            return 1
        if path.startswith(PSEUDO_ROOTS):
            # the console's write adds the newline back, as echo does
            return self.machine.run(["write", path, text[:-1] if text.endswith("\n") else text],
                                    stdout=out, stderr=err)
        # the machine's disk only: ``..`` stops at its /, and a symlink out of it is refused
        target = Path(self.machine.root) / posixpath.normpath(path).lstrip("/")
        try:
            confine(target, Path(self.machine.root))
        except UntrustedPath:
            err.write(f"kmodemu: {path}: {os.strerror(errno.EACCES)}\n")
            return 1
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a" if op == ">>" else "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            err.write(f"kmodemu: {path}: {os.strerror(e.errno or 5)}\n")
            return 1
        return 0


# -- filters --------------------------------------------------------------------
Filter = Callable[[list[str], list[Line]], "tuple[list[Line], int]"]


def _apply_filter(argv: list[str], lines: list[Line], errors: list[Line]) -> tuple[list[Line], int]:
    try:
        return FILTERS[argv[0]](argv[1:], lines)
    except _FilterUsage as e:
        errors.append(Line(ERR, f"{argv[0]}: {e}"))
        return [], 2


class _FilterUsage(Exception):
    pass


def _count_arg(args: list[str], default: int = 10) -> int:
    n = default
    it = iter(args)
    for a in it:
        if a == "-n":
            value = next(it, None)
            if value is None:
                raise _FilterUsage("option requires an argument -- 'n'")
            a = value
        elif a.startswith("-n"):
            a = a[2:]
        elif re.fullmatch(r"-\d+", a):
            a = a[1:]
        else:
            raise _FilterUsage(f"unsupported argument '{a}'")
        try:
            n = int(a)
        except ValueError:
            raise _FilterUsage(f"invalid number of lines: '{a}'") from None
    return n


def _head(args, lines):
    return lines[:_count_arg(args)], 0


def _tail(args, lines):
    n = _count_arg(args)
    return (lines[-n:] if n else []), 0


def _wc(args, lines):
    if args != ["-l"]:
        raise _FilterUsage("only 'wc -l' is supported")
    return [Line(OUT, str(len(lines)))], 0


def _sort(args, lines):
    if args:
        raise _FilterUsage("sort takes no options here")
    return sorted(lines, key=lambda x: x.text), 0


def _grep(args, lines):
    invert = icase = count = fixed = extended = False
    patterns: list[str] = []
    it = iter(args)
    for a in it:
        if a == "-e":
            p = next(it, None)
            if p is None:
                raise _FilterUsage("option requires an argument -- 'e'")
            patterns.append(p)
        elif a.startswith("-") and len(a) > 1 and not patterns:
            for flag in a[1:]:
                if flag not in "viEFc":
                    raise _FilterUsage(f"unsupported option -- '{flag}'")
                invert |= flag == "v"
                icase |= flag == "i"
                count |= flag == "c"
                fixed |= flag == "F"
                extended |= flag == "E"
        elif not patterns:
            patterns.append(a)
        else:
            raise _FilterUsage("reads the piped output only (no file arguments)")
    if not patterns:
        raise _FilterUsage("no pattern")
    flags = re.IGNORECASE if icase else 0
    try:
        rxs = [re.compile(re.escape(p) if fixed else p if extended else _bre_to_python(p), flags) for p in patterns]
    except re.error as e:
        raise _FilterUsage(f"bad pattern: {e}") from None
    kept = [x for x in lines if any(r.search(x.text) for r in rxs) != invert]
    rc = 0 if kept else 1
    return ([Line(OUT, str(len(kept)))] if count else kept), rc


def _bre_to_python(p: str) -> str:
    """A POSIX basic regular expression in Python's syntax: ``\\(`` groups, ``(`` is literal."""
    out, i = [], 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            nxt = p[i + 1]
            out.append(nxt if nxt in "(){}|+?" else c + nxt)
            i += 2
            continue
        out.append("\\" + c if c in "(){}|+?" else c)
        i += 1
    return "".join(out)


FILTERS: dict[str, Filter] = {"grep": _grep, "head": _head, "tail": _tail, "wc": _wc, "sort": _sort}
