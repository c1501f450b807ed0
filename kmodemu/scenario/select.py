"""Which scenario files a run covers: paths expanded, then filtered by ``-k``."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from kmodemu.scenario.format import SUFFIX


def expand(paths: list[Path]) -> list[Path]:
    """Files as given (any name); directories searched recursively for ``*.scn``, sorted."""
    found: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        candidates = sorted(p.rglob(f"*{SUFFIX}")) if p.is_dir() else [p]
        for c in candidates:
            key = c.resolve()
            if key not in seen and not any(part.startswith(".") for part in c.parts[len(p.parts):]):
                seen.add(key)
                found.append(c)
    return found


def name_matches(names: str | list[str], patterns: list[str]) -> bool:
    """``-k``: a glob if it has wildcards, else a case-insensitive substring; any pattern
    may match any of ``names`` (the scenario's name and its path)."""
    if not patterns:
        return True
    names = [names] if isinstance(names, str) else names
    for pat in patterns:
        lpat = pat.lower()
        for name in names:
            lname = name.lower()
            if any(c in pat for c in "*?[") and fnmatch.fnmatchcase(lname, lpat):
                return True
            if not any(c in pat for c in "*?[") and lpat in lname:
                return True
    return False
