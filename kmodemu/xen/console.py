"""The hypervisor's console ring (what ``xl dmesg`` reads).

Xen 4.2 prints without timestamps; every line reads back with the ``(XEN) ``
prefix. The ring has a byte budget like Xen's ``conring`` (16 KiB by
default): the oldest lines fall off first.
"""

from __future__ import annotations

from collections import deque

CONRING_SIZE = 16384


class Console:
    __slots__ = ("_lines", "_bytes", "size")

    def __init__(self, size: int = CONRING_SIZE):
        self._lines: deque[str] = deque()
        self._bytes = 0
        self.size = size

    def printk(self, text: str) -> None:
        for line in text.split("\n"):
            entry = f"(XEN) {line}\n"
            self._lines.append(entry)
            self._bytes += len(entry)
        while self._bytes > self.size and self._lines:
            self._bytes -= len(self._lines.popleft())

    def read(self, clear: bool = False) -> str:
        text = "".join(self._lines)
        if clear:
            self._lines.clear()
            self._bytes = 0
        return text

    def lines(self) -> list[str]:
        return [line[6:-1] for line in self._lines]
