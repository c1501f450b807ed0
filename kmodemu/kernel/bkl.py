"""The big kernel lock: one emulated CPU per kernel, given up while a task sleeps.

Most of a kernel is plain single-threaded Python. Networking (ramster's r2net)
adds threads that receive messages and run handlers on the kernel they belong
to. Those threads take this lock, exactly like the old ``lock_kernel()``: the
console holds it for each command, a receive thread holds it while it runs a
handler, and a task that blocks on the network (``wait_event``) drops it for
the wait and takes it back when it wakes — which is when the races of Linux
(a flush arriving while a get waits for its reply) can happen here too.
"""

from __future__ import annotations

import threading
from typing import Callable, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class BigKernelLock:
    """A re-entrant lock with ``sleep``: release fully while waiting, then restore the depth."""

    __slots__ = ("_lock", "_owner", "_depth")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0

    def held(self) -> bool:
        return self._owner == threading.get_ident()

    def __enter__(self) -> "BigKernelLock":
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
        else:
            self._lock.acquire()
            self._owner = me
            self._depth = 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()

    def sleep(self, wait: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``wait(...)`` (a blocking wait) with the lock released if this thread holds it."""
        if self._owner != threading.get_ident():
            return wait(*args, **kwargs)
        depth = self._depth
        self._owner = None
        self._depth = 0
        self._lock.release()
        try:
            return wait(*args, **kwargs)
        finally:
            self._lock.acquire()
            self._owner = threading.get_ident()
            self._depth = depth
