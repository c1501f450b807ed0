"""Module-name and alias normalisation, the way kmod compares names.

kmod treats ``-`` and ``_`` as the same character in module names and alias
patterns, except inside ``[...]`` bracket expressions, which it keeps verbatim
so that glob classes like ``[a-z]`` survive.
"""

from __future__ import annotations

import os

#: file name endings kmod recognises as kernel modules
MODULE_EXTENSIONS = (".ko", ".ko.xz", ".ko.zst")  # kmod 30 as Debian builds it: no zlib


def underscores(name: str) -> str:
    """``-`` → ``_`` everywhere (module names never contain brackets)."""
    return name.replace("-", "_")


def alias_normalize(alias: str) -> str | None:
    """``-`` → ``_`` outside brackets; ``None`` when a bracket is unmatched."""
    out: list[str] = []
    i = 0
    n = len(alias)
    while i < n:
        ch = alias[i]
        if ch == "-":
            out.append("_")
        elif ch == "]":
            return None
        elif ch == "[":
            end = alias.find("]", i)
            if end < 0:
                return None
            out.append(alias[i:end + 1])
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def modname_from_path(path: str) -> str:
    """``.../xen-tmem.ko.xz`` → ``xen_tmem``: basename up to the first dot."""
    base = os.path.basename(path)
    return underscores(base.split(".", 1)[0])


def has_module_extension(path: str) -> bool:
    return path.endswith(MODULE_EXTENSIONS)
