"""A wall-clock bound on one scenario run, so a hung step fails instead of hanging the suite.

Steps run in-process, so the bound is a ``SIGALRM`` timer that raises in the
step. ``ScenarioTimeout`` is a BaseException: the emulator's own ``except
Exception`` handlers must not swallow it. Off the main thread (where signals
cannot be delivered) the run is unbounded, and says so nowhere else: callers
that need a bound there must run scenarios in the main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

#: seconds; the library's scenarios take well under one
DEFAULT_TIMEOUT = 120.0


class ScenarioTimeout(BaseException):
    """The scenario ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ScenarioTimeout()

    old = signal.signal(signal.SIGALRM, expire)
    previous = signal.setitimer(signal.ITIMER_REAL, seconds)[0]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if previous:
            signal.setitimer(signal.ITIMER_REAL, previous)
