"""An emulated ``/bin/sh -c`` for modprobe.d ``install``/``remove`` commands.

kmod hands these lines to ``system(3)``. A line comes from a scenario or a
machine image someone else wrote, so by default it must not reach the host:
this shell knows only the machine's own commands (the kmod tools, ``echo``,
``true``, ``false``, ``:``, ``exit``) and answers anything else as dash
answers an unknown command (``sh: 1: NAME: not found``, exit 127). Nested kmod
tools run inline, in order, on the emulated machine.

Supported syntax: words with ``'…'``, ``"…"`` and ``\\`` quoting; ``$VAR``,
``${VAR}``, ``$?``, ``$$``; ``$(…)`` and backquote substitution (run in this
shell); ``VAR=value`` prefixes; ``;``, newline, ``&&``, ``||``, ``|``
(the left side's output is discarded, as no emulated command reads stdin) and
a trailing ``&`` (run in the foreground); redirections to ``/dev/null`` and
``2>&1``/``>&2``. Compound commands (``if``, ``for``, ``( … )``, …) are not
emulated: their keyword is answered as an unknown command.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, TextIO

#: argv, env, stdout, stderr -> status; runs a kmod tool on the machine
ToolRunner = Callable[[str, list[str], dict[str, str], TextIO, TextIO], int]

KMOD_TOOLS = ("modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod")
#: directories where the machine's commands live, as /sbin/modprobe is written in modprobe.d
BIN_DIRS = ("/sbin/", "/bin/", "/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/")
#: nested shells before "Cannot fork" (an install line that modprobes itself is a fork bomb)
MAX_DEPTH = 16
#: how much output one command line may produce before it is cut (a loop of echo is cheap)
MAX_OUTPUT = 1 << 20
_OPS = ("&&", "||", ";", "\n", "|", "&")
_KEYWORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
             "case", "esac", "{", "}", "!", "(", ")", "function"}


class ShSyntaxError(Exception):
    """What dash prints for a line it cannot parse."""


@dataclass
class Word:
    parts: list[tuple[str, str]]  # (kind, text): lit | var | cmd


@dataclass
class Simple:
    words: list[Word] = field(default_factory=list)
    redirs: list[tuple[str, Word | None]] = field(default_factory=list)
    line: int = 1


_NAME_CH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


class _Parser:
    """dash's tokenizer and list grammar, for simple commands only."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.line = 1

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def skip_blanks(self) -> None:
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch in " \t":
                self.i += 1
            elif ch == "\\" and self.peek(2) == "\\\n":
                self.i += 2
                self.line += 1
            elif ch == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _dollar(self, parts: list[tuple[str, str]], quoted: bool) -> None:
        q = "q" if quoted else ""
        s = self.s
        self.i += 1  # the $
        ch = self.peek()
        if ch == "{":
            end = s.find("}", self.i)
            if end < 0:
                raise ShSyntaxError("Syntax error: Missing '}'")
            parts.append((q + "var", s[self.i + 1:end]))
            self.i = end + 1
        elif ch == "(":
            parts.append((q + "cmd", self._balanced(self.i + 1)))
        elif ch in ("?", "$", "#", "0", "@", "*", "!", "-") and ch:
            parts.append((q + "var", ch))
            self.i += 1
        elif ch and ch in _NAME_CH and not ch.isdigit():
            j = self.i
            while j < len(s) and s[j] in _NAME_CH:
                j += 1
            parts.append((q + "var", s[self.i:j]))
            self.i = j
        elif ch.isdigit() and ch:
            parts.append((q + "var", ch))
            self.i += 1
        else:
            parts.append(("lit", "$"))

    def _balanced(self, start: int) -> str:
        depth, j, quote = 1, start, ""
        s = self.s
        while j < len(s):
            c = s[j]
            if quote:
                if c == quote:
                    quote = ""
                elif c == "\\" and quote == '"':
                    j += 1
            elif c in "'\"":
                quote = c
            elif c == "\\":
                j += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    self.i = j + 1
                    return s[start:j]
            j += 1
        raise ShSyntaxError("Syntax error: end of file unexpected (expecting \")\")")

    def word(self) -> Word | None:
        s = self.s
        parts: list[tuple[str, str]] = []
        started = False
        while self.i < len(s):
            ch = s[self.i]
            if ch in " \t\n;&|<>()":
                break
            started = True
            if ch == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ShSyntaxError("Syntax error: Unterminated quoted string")
                parts.append(("lit", s[self.i + 1:end]))
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
            elif ch == '"':
                self.i += 1
                buf: list[str] = []
                while True:
                    if self.i >= len(s):
                        raise ShSyntaxError("Syntax error: Unterminated quoted string")
                    c = s[self.i]
                    if c == '"':
                        self.i += 1
                        break
                    if c == "\\" and self.peek(2)[1:] in ('"', "\\", "$", "`", "\n"):
                        if self.peek(2)[1:] != "\n":
                            buf.append(self.s[self.i + 1])
                        self.i += 2
                    elif c == "$":
                        parts.append(("lit", "".join(buf)))
                        buf = []
                        self._dollar(parts, True)
                    elif c == "`":
                        parts.append(("lit", "".join(buf)))
                        buf = []
                        parts.append(("qcmd", self._backquote()))
                    else:
                        self.line += c == "\n"
                        buf.append(c)
                        self.i += 1
                parts.append(("lit", "".join(buf)))
            elif ch == "\\":
                nxt = self.peek(2)[1:]
                if nxt == "\n":
                    self.line += 1
                elif nxt:
                    parts.append(("lit", nxt))
                self.i += 2
            elif ch == "$":
                self._dollar(parts, False)
            elif ch == "`":
                parts.append(("cmd", self._backquote()))
            else:
                parts.append(("lit", ch))
                self.i += 1
        merged: list[tuple[str, str]] = []
        run: list[str] = []
        for kind, text in parts:
            if kind == "lit":
                run.append(text)
                continue
            if run:
                merged.append(("lit", "".join(run)))
                run = []
            merged.append((kind, text))
        if run:
            merged.append(("lit", "".join(run)))
        return Word(merged) if started else None

    def _backquote(self) -> str:
        end = self.s.find("`", self.i + 1)
        if end < 0:
            raise ShSyntaxError('Syntax error: EOF in backquote substitution')
        text = self.s[self.i + 1:end]
        self.i = end + 1
        return text

    def operator(self) -> str | None:
        for op in _OPS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                if op == "\n":
                    self.line += 1
                return op
        return None

    def simple(self) -> Simple:
        cmd = Simple(line=self.line)
        while True:
            self.skip_blanks()
            if self.i >= len(self.s):
                return cmd
            ch = self.s[self.i]
            if ch in "()":
                # a subshell or function body: not emulated; answered like an unknown command
                raise ShSyntaxError(f"Syntax error: \"{ch}\" unexpected")
            m = self._redir_op()
            if m is not None:
                if m in ("2>&1", ">&2", "1>&2"):
                    cmd.redirs.append((m, None))
                    continue
                self.skip_blanks()
                target = self.word()
                if target is None:
                    raise ShSyntaxError("Syntax error: newline unexpected")
                cmd.redirs.append((m, target))
                continue
            if ch in ";&|\n":
                return cmd
            w = self.word()
            if w is None:
                return cmd
            cmd.words.append(w)

    def _redir_op(self) -> str | None:
        for op in ("2>&1", "1>&2", ">&2", "2>>", ">>", "2>", "1>", ">", "<"):
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return op
        return None

    def parse(self) -> list[tuple[str, Simple]]:
        """A flat list of (connector, command); the connector joins it to the one before."""
        out: list[tuple[str, Simple]] = []
        conn = ";"
        while True:
            self.skip_blanks()
            if self.i >= len(self.s):
                if conn in ("&&", "||", "|"):
                    raise ShSyntaxError("Syntax error: end of file unexpected")
                return out
            cmd = self.simple()
            self.skip_blanks()
            op = self.operator()
            if not cmd.words and not cmd.redirs:
                if op in ("&&", "||", "|", ";", "&") and (op != ";" or conn != "\n"):
                    raise ShSyntaxError(f'Syntax error: "{op}" unexpected')
                if op is None and self.i < len(self.s):
                    raise ShSyntaxError(f'Syntax error: "{self.s[self.i]}" unexpected')
            else:
                out.append((conn, cmd))
            if op is None:
                if self.i < len(self.s):
                    raise ShSyntaxError(f'Syntax error: "{self.s[self.i]}" unexpected')
                return out
            conn = op


