"""Running machines for the demo's runs that need more than one kernel (RAMster's node and
RAM server, a Xen host and its guests).

They are booted with the ``kmodemu`` CLI, as a person would, and driven through the
client with console command lines only, so these runs use exactly the interfaces the
docs describe. Every machine lives in a private temporary directory and is stopped
and removed when the run ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import io
import random
import shlex
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kmodemu.machine import client

BOOT_TIMEOUT_S = 300.0


@dataclass
class Outcome:
    """What one command line printed, and its status (the same fields as a Session's)."""

    rc: int
    stdout: str
    stderr: str


class Node:
    """One running machine (or one guest of a running host) taking console command lines."""

    def __init__(self, path: Path, guest: str | None = None):
        self.path = Path(path)
        self.target = guest

    def run(self, line: str) -> Outcome:
        try:
            argv = shlex.split(line)
        except ValueError as e:
            return Outcome(2, "", f"kmodemu: {line}: {e}\n")
        out, err = io.StringIO(), io.StringIO()
        try:
            rc = client.run_command(self.path, argv, target=self.target, stdout=out, stderr=err)
        except client.ClientError as e:
            return Outcome(1, out.getvalue(), err.getvalue() + f"kmodemu: {e}\n")
        return Outcome(rc, out.getvalue(), err.getvalue())

    def guest(self, name: str) -> "Node":
        return Node(self.path, name)


class Cluster(contextlib.AbstractContextManager):
    """Machines booted for one demo run; all stopped and deleted on exit."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="kmodemu-demo-")
        self.base = Path(self._tmp.name)
        self.paths: list[Path] = []

    def boot(self, name: str, *args: str) -> tuple[Node | None, str]:
        """``kmodemu --machine DIR boot ARGS``: the node, or None and what the CLI said."""
        path = self.base / name
        self.paths.append(path)
        try:
            res = subprocess.run([sys.executable, "-m", "kmodemu", "--machine", str(path), "boot",
                                  *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=BOOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"kmodemu boot {' '.join(args)}: no answer in {BOOT_TIMEOUT_S:.0f} s"
        if res.returncode != 0:
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            return None, lines[-1] if lines else f"kmodemu boot: exit status {res.returncode}"
        return Node(path), ""

    def __exit__(self, *exc) -> None:
        for path in self.paths:
            with contextlib.suppress(client.ClientError, OSError):
                if client.is_running(path):
                    client.stop(path, "quit")
        self._tmp.cleanup()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (``ip_local_port_range``)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(addresses: tuple[str, ...]) -> int:
    """A TCP port free on every loopback address given (RAMster's nodes share one port number).

    Drawn at random from *below* the ephemeral range: a port from ``bind(0)``
    is in that range, where any outgoing connection (another test's r2net
    connect) may take it before the node's listener binds it; below it only
    explicit binds compete.
    """
    rng = random.Random()
    high = max(_ephemeral_low(), 12000)
    for _ in range(200):
        port = rng.randrange(10000, high)
        try:
            for addr in addresses:
                with socket.socket() as t:
                    t.bind((addr, port))
        except OSError:
            continue
        return port
    raise OSError("no free TCP port on the loopback addresses")


__all__ = ["Cluster", "Node", "Outcome", "free_port"]
