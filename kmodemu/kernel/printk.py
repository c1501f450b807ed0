"""printk and the log ring buffer that ``dmesg`` reads.

Records keep their level and a virtual-clock timestamp; formatting follows
util-linux dmesg's default (``[    1.234567] text``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from kmodemu.kernel.clock import VirtualClock

KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR, KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG = range(8)
LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
DEFAULT_LOG_BUF_LEN = 1 << 17


@dataclass(frozen=True)
class LogRecord:
    seq: int
    ts_ns: int
    level: int
    text: str

    def format(self, *, show_level: bool = False, show_time: bool = True) -> str:
        sec, ns = divmod(self.ts_ns, 1_000_000_000)
        stamp = f"[{sec:5d}.{ns // 1000:06d}] " if show_time else ""
        prefix = f"{LEVEL_NAMES[self.level]:<6}: " if show_level else ""
        return f"{prefix}{stamp}{self.text}"


#: 1024 - PREFIX_MAX: the longest record text printk keeps, with its NUL (kernel/printk.c, 3.10)
LOG_LINE_MAX = 1024 - 32


class LogBuffer:
    """The printk ring buffer: oldest records drop when ``size`` bytes are exceeded."""

    def __init__(self, clock: VirtualClock, size: int = DEFAULT_LOG_BUF_LEN):
        self.clock = clock
        self.size = size
        self._records: list[LogRecord] = []
        self._bytes = 0
        self._seq = 0
        self.console_loglevel = 7

    def printk(self, text: str, level: int = KERN_INFO) -> None:
        for line in text.split("\n"):
            if len(line) > LOG_LINE_MAX - 1:  # vscnprintf into textbuf[LOG_LINE_MAX] (3.10)
                line = line.encode("utf-8", "surrogateescape")[:LOG_LINE_MAX - 1].decode(
                    "utf-8", "ignore")
            rec = LogRecord(self._seq, self.clock.ns, level, line)
            self._seq += 1
            self._records.append(rec)
            self._bytes += len(line) + 16
        while self._bytes > self.size and self._records:
            old = self._records.pop(0)
            self._bytes -= len(old.text) + 16

    @property
    def seq(self) -> int:
        """Records ever logged (printk's log_next_seq): a command that logged nothing left it."""
        return self._seq

    def records(self) -> Iterator[LogRecord]:
        return iter(list(self._records))

    def clear(self) -> None:
        self._records.clear()
        self._bytes = 0

    def text(self, **fmt) -> str:
        return "".join(r.format(**fmt) + "\n" for r in self._records)
