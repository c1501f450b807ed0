"""The journal: the state-changing commands a machine ran, as data that replays them.

An entry is one of

- ``["cmd", "arg", …]``: a console command line, replayed by running it again;
- ``{"argv": [...], "ops": [...]}``: a ``modprobe``, replayed by what it did
  (its load/unload attempts), so later edits of modprobe.d do not rewrite history;
- ``{"argv": [...], "files": {WORD: BLOB}}``: a command that took host files
  (``insmod FILE``, ``--content host:F``); replay reads the copies (``BLOB``,
  ``host/<sha256>/<name>`` under the machine directory) instead of the host;
- ``{"clock": NS}``: wall time that passed on a machine booted with ``--clock real``.

Anything else is a damaged image: refused whole, never half-replayed or rewritten.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Sequence, Union

Entry = Union[list[str], dict[str, Any]]

BLOB_RE = re.compile(r"host/[0-9a-f]{64}/[^/\x00]{1,255}")
_KEYS = {"argv", "ops", "files"}


class JournalError(ValueError):
    """A journal entry that is not a well-formed command."""


def _argv_ok(argv: object) -> bool:
    return (isinstance(argv, list) and len(argv) > 0
            and all(isinstance(a, str) for a in argv))


def check_entry(entry: object, index: int) -> Entry:
    """Return ``entry`` if it is well formed; raise JournalError naming it otherwise."""
    where = f"journal entry {index + 1}"
    if isinstance(entry, list):
        if _argv_ok(entry):
            return entry
        raise JournalError(f"{where} is not a command (a list of words)")
    if isinstance(entry, dict):
        if set(entry) == {"clock"}:
            ns = entry["clock"]
            if isinstance(ns, int) and not isinstance(ns, bool) and ns >= 0:
                return entry
            raise JournalError(f"{where}: clock is not a count of nanoseconds")
        if not set(entry) <= _KEYS or not _argv_ok(entry.get("argv")):
            raise JournalError(f"{where} is not a command")
        ops = entry.get("ops", [])
        if not isinstance(ops, list) or not all(_op_ok(op) for op in ops):
            raise JournalError(f"{where}: malformed module operations")
        files = entry.get("files", {})
        if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and BLOB_RE.fullmatch(v)
                for k, v in files.items()):
            raise JournalError(f"{where}: host files outside the machine directory")
        return entry
    raise JournalError(f"{where} is not a command (a JSON {_json_type(entry)})")


def _json_type(value: object) -> str:
    """The JSON name of what the image holds (the user reads JSON, not Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "value"


def _op_ok(op: object) -> bool:
    if not isinstance(op, list) or not op:
        return False
    if op[0] == "load" and len(op) == 3 and isinstance(op[1], dict) and isinstance(op[2], str):
        ref = op[1]
        if set(ref) == {"plugin"} and isinstance(ref["plugin"], str):
            return True
        return set(ref) == {"path"} and isinstance(ref["path"], str)
    return (op[0] == "unload" and len(op) == 3 and isinstance(op[1], str)
            and isinstance(op[2], bool))


def check_journal(journal: object) -> list[Entry]:
    if not isinstance(journal, list):
        raise JournalError("the journal is not a list")
    return [check_entry(e, i) for i, e in enumerate(journal)]


def inside(path: str | os.PathLike[str], base: Path) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies within ``base``."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base))
    except (OSError, ValueError):
        return False


def store_blob(machine_dir: Path, name: str, data: bytes) -> str:
    """Keep host bytes in the machine directory; return their journal name."""
    digest = hashlib.sha256(data).hexdigest()
    base = os.path.basename(name.rstrip("/")) or "file"
    rel = f"host/{digest}/{base}"
    target = machine_dir / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{base}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return rel


def insmod_file_index(argv: Sequence[str]) -> int | None:
    """Where the FILE word is in an ``insmod [OPTIONS] FILE [ARGS]`` line."""
    for i, word in enumerate(argv[1:], start=1):
        if not word.startswith("-"):
            return i
    return None


def writes_outside(argv: Sequence[str], machine_dir: Path) -> bool:
    """``depmod -b HOSTDIR``: it changed a host directory, not the machine (never journaled)."""
    if argv[:1] != ["depmod"]:
        return False
    words = list(argv[1:])
    for i, w in enumerate(words):
        base = None
        if w in ("-b", "--basedir") and i + 1 < len(words):
            base = words[i + 1]
        elif w.startswith("--basedir="):
            base = w.split("=", 1)[1]
        elif w.startswith("-b") and len(w) > 2:
            base = w[2:]
        if base is not None and os.path.exists(base) and not inside(base, machine_dir):
            return True
    return False
