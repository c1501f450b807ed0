"""glibc ``fnmatch(pattern, string, 0)`` semantics as a compiled regex.

Python's :mod:`fnmatch` differs from glibc in details kmod users can hit:
``[^...]`` negates in glibc, a backslash escapes the next character, and an
unterminated ``[`` is an ordinary character. Config aliases, install/remove
and softdep names all match with these rules.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "\\x21-\\x7e", "lower": "a-z", "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~", "space": " \\t\\n\\r\\f\\v", "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}

WILDCARDS = frozenset("*?[")


def _bracket(pat: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression starting after ``[`` at ``i``."""
    n = len(pat)
    j = i
    negate = False
    if j < n and pat[j] in "!^":
        negate = True
        j += 1
    parts: list[str] = []
    first = True
    while j < n:
        ch = pat[j]
        if ch == "]" and not first:
            body = "".join(parts)
            return ("[^" if negate else "[") + body + "]", j + 1
        first = False
        if ch == "[" and j + 1 < n and pat[j + 1] == ":":
            end = pat.find(":]", j + 2)
            if end >= 0 and pat[j + 2:end] in _CLASSES:
                parts.append(_CLASSES[pat[j + 2:end]])
                j = end + 2
                continue
        if ch == "\\" and j + 1 < n:
            j += 1
            ch = pat[j]
        if j + 2 < n and pat[j + 1] == "-" and pat[j + 2] != "]":
            hi = pat[j + 2]
            if hi == "\\" and j + 3 < n:
                hi = pat[j + 3]
                j += 1
            parts.append(re.escape(ch) + "-" + re.escape(hi))
            j += 3
            continue
        parts.append(re.escape(ch))
        j += 1
    return None


@lru_cache(maxsize=4096)
def compile_pattern(pat: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pat)
    while i < n:
        ch = pat[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            br = _bracket(pat, i + 1)
            if br is None:
                out.append(re.escape("["))
            else:
                out.append(br[0])
                i = br[1]
                continue
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pat[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def fnmatch(pattern: str, string: str) -> bool:
    """True when ``string`` matches the shell ``pattern`` as glibc would."""
    if not (WILDCARDS & set(pattern)) and "\\" not in pattern:
        return pattern == string
    return compile_pattern(pattern).fullmatch(string) is not None


def is_wildcard(pattern: str) -> bool:
    return bool(WILDCARDS & set(pattern))
