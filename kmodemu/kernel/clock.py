"""The kernel's virtual clock: time passes only when the emulation says so.

Every timestamp (dmesg, reports) comes from here, so the same inputs give
byte-identical output.
"""

from __future__ import annotations


class VirtualClock:
    """Monotonic nanoseconds since boot."""

    __slots__ = ("ns",)

    def __init__(self, ns: int = 0):
        self.ns = ns

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError("time does not run backwards")
        self.ns += ns
        return self.ns

    def advance_us(self, us: int) -> int:
        return self.advance(us * 1000)

    @property
    def seconds(self) -> float:
        return self.ns / 1e9
