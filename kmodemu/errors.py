"""Kernel-side failures as values that carry an errno, the way Linux returns -E*.

Tools turn them into the real tools' messages; nothing in kmodemu raises a bare
Exception for a condition Linux reports with an errno.
"""

from __future__ import annotations

import errno as _errno
import os


class KernelError(Exception):
    """A failure with a Linux errno (positive, like ``errno.EINVAL``)."""

    def __init__(self, err: int, message: str | None = None):
        self.errno = err
        self.message = message
        super().__init__(message or strerror(err))

    @property
    def name(self) -> str:
        return errno_name(self.errno)


def strerror(err: int) -> str:
    """glibc's text for an errno (what kmod prints with %m)."""
    return os.strerror(err)


def errno_name(err: int) -> str:
    return _errno.errorcode.get(err, str(err))
