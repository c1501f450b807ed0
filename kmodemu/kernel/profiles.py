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
