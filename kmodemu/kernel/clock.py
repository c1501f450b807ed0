"""The kernel's virtual clock and its timers: time passes only when the emulation says so.

Every timestamp (dmesg, reports) comes from here, so the same inputs give
byte-identical output. Timers (``add_timer``/``mod_timer``/``del_timer`` and
delayed work, which is a timer whose callback runs the work) fire in expiry
order whenever the clock is advanced past them — by ``kmodemu sleep``, a
workload or any command's charge — with the clock set to each timer's expiry
while its callback runs, as a softirq on a tickless kernel would see it.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable

NSEC_PER_SEC = 1_000_000_000
NSEC_PER_MSEC = 1_000_000


class Timer:
    """One pending callback; ``expires`` is in clock nanoseconds, None when not pending."""

    __slots__ = ("function", "name", "expires", "_seq")

    def __init__(self, function: Callable[[], None], name: str = ""):
        self.function = function
        self.name = name or getattr(function, "__qualname__", "timer")
        self.expires: int | None = None
        self._seq = 0

    @property
    def pending(self) -> bool:
        return self.expires is not None


class VirtualClock:
    """Monotonic nanoseconds since boot, and the timers that hang off it."""

    __slots__ = ("ns", "_heap", "_seq", "_firing")

    def __init__(self, ns: int = 0):
        self.ns = ns
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count(1)
        self._firing = False

    # -- time ---------------------------------------------------------------------
    def advance(self, ns: int) -> int:
        """Let ``ns`` nanoseconds pass, running every timer that falls due on the way."""
        if ns < 0:
            raise ValueError("time does not run backwards")
        target = self.ns + ns
        heap = self._heap
        if not heap or heap[0][0] > target or self._firing:
            self.ns = target
            return target
        self._firing = True
        try:
            while heap and heap[0][0] <= target:
                expires, seq, timer = heapq.heappop(heap)
                if timer._seq != seq:  # re-armed or deleted since this entry was pushed
                    continue
                timer.expires = None
                self.ns = max(self.ns, expires)
                timer.function()
        finally:
            self._firing = False
        self.ns = max(self.ns, target)
        return self.ns

    def advance_us(self, us: int) -> int:
        return self.advance(us * 1000)

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    # -- timers -------------------------------------------------------------------
    def mod_timer(self, timer: Timer, expires: int) -> bool:
        """Arm (or re-arm) ``timer`` for absolute time ``expires``; True if it was pending."""
        was = timer.pending
        seq = next(self._seq)
        timer._seq = seq
        timer.expires = max(expires, self.ns)
        heapq.heappush(self._heap, (timer.expires, seq, timer))
        return was

    def add_timer(self, function: Callable[[], None], delay_ns: int, name: str = "") -> Timer:
        """A new timer that runs ``function`` once, ``delay_ns`` from now."""
        timer = Timer(function, name)
        self.mod_timer(timer, self.ns + delay_ns)
        return timer

    def del_timer(self, timer: Timer) -> bool:
        """Cancel ``timer``; True if it was pending (``del_timer``'s return)."""
        was = timer.pending
        timer._seq = 0
        timer.expires = None
        return was

    def pending_timers(self) -> list[Timer]:
        """Pending timers in the order they will fire."""
        live = [(e, s, t) for e, s, t in self._heap if t._seq == s]
        return [t for _, _, t in sorted(live, key=lambda x: (x[0], x[1]))]
