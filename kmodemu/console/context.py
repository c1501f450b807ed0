"""What a console command sees of the machine it runs on.

A Protocol rather than an import of ``Machine``: the console sits above the
kernel and below the machine (which runs console commands), so naming the
machine class here would close an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import click


class ConsoleMachine(Protocol):
    """The parts of a machine that commands use."""

    kernel: Any
    root: Path
    path: Path | None

    def read_host(self, path: str, limit: int) -> bytes:
        """Bytes of a host file a command takes in (kept in the machine directory when persistent)."""
        ...


def machine_of(ctx: click.Context) -> ConsoleMachine:
    return ctx.find_root().obj


def read_host(ctx: click.Context, path: str, limit: int) -> bytes:
    """A host file's first ``limit`` bytes, through the machine (so its journal keeps a copy)."""
    m = machine_of(ctx)
    reader = getattr(m, "read_host", None)
    if reader is None:
        with open(path, "rb") as f:
            return f.read(limit)
    return reader(path, limit)
