"""The ``--json`` report: a KernelCI-like document with no wall-clock values,
so two runs of the same scenarios give the same file.

Schema (version 1) is documented in docs/scenarios.md and checked by
``validate``, which the runner's tests use.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from kmodemu.scenario.runner import ERROR, FAIL, PASS, SKIP

SCHEMA_VERSION = 1
STATUSES = (PASS, FAIL, SKIP, ERROR)


def test_case(name: str, path: Path | None, runs: list, *, recorded: bool = False) -> dict:
    """One scenario's entry, summarising all its runs (``--repeat``)."""
    last = next((r for r in runs if r.status in (FAIL, ERROR)), runs[-1])
    return {
        "name": name,
        "path": str(path) if path else None,
        "status": PASS if recorded and last.status == FAIL else last.status,
        "runs": len(runs),
        "failed_runs": sum(1 for r in runs if r.status in (FAIL, ERROR)),
        "reason": last.reason,
        "diff": last.diff or None,
        "recorded": recorded,
        "seed": last.seed,
        "virtual_time_ns": last.virtual_time_ns,
        "steps": [{"line": s.lineno, "command": s.command, "status": s.status,
                   "exit_code": s.exit_code} for s in last.steps],
    }


def document(cases: list[dict], *, exit_code: int, interrupted: bool = False) -> dict:
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in STATUSES}
    status = FAIL if counts[FAIL] or counts[ERROR] else PASS if counts[PASS] else SKIP
    return {
        "format": "kmodemu-run",
        "version": SCHEMA_VERSION,
        "name": "kmodemu run",
        "status": status,
        "exit_code": exit_code,
        "interrupted": interrupted,
        "misc": {"total": len(cases), "passed": counts[PASS], "failed": counts[FAIL],
                 "skipped": counts[SKIP], "errors": counts[ERROR]},
        "sub_groups": [],
        "test_cases": cases,
    }


def write(path: Path, doc: dict, *, force: bool) -> None:
    """Write atomically; without ``force`` never replace a file that appeared meanwhile."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with EEXIST rather than overwrite
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def validate(doc: dict) -> list[str]:
    """Problems with a report document (empty when it follows schema version 1)."""
    problems: list[str] = []
    types: type | tuple[type, ...]  # one or several JSON types a field may have

    def need(obj: dict, key: str, types: type | tuple[type, ...], where: str) -> None:
        if key not in obj:
            problems.append(f"{where}: missing {key!r}")
        elif not isinstance(obj[key], types):
            problems.append(f"{where}.{key}: {type(obj[key]).__name__} is not {types}")

    for key, types in (("format", str), ("version", int), ("name", str), ("status", str),
                       ("exit_code", int), ("interrupted", bool), ("misc", dict),
                       ("sub_groups", list), ("test_cases", list)):
        need(doc, key, types, "$")
    if problems:
        return problems
    if doc["format"] != "kmodemu-run" or doc["version"] != SCHEMA_VERSION:
        problems.append("$: not a kmodemu-run version 1 document")
    if doc["status"] not in (PASS, FAIL, SKIP):
        problems.append(f"$.status: {doc['status']!r}")
    for key in ("total", "passed", "failed", "skipped", "errors"):
        need(doc["misc"], key, int, "$.misc")
    for i, case in enumerate(doc["test_cases"]):
        where = f"$.test_cases[{i}]"
        for key, types in (("name", str), ("path", (str, type(None))), ("status", str),
                           ("runs", int), ("failed_runs", int), ("reason", (str, type(None))),
                           ("diff", (str, type(None))), ("recorded", bool), ("seed", int),
                           ("virtual_time_ns", int), ("steps", list)):
            need(case, key, types, where)
        if case.get("status") not in STATUSES:
            problems.append(f"{where}.status: {case.get('status')!r}")
        for j, step in enumerate(case.get("steps", [])):
            for key, types in (("line", int), ("command", str), ("status", str),
                               ("exit_code", (int, type(None)))):
                need(step, key, types, f"{where}.steps[{j}]")
    return problems
