"""The machine's line protocol, in the spirit of QEMU's QMP: one JSON object per line.

On connect the machine greets: ``{"kmodemu": PROTOCOL, "version": V, "pid": N}``.
The client sends one request, ``{"op": "run", "argv": [...], "tty": {...},
"target": GUEST|null}`` (or ``info``, ``reboot``, ``poweroff``, ``quit``), and may
later send ``{"interrupt": true}`` (Ctrl-C). The machine answers with
``{"out": TEXT}`` / ``{"err": TEXT}`` lines as the command prints, extra data
(``{"info": {...}}``) and finally ``{"exit": STATUS}``. Only console command words
travel in and only their output travels out: nothing in a request is code.

The socket lives in the machine directory, both private to the user (0700/0600),
and is checked on connect by both sides.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

PROTOCOL = 1
IMAGE_NAME = "machine.json"  # the image (definition + journal); see machine.py
SOCKET_NAME = ".sock"
LOCK_NAME = ".lock"          # held by the running machine process for its whole life
BOOT_LOCK_NAME = ".boot.lock"  # held while a machine process is being started
MAX_LINE = 1 << 24
SUN_PATH_MAX = 107


class ProtocolError(Exception):
    """A peer that does not speak this protocol, or an unsafe socket or directory."""


def version() -> str:
    """This kmodemu's version: client and machine must agree (the console may differ)."""
    from kmodemu import __version__
    return __version__


def send(sock: socket.socket, obj: dict[str, Any]) -> None:
    sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


class LineReader:
    """Reads newline-terminated JSON objects from a stream socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read(self) -> dict[str, Any] | None:
        """The next object, or None at end of stream."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            raise ProtocolError("not a JSON line") from None
        if not isinstance(obj, dict):
            raise ProtocolError("not a JSON object")
        return obj


def check_private(path: Path, *, is_dir: bool) -> None:
    """The user's own, and nobody else's: refuse a directory or socket others can reach."""
    st = os.lstat(path)
    kind = "directory" if is_dir else "socket"
    if st.st_uid != os.getuid():
        raise ProtocolError(f"{path}: {kind} owned by uid {st.st_uid}, not by you")
    if is_dir and not stat.S_ISDIR(st.st_mode):
        raise ProtocolError(f"{path}: not a directory")
    if not is_dir and not stat.S_ISSOCK(st.st_mode):
        raise ProtocolError(f"{path}: not a socket")
    if st.st_mode & 0o077:
        raise ProtocolError(f"{path}: {kind} is accessible to other users "
                            f"(mode {stat.S_IMODE(st.st_mode):04o})")


def socket_address(machine_dir: Path) -> tuple[str, int | None]:
    """The address to connect to, and a directory fd to close afterwards (long paths)."""
    full = str(Path(machine_dir).absolute() / SOCKET_NAME)
    if len(full.encode()) <= SUN_PATH_MAX:
        return full, None
    fd = os.open(machine_dir, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{SOCKET_NAME}", fd


def connect(machine_dir: Path, timeout: float | None = None) -> socket.socket | None:
    """A connection to the running machine, or None when no process listens there."""
    machine_dir = Path(machine_dir)
    sock_path = machine_dir / SOCKET_NAME
    if not os.path.lexists(sock_path):
        return None
    check_private(machine_dir, is_dir=True)
    check_private(sock_path, is_dir=False)
    addr, fd = socket_address(machine_dir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except (ConnectionRefusedError, FileNotFoundError):
        s.close()
        return None
    finally:
        if fd is not None:
            os.close(fd)
    s.settimeout(None)
    return s


def peer_uid(sock: socket.socket) -> int:
    import struct
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]
