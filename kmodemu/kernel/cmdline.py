"""lib/cmdline.c: splitting a command line into words and sizes.

``next_arg`` is the tokenizer the boot command line and module argument
strings share; ``memparse`` reads sizes such as ``mem=512M``. What the
kernel does with the words lives elsewhere: kernel/params.c in
``kmodemu.kernel.params`` (parse_args, parameq), init/main.c in
``kmodemu.kernel.init_main``. See docs/params-and-cmdline.md.
"""

from __future__ import annotations

import re

# The kernel's isspace(): the six ASCII blanks plus 0xa0, which lib/ctype.c
# classifies as a space (Latin-1 no-break space).
SPACES = frozenset(" \t\n\v\f\r\xa0")


def skip_spaces(s: str, pos: int = 0) -> int:
    """Index of the first non-space at or after ``pos``."""
    n = len(s)
    while pos < n and s[pos] in SPACES:
        pos += 1
    return pos


def next_arg(s: str, pos: int = 0) -> tuple[str, str | None, int]:
    """Split one word off ``s`` starting at ``pos`` (leading blanks already skipped).

    Returns ``(name, value, next_pos)``: value is None when the word has no
    ``=`` past its first character (absent differs from empty), and next_pos
    points past the blanks that follow the word.
    """
    quoted = in_quote = False
    if pos < len(s) and s[pos] == '"':
        pos += 1
        quoted = in_quote = True
    start = pos
    end = pos
    equals = 0  # offset of the first '='; 0 doubles as "none"
    n = len(s)
    while end < n:
        c = s[end]
        if c in SPACES and not in_quote:
            break
        if equals == 0 and c == "=":
            equals = end - start
        if c == '"':
            in_quote = not in_quote
        end += 1
    word = s[start:end]
    # The C code cuts the word's last character when it is a quote closing
    # a quoted value or a quoted word; a cut value never ends before it starts.
    if equals:
        name = word[:equals]
        value_start = equals + 1
        value_quoted = word[value_start:value_start + 1] == '"'
        if value_quoted:
            value_start += 1
        value_end = len(word)
        if (value_quoted or quoted) and word.endswith('"'):
            value_end -= 1
        value: str | None = word[value_start:max(value_start, value_end)]
    else:
        name = word[:-1] if quoted and word.endswith('"') else word
        value = None
    nxt = end + 1 if end < n else end
    return name, value, skip_spaces(s, nxt)


def tokenize(s: str) -> list[tuple[str, str | None]]:
    """Every (name, value) of ``s`` in order, ignoring ``--`` (a testing aid)."""
    out = []
    pos = skip_spaces(s)
    while pos < len(s):
        name, value, pos = next_arg(s, pos)
        out.append((name, value))
    return out


def memparse(text: str) -> int:
    """The kernel's ``memparse``: a number with an optional K/M/G/T/P/E suffix."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)", text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r}")
    num, suffix = m.groups()
    value = int(num, 0) if not (num.startswith("0") and len(num) > 1 and num[1] not in "xX") else int(num, 8)
    shift = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}[suffix.lower()]
    return (value << shift) & ((1 << 64) - 1)  # simple_strtoull and the shift wrap at 64 bits
