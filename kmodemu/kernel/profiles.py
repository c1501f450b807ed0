"""Kernel profiles: which Linux the emulated kernel behaves like.

``3.10`` has the tmem lazy-initialization patchset merged (backends can be
modules and still see filesystems and swap devices enabled before them);
``3.9`` is the pre-patch kernel. ``3.10-unload`` is 3.10 plus what Linux never
had: tmem backends that can be unloaded (``cleancache_unregister_ops``,
``frontswap_unregister_ops`` and the backends' exits; docs/unloading.md). It is
an opt-in beyond Linux, named so that nobody mistakes it for Linux 3.10.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    release: str
    lazy_init: bool
    #: backends may be unloaded: the frontends export their unregister functions and
    #: modules link the exits Linux's tmem backends never had (beyond Linux)
    unload: bool = False


PROFILES = {
    "3.10": Profile("3.10", "3.10.0-kmodemu", lazy_init=True),
    "3.9": Profile("3.9", "3.9.0-kmodemu", lazy_init=False),
    "3.10-unload": Profile("3.10-unload", "3.10.0-kmodemu-unload", lazy_init=True, unload=True),
}
DEFAULT_PROFILE = "3.10"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown kernel profile {name!r} (known: {', '.join(PROFILES)})") from None