class _Limited(io.StringIO):
    """Output capped at MAX_OUTPUT characters, so a command line cannot fill host memory."""

    def write(self, s: str) -> int:
        room = MAX_OUTPUT - self.tell()
        return super().write(s[:max(room, 0)])


class Shell:
    """One ``sh -c LINE`` run: variables, last status, and the machine's commands."""

    def __init__(self, env: dict[str, str], run_tool: ToolRunner, stdout: TextIO,
                 stderr: TextIO, depth: int = 0):
        self.env = dict(env)
        self.run_tool = run_tool
        self.stdout = stdout
        self.stderr = stderr
        self.depth = depth
        self.status = 0
        self.exited: int | None = None

    # -- expansion ------------------------------------------------------------
    def _var(self, name: str) -> str:
        if name == "?":
            return str(self.status)
        if name in ("$", "!"):
            return "1"
        if name in ("#", "@", "*", "-"):
            return "0" if name == "#" else ""
        if name == "0":
            return "sh"
        name = name.split(":", 1)[0].split("-", 1)[0]
        return self.env.get(name, "")

    def expand(self, w: Word) -> list[str]:
        """One word to fields: unquoted expansions split on blanks, as sh's IFS does."""
        fields: list[str] = []
        cur: list[str] = []
        have = False
        for kind, text in w.parts:
            if kind == "lit":
                cur.append(text)
                have = True
                continue
            value = self._var(text) if kind.endswith("var") else self.substitute(text)
            if kind.startswith("q"):  # inside "…": one field, nothing split
                cur.append(value)
                have = True
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[:1].isspace() and (cur or have):
                fields.append("".join(cur))
                cur = []
            cur.append(pieces[0])
            for p in pieces[1:]:
                fields.append("".join(cur))
                cur = [p]
            have = True
            if value[-1:].isspace():
                fields.append("".join(cur))
                cur, have = [], False
        if cur or have:
            fields.append("".join(cur))
        return fields

    def substitute(self, text: str) -> str:
        out = _Limited()
        sub = Shell(self.env, self.run_tool, out, self.stderr, self.depth)
        sub.run(text)
        return out.getvalue().rstrip("\n")

    # -- running ----------------------------------------------------------------
    def run(self, text: str) -> int:
        try:
            items = _Parser(text).parse()
        except ShSyntaxError as e:
            self.stderr.write(f"sh: 1: {e}\n")
            self.status = 2
            return 2
        skip = False
        for n, (conn, cmd) in enumerate(items):
            if self.exited is not None:
                break
            if conn == "&&":
                skip = self.status != 0
            elif conn == "||":
                skip = self.status == 0
            elif conn != "|":  # a pipeline is skipped or run as a whole
                skip = False
            if skip:
                continue
            piped = n + 1 < len(items) and items[n + 1][0] == "|"
            self.status = self.simple(cmd, discard=piped)
        return self.exited if self.exited is not None else self.status

    def simple(self, cmd: Simple, discard: bool) -> int:
        out, err = self.stdout, self.stderr
        if discard:  # the left of a pipe: nothing here reads stdin, so its output goes nowhere
            out = io.StringIO()
        for op, target in cmd.redirs:
            if op in ("2>&1",):
                err = out
                continue
            if op in (">&2", "1>&2"):
                out = err
                continue
            assert target is not None
            path = " ".join(self.expand(target))
            if path != "/dev/null":
                verb = "open" if op == "<" else "create"
                self.stderr.write(f"sh: {cmd.line}: cannot {verb} {path}: Permission denied\n")
                return 2
            if op in (">", ">>", "1>"):
                out = io.StringIO()
            elif op in ("2>", "2>>"):
                err = io.StringIO()
        argv: list[str] = []
        assigns: dict[str, str] = {}
        for w in cmd.words:
            if not argv and w.parts and w.parts[0][0] == "lit" and "=" in w.parts[0][1]:
                name = w.parts[0][1].split("=", 1)[0]
                if name and all(c in _NAME_CH for c in name) and not name[0].isdigit():
                    value = "".join(self.expand(Word([("lit", w.parts[0][1][len(name) + 1:])]
                                                     + w.parts[1:])) or [""])
                    assigns[name] = value
                    continue
            argv.extend(self.expand(w))
        if not argv:
            self.env.update(assigns)
            return 0
        env = dict(self.env)
        env.update(assigns)
        return self.command(argv, env, out, err, cmd.line)

    def command(self, argv: list[str], env: dict[str, str], out: TextIO, err: TextIO,
                line: int) -> int:
        name = argv[0]
        base = name
        for d in BIN_DIRS:
            if name.startswith(d) and "/" not in name[len(d):]:
                base = name[len(d):]
                break
        if name in _KEYWORDS:  # a compound command: not emulated, and the rest of it with it
            err.write(f"sh: {line}: {name}: not found\n")
            self.exited = 127
            return 127
        if base in (":", "true"):
            return 0
        if base == "false":
            return 1
        if name == "exit":
            try:
                self.exited = int(argv[1]) & 0xFF if len(argv) > 1 else self.status
            except ValueError:
                err.write(f"sh: {line}: exit: Illegal number: {argv[1]}\n")
                self.exited = 2
            return self.exited
        if base == "echo":
            out.write(_echo(argv[1:]))
            return 0
        if base in KMOD_TOOLS:
            if self.depth + 1 >= MAX_DEPTH:
                err.write(f"sh: {line}: Cannot fork\n")
                return 2
            return self.run_tool(base, [base, *argv[1:]], env, out, err)
        err.write(f"sh: {line}: {name}: not found\n")
        return 127


