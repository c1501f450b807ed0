"""xl's domain configuration syntax (libxlu ``libxlu_cfg_l.l``/``libxlu_cfg_y.y``, Xen 4.2).

A file is settings ``NAME = VALUE`` each ended by a newline or ``;``;
VALUE is a string (``"…"`` or ``'…'`` with C escapes), a number (kept as its
text, as libxlu does), or a list ``[v, v, …]`` that may span lines and end
with a comma. ``#`` starts a comment. The last setting wins. Syntax errors
are reported as libxlu does, bison's verbose wording included, one per line,
recovering at the next newline; any error fails the whole parse (EINVAL).

``get_long``/``get_string``/``get_list`` follow ``xlu_cfg_get_*``: a missing
key is ESRCH, a list where a single value belongs or a bad number is EINVAL
with libxlu's warning.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_][._0-9A-Za-z]*", re.ASCII)
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?", re.ASCII)
_STRING_DQ = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_STRING_SQ = re.compile(r"'(?:[^'\\\n]|\\.)*'")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}


class ConfigError(Exception):
    """A config that does not parse: ``messages`` are libxlu's lines, ``errno`` EINVAL."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        self.errno = errno.EINVAL
        super().__init__("\n".join(messages))


@dataclass
class Token:
    kind: str       # IDENT STRING NUMBER NEWLINE $end or the character itself
    text: str
    line: int
    value: str = ""


def _dequote(quoted: str) -> str:
    body = quoted[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            if m:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            if n == "x":
                m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
                if m:
                    out.append(chr(int(m.group(0), 16)))
                    i += 2 + len(m.group(0))
                    continue
            out.append(n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    toks: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c == "\n":
            toks.append(Token("NEWLINE", "\n", line))
            line += 1
            i += 1
        elif c == '"' or c == "'":
            m = (_STRING_DQ if c == '"' else _STRING_SQ).match(text, i)
            if m is None:
                toks.append(Token(c, c, line))
                i += 1
            else:
                toks.append(Token("STRING", m.group(0), line, _dequote(m.group(0))))
                i = m.end()
        elif (m := _NUMBER.match(text, i)) is not None:
            toks.append(Token("NUMBER", m.group(0), line, m.group(0)))
            i = m.end()
        elif (m := _IDENT.match(text, i)) is not None:
            toks.append(Token("IDENT", m.group(0), line, m.group(0)))
            i = m.end()
        else:
            toks.append(Token(c, c, line))
            i += 1
    toks.append(Token("$end", "", line))
    return toks


def _describe(kind: str) -> str:
    return kind if kind in ("IDENT", "STRING", "NUMBER", "NEWLINE", "$end") else f"'{kind}'"


class Setting:
    __slots__ = ("name", "values", "is_list", "line")

    def __init__(self, name: str, values: list[str], is_list: bool, line: int):
        self.name = name
        self.values = values
        self.is_list = is_list
        self.line = line


class Config:
    """A parsed configuration: settings by name, the last assignment winning."""

    def __init__(self, source: str):
        self.source = source
        self.settings: dict[str, Setting] = {}
        self.warnings: list[str] = []

    # xlu_cfg_get_* ----------------------------------------------------------
    def _atom(self, name: str) -> Setting:
        s = self.settings.get(name)
        if s is None:
            raise KeyError(name)
        if s.is_list or len(s.values) != 1:
            self.warnings.append(f"{self.source}:{s.line}: warning: parameter `{name}' is a list "
                                 "but should be a single value")
            raise ValueError(name)
        return s

    def get_string(self, name: str) -> str | None:
        try:
            return self._atom(name).values[0]
        except (KeyError, ValueError):
            return None

    def get_long(self, name: str) -> int | None:
        try:
            s = self._atom(name)
        except (KeyError, ValueError):
            return None
        text = s.values[0].strip()
        try:
            return int(text, 0) if not re.fullmatch(r"0[0-7]+", text) else int(text, 8)
        except ValueError:
            self.warnings.append(f"{self.source}:{s.line}: warning: parameter `{name}' is not a "
                                 "valid number")
            return None

    def get_list(self, name: str) -> list[str] | None:
        s = self.settings.get(name)
        if s is None:
            return None
        if not s.is_list:
            self.warnings.append(f"{self.source}:{s.line}: warning: parameter `{name}' is a "
                                 "single value but should be a list")
            return None
        return list(s.values)

    def __contains__(self, name: str) -> bool:
        return name in self.settings


class _Parser:
    def __init__(self, toks: list[Token], source: str):
        self.toks = toks
        self.pos = 0
        self.source = source
        self.errors: list[str] = []

    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def error(self, expected: list[str]) -> None:
        t = self.tok
        near = "end of file" if t.kind == "$end" else f"`{t.text}'"
        msg = f"syntax error, unexpected {_describe(t.kind)}"
        if expected and len(expected) <= 4:
            msg += ", expecting " + " or ".join(_describe(e) for e in expected)
        self.errors.append(f"{self.source}:{t.line}: config parsing error near {near}: {msg}")
        # error NEWLINE: skip to the next newline and carry on
        while self.tok.kind not in ("NEWLINE", "$end"):
            self.pos += 1
        if self.tok.kind == "NEWLINE":
            self.pos += 1

    def nlok(self) -> None:
        while self.tok.kind == "NEWLINE":
            self.pos += 1

    def parse(self, cfg: Config) -> None:
        while self.tok.kind != "$end":
            t = self.tok
            if t.kind in ("NEWLINE", ";"):
                self.pos += 1
                continue
            if t.kind != "IDENT":
                self.error(["$end", "IDENT", "NEWLINE", ";"])
                continue
            self.pos += 1
            if self.tok.kind != "=":
                self.error(["="])
                continue
            self.pos += 1
            value = self.value()
            if value is None:
                continue
            values, is_list = value
            if self.tok.kind not in ("NEWLINE", ";"):
                self.error(["NEWLINE", ";"])
                continue
            cfg.settings.pop(t.text, None)
            cfg.settings[t.text] = Setting(t.text, values, is_list, t.line)
            self.pos += 1

    def value(self) -> tuple[list[str], bool] | None:
        t = self.tok
        if t.kind in ("STRING", "NUMBER"):
            self.pos += 1
            return [t.value], False
        if t.kind != "[":
            self.error(["STRING", "NUMBER", "["])
            return None
        self.pos += 1
        self.nlok()
        items: list[str] = []
        while True:
            t = self.tok
            if t.kind == "]":
                self.pos += 1
                return items, True
            if t.kind not in ("STRING", "NUMBER"):
                self.error(["STRING", "NUMBER", "NEWLINE", "]"])
                return None
            items.append(t.value)
            self.pos += 1
            self.nlok()
            t = self.tok
            if t.kind == ",":
                self.pos += 1
                self.nlok()
                continue
            if t.kind == "]":
                continue
            self.error(["NEWLINE", "]", ","])
            return None


def parse(text: str, source: str = "config") -> Config:
    """``xlu_cfg_readdata``: a Config, or ConfigError with libxlu's messages."""
    cfg = Config(source)
    p = _Parser(tokenize(text), source)
    p.parse(cfg)
    if p.errors:
        raise ConfigError(p.errors)
    return cfg
