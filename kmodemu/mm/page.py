"""The page a frontend hands to a backend, as ``struct page`` is in Linux.

Per-page ops take a ``Page`` and fill or read ``page.data`` (4096 bytes), so a
backend never sees the page cache or swap structures behind it.
"""

from __future__ import annotations

PAGE_SIZE = 4096
PAGE_SHIFT = 12


class Page:
    """One 4 KiB page: its bytes and the flag bits tmem cares about."""

    __slots__ = ("data", "dirty", "was_active")

    def __init__(self, data: bytes | None = None):
        self.data = data if data is not None else bytes(PAGE_SIZE)
        self.dirty = False
        # Mainline never merged __PG_WAS_ACTIVE: PageWasActive() is always true.
        self.was_active = True

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Page {self.data[:8].hex()}… dirty={self.dirty}>"
