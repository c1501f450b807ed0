"""Kernel profiles: which Linux the emulated kernel behaves like.

``3.10`` has the tmem lazy-initialization patchset merged (backends can be
modules and still see filesystems and swap devices enabled before them);
``3.9`` is the pre-patch kernel.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    release: str
    lazy_init: bool


PROFILES = {
    "3.10": Profile("3.10", "3.10.0-kmodemu", lazy_init=True),
    "3.9": Profile("3.9", "3.9.0-kmodemu", lazy_init=False),
}
DEFAULT_PROFILE = "3.10"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown kernel profile {name!r} (known: {', '.join(PROFILES)})") from None


def memparse(text: str) -> int:
    """The kernel's ``memparse``: a number with an optional K/M/G/T/P/E suffix."""
    import re

    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)", text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r}")
    num, suffix = m.groups()
    value = int(num, 0) if not (num.startswith("0") and len(num) > 1 and num[1] not in "xX") else int(num, 8)
    shift = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}[suffix.lower()]
    return (value << shift) & ((1 << 64) - 1)  # simple_strtoull and the shift wrap at 64 bits
