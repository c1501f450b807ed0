"""Output lines and the patterns that match them: the one place that knows how a
line of console output is written in a scenario file and read back.

An output line is stdout text, stderr text (written ``2> text``) or the exit
status (written ``[N]``). A pattern is such a line that may instead carry a
``(re)`` or ``(glob)`` marker, or be ``...`` (any number of lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OUT, ERR, RC = "out", "err", "rc"
ELLIPSIS = "..."
NO_EOL = " (no-eol)"
MARKERS = (" (re)", " (glob)", " (esc)")
_RC_LINE = re.compile(r"\[(\d+)\]")
#: stdout text that would read as something else unless escaped with a backslash
_SPECIAL_START = ("\\", "$", "#", "2>")


class PatternError(ValueError):
    """A pattern line that cannot be used (a bad regular expression)."""


@dataclass(frozen=True)
class Line:
    """One line a command produced."""

    stream: str          # OUT, ERR or RC
    text: str
    eol: bool = True

    def render(self) -> str:
        """The line as a scenario file writes it (escaped so that it reads back as itself)."""
        if self.stream == RC:
            return f"[{self.text}]"
        text = self.text
        if any(not (c.isprintable() or c == "\t") for c in text) or text != text.rstrip(" \t"):
            body = _escape(text) + " (esc)"
        elif text.endswith(MARKERS + (NO_EOL,)):
            body = re.escape(text) + " (re)"
        elif text.startswith("\\") or (
                self.stream == OUT and (text.startswith(_SPECIAL_START) or text == ELLIPSIS
                                        or _RC_LINE.fullmatch(text))):
            body = "\\" + text
        else:
            body = text
        if self.stream == ERR:
            body = f"2> {body}" if body else "2>"
        return body + ("" if self.eol else NO_EOL)


def _escape(text: str) -> str:
    """Python escapes for control characters, and for trailing blanks an editor would strip."""
    stripped = text.rstrip(" \t")
    tail = text[len(stripped):].replace(" ", "\\x20").replace("\t", "\\t")
    return stripped.encode("unicode_escape").decode("ascii") + tail


def render_block(lines: list[Line]) -> list[str]:
    """Render a command's output; trailing empty lines are escaped (a bare one ends a block)."""
    return finish_block([line.render() for line in lines])


def finish_block(rendered: list[str]) -> list[str]:
    out = list(rendered)
    i = len(out)
    while i > 0 and out[i - 1] == "":
        out[i - 1] = "\\"
        i -= 1
    return out


@dataclass(frozen=True)
class Pattern:
    """One expected line as written in the file."""

    raw: str
    kind: str            # "literal", "re", "glob", "ellipsis"
    stream: str = OUT
    body: str = ""
    eol: bool = True
    regex: re.Pattern | None = None

    @classmethod
    def parse(cls, raw: str) -> "Pattern":
        if raw == ELLIPSIS:
            return cls(raw, "ellipsis")
        line, eol = raw, True
        if line.endswith(NO_EOL):
            line, eol = line[: -len(NO_EOL)], False
        m = _RC_LINE.fullmatch(line)
        if m:
            return cls(raw, "literal", RC, m.group(1), eol)
        stream = OUT
        if line == "2>" or line.startswith("2> "):
            stream, line = ERR, line[3:]
        if line.endswith(" (esc)"):
            try:
                text = line[:-6].encode("ascii", "backslashreplace").decode("unicode_escape")
            except UnicodeDecodeError as e:
                raise PatternError(f"bad (esc) line: {e}") from None
            return cls(raw, "literal", stream, text, eol)
        if line.endswith(" (re)"):
            body = line[:-5]
            try:
                rx = re.compile(body)
            except re.error as e:
                raise PatternError(f"bad regular expression {body!r}: {e}") from None
            return cls(raw, "re", stream, body, eol, rx)
        if line.endswith(" (glob)"):
            body = line[:-7]
            return cls(raw, "glob", stream, body, eol, re.compile(_glob_to_re(body)))
        if line.startswith("\\"):
            return cls(raw, "literal", stream, line[1:], eol)
        return cls(raw, "literal", stream, line, eol)

    def matches(self, line: Line) -> bool:
        if self.kind == "ellipsis" or self.stream != line.stream or self.eol != line.eol:
            return self.kind == "ellipsis"
        if self.kind == "literal":
            return self.body == line.text
        assert self.regex is not None, "glob and regex lines are parsed with their pattern"
        return self.regex.fullmatch(line.text) is not None


def _glob_to_re(glob: str) -> str:
    """``*`` and ``?`` as in the shell; a backslash makes the next character literal."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return "".join(out)


__all__ = ["Line", "Pattern", "PatternError", "render_block", "finish_block", "OUT", "ERR", "RC",
           "ELLIPSIS"]
