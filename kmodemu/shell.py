"""``kmodemu shell``: type console commands at a prompt; optionally keep the session."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from kmodemu.machine import Machine


def run_shell(machine: Machine, record: Path | None = None) -> int:
    interactive = sys.stdin.isatty()
    rc = 0
    while True:
        if interactive:
            sys.stdout.write("kmodemu# ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("exit", "quit"):
            break
        try:
            argv = shlex.split(line)
        except ValueError as e:
            print(f"kmodemu: {e}", file=sys.stderr)
            continue
        rc = machine.run(argv)
    return rc
