"""A one-line progress bar on stderr, for people watching a terminal.

Anything else written to the same terminal first clears the bar (``clear``),
so KTAP on stdout and the bar never garble each other.
"""

from __future__ import annotations

import shutil
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO, enabled: bool):
        self.total, self.stream, self.enabled = total, stream, enabled and total > 0
        self.done = 0
        self.failed = 0
        self._shown = False

    def show(self, label: str = "") -> None:
        if not self.enabled:
            return
        width = max(10, min(40, shutil.get_terminal_size((80, 24)).columns - 40))
        filled = width * self.done // self.total
        bar = "#" * filled + "-" * (width - filled)
        fails = f" {self.failed} failed" if self.failed else ""
        text = f"[{bar}] {self.done}/{self.total}{fails} {label}"
        self.stream.write("\r\033[K" + text[: shutil.get_terminal_size((80, 24)).columns - 1])
        self.stream.flush()
        self._shown = True

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