def _echo(args: list[str]) -> str:
    """dash's echo: ``-n`` only, backslash escapes always interpreted."""
    newline = True
    if args[:1] == ["-n"]:
        newline = False
        args = args[1:]
    text = " ".join(args)
    out: list[str] = []
    i = 0
    esc = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "c":
                return "".join(out)
            if n in esc:
                out.append(esc[n])
                i += 2
                continue
            if n == "0":
                j = i + 2
                while j < len(text) and j < i + 5 and text[j] in "01234567":
                    j += 1
                out.append(chr(int(text[i + 2:j] or "0", 8) & 0xFF))
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out) + ("\n" if newline else "")


#: what the emulated shell sees of its environment: the machine's, never the host user's
MACHINE_ENV = {"HOME": "/", "TERM": "linux", "PATH": "/sbin:/usr/sbin:/bin:/usr/bin"}
PASSED_ENV = ("MODPROBE_OPTIONS", "MODPROBE_MODULE")


def machine_env(env: dict[str, str]) -> dict[str, str]:
    """The variables an install line may expand: kmod's own, over the machine defaults."""
    out = dict(MACHINE_ENV)
    out.update({k: env[k] for k in PASSED_ENV if k in env})
    return out


def run(text: str, env: dict[str, str], run_tool: ToolRunner, depth: int = 0) -> tuple[int, str, str]:
    """``sh -c text`` on the machine: (status, stdout, stderr)."""
    out, err = _Limited(), _Limited()
    status = Shell(env, run_tool, out, err, depth).run(text)
    return status, out.getvalue(), err.getvalue()
