"""The hypervisor's boot options (Xen ``common/kernel.c`` ``cmdline_parse``).

Xen's rules, not Linux's: options are separated by spaces; a boolean is
``NAME``, ``no-NAME`` or ``NAME=VALUE`` where VALUE is one of
no/off/false/disable/0 (false) — anything else reads as true, as in Xen 4.2's
``parse_bool`` use; unknown options are ignored without a word. Only the
options this emulator acts on are declared: tmem's six (Xen's tmem_xen.c) and
``dom0_mem``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FALSE = {"no", "off", "false", "disable", "0"}

BOOL_OPTIONS = ("tmem", "tmem_compress", "tmem_dedup", "tmem_tze", "tmem_shared_auth")
INT_OPTIONS = ("tmem_lock",)


def parse_size(text: str) -> int:
    """Xen's ``parse_size_and_unit``: a number with a B/K/M/G/T suffix (K when none)."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|[0-9]+)([bBkKmMgGtT]?)", text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r}")
    shift = {"": 10, "b": 0, "k": 10, "m": 20, "g": 30, "t": 40}[m.group(2).lower()]
    return int(m.group(1), 0) << shift


@dataclass
class XenOptions:
    """What the hypervisor's command line set (defaults are Xen's: all off)."""

    tmem: bool = False
    tmem_compress: bool = False
    tmem_dedup: bool = False
    tmem_tze: bool = False
    tmem_shared_auth: bool = False
    tmem_lock: int = 0
    dom0_mem: int | None = None  # bytes
    cmdline: str = ""
    ignored: list[str] = field(default_factory=list)


def parse_cmdline(cmdline: str) -> XenOptions:
    """Parse a Xen command line; unknown words are recorded in ``ignored``."""
    opts = XenOptions(cmdline=" ".join(cmdline.split()))
    for word in cmdline.split():
        name, eq, value = word.partition("=")
        key = name.replace("-", "_")
        if key.startswith("no_") and not eq and key[3:] in BOOL_OPTIONS:
            setattr(opts, key[3:], False)
        elif key in BOOL_OPTIONS:
            setattr(opts, key, not (eq and value.lower() in _FALSE))
        elif key in INT_OPTIONS and eq:
            try:
                setattr(opts, key, int(value, 0))
            except ValueError:
                opts.ignored.append(word)
        elif key == "dom0_mem" and eq:
            # dom0_mem=[min:X,max:Y,]SIZE: we honour the plain amount
            amount = value.split(",")[-1]
            try:
                opts.dom0_mem = parse_size(amount)
            except ValueError:
                opts.ignored.append(word)
        else:
            opts.ignored.append(word)
    return opts
