"""What a machine may take from the host: the line between data and the person running.

Scenario files and machine images are data that people share. They may name
host paths (``module-path:``, ``--content host:F``) and shell lines
(modprobe.d ``install``). The person running kmodemu decides, on their own
command line, how far such data reaches: this policy carries that decision to
the kernel and the tools. It is run-time only, never stored in an image (an
image cannot grant itself trust). See docs/security.md.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


class UntrustedPath(OSError):
    """A host path outside the tree the person running chose (EACCES)."""

    def __init__(self, path: str | os.PathLike[str], root: Path):
        super().__init__(errno.EACCES, f"Permission denied (outside the trusted tree {root})", str(path))
        self.root = root


def confine(path: str | os.PathLike[str], root: Path) -> Path:
    """``path`` resolved (symlinks followed), or UntrustedPath when it leaves ``root``."""
    real = Path(os.path.realpath(path))
    top = Path(os.path.realpath(root))
    if real != top and top not in real.parents:
        raise UntrustedPath(path, top)
    return real


@dataclass
class HostPolicy:
    """The host reach of one machine.

    ``host_shell``: modprobe.d install/remove lines run with the host's
    ``/bin/sh`` (as the user running kmodemu) instead of the emulated shell.
    ``host_root``: ``--content host:F`` may read only files under this tree;
    None lets it read anything (the interactive CLI, where the person typing
    is the person running).
    """

    host_shell: bool = False
    host_root: Path | None = None

    def host_file(self, path: str) -> str:
        """The path to open for ``host:PATH`` content; UntrustedPath when outside host_root."""
        if self.host_root is None:
            return path
        base = self.host_root
        full = path if os.path.isabs(path) else os.path.join(base, path)
        return str(confine(full, base))


def policy_of(kernel: object) -> HostPolicy:
    """The kernel's policy; a kernel without one (a bare test kernel) gets the safe default."""
    pol = getattr(kernel, "host_policy", None)
    return pol if isinstance(pol, HostPolicy) else HostPolicy()
