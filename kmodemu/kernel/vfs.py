"""The kernel's pseudo filesystems: /proc, /sys, /sys/kernel/debug.

A file is a pair of callables, so every read shows live state and every write
goes through the same validation the kernel's ``store`` functions do. Errors
are ``KernelError`` with the errno a real read/write would get.
"""

from __future__ import annotations

import errno
import posixpath
from dataclasses import dataclass
from typing import Callable

from kmodemu.errors import KernelError

Reader = Callable[[], str]
Writer = Callable[[str], None]


@dataclass
class PseudoFile:
    read: Reader | None
    write: Writer | None
    mode: int = 0o444


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.strip().lstrip("/"))


class PseudoFS:
    """A tree of pseudo files; directories exist while they hold something or were made."""

    def __init__(self) -> None:
        self._files: dict[str, PseudoFile] = {}
        self._dirs: set[str] = {"/"}

    # -- building ---------------------------------------------------------------
    def mkdir(self, path: str) -> None:
        path = _norm(path)
        while path not in self._dirs:
            self._dirs.add(path)
            path = posixpath.dirname(path)

    def add_file(self, path: str, read: Reader | None, write: Writer | None = None,
                 mode: int | None = None) -> None:
        path = _norm(path)
        if mode is None:
            mode = (0o444 if read else 0) | (0o200 if write else 0)
        self.mkdir(posixpath.dirname(path))
        self._files[path] = PseudoFile(read, write, mode)

    def add_value(self, path: str, value: str) -> None:
        """A constant read-only file (the text gets a trailing newline)."""
        self.add_file(path, lambda: value + "\n")

    def remove(self, path: str) -> None:
        """Remove a file or a whole directory tree (debugfs_remove_recursive)."""
        path = _norm(path)
        self._files.pop(path, None)
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self._files if p.startswith(prefix)]:
            del self._files[p]
        for d in [d for d in self._dirs if d == path or d.startswith(prefix)]:
            if d != "/":
                self._dirs.discard(d)

    # -- using ------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        path = _norm(path)
        return path in self._files or path in self._dirs

    def is_dir(self, path: str) -> bool:
        return _norm(path) in self._dirs

    def read(self, path: str) -> str:
        path = _norm(path)
        f = self._files.get(path)
        if f is None:
            raise KernelError(errno.EISDIR if path in self._dirs else errno.ENOENT)
        if f.read is None or not f.mode & 0o444:
            raise KernelError(errno.EACCES)
        return f.read()

    def write(self, path: str, text: str) -> None:
        path = _norm(path)
        f = self._files.get(path)
        if f is None:
            raise KernelError(errno.EISDIR if path in self._dirs else errno.ENOENT)
        if f.write is None or not f.mode & 0o222:
            raise KernelError(errno.EACCES)
        f.write(text)

    def mode(self, path: str) -> int:
        path = _norm(path)
        if path in self._dirs:
            return 0o040755
        f = self._files.get(path)
        if f is None:
            raise KernelError(errno.ENOENT)
        return 0o100000 | f.mode

    def listdir(self, path: str) -> list[str]:
        """Entries in creation order (as sysfs shows holders/ in directory order)."""
        path = _norm(path)
        if path not in self._dirs:
            raise KernelError(errno.ENOTDIR if path in self._files else errno.ENOENT)
        prefix = path.rstrip("/") + "/"
        seen: dict[str, None] = {}
        for p in list(self._files) + sorted(self._dirs):
            if p.startswith(prefix) and p != path:
                seen.setdefault(p[len(prefix):].split("/", 1)[0], None)
        return list(seen)
