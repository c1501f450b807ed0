"""What a kmod tool runs against: the machine (or none) and its files.

Paths a tool prints are the machine's paths (``/lib/modules/...``); the files
behind them live under ``root`` on the host. Paths the user types (``-d``,
``-b``, ``-C``, ``insmod FILE``) are host paths when they exist on the host,
and machine paths otherwise.
"""

from __future__ import annotations

import os
import posixpath
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kmodemu.trust import policy_of


@dataclass
class ToolContext:
    """The environment one tool invocation sees."""

    kernel: Any = None
    root: Path = field(default_factory=lambda: Path("/"))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    env: dict[str, str] = field(default_factory=dict)
    #: how many install/remove shells this tool runs inside (bounds a line that modprobes itself)
    sh_depth: int = 0

    def machine_path(self, path: str) -> str:
        """The host file behind a machine path (``..`` stops at the machine's ``/``)."""
        if not os.path.isabs(path):
            return path
        return os.path.join(str(self.root), posixpath.normpath(path).lstrip("/"))

    def user_path(self, path: str) -> str:
        """The host file behind a path typed by the user.

        A confined machine (a scenario: see kmodemu.trust) sees only its own
        disk: every path, relative ones from ``/``, is a machine path.
        """
        if policy_of(self.kernel).host_root is not None:
            return self.machine_path(posixpath.join("/", path))
        if os.path.exists(path):
            return path
        return self.machine_path(path)

    def release(self) -> str:
        """``uname -r`` of the machine."""
        if self.kernel is not None:
            return self.kernel.release
        return os.uname().release

    def read_proc(self, path: str) -> str | None:
        """A /proc or /sys file of the machine, None when it does not exist."""
        if self.kernel is None:
            return None
        try:
            return self.kernel.read(path)
        except Exception:
            return None
