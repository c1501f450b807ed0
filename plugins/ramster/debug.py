"""RAMster's debugfs counters (3.10 ramster/debug.c), exact names, in Linux's order."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class RamsterCounters:
    """/sys/kernel/debug/ramster/: every field is one read-only file."""

    eph_pages_remoted: int = 0
    pers_pages_remoted: int = 0
    eph_pages_remote_failed: int = 0
    pers_pages_remote_failed: int = 0
    remote_eph_pages_succ_get: int = 0
    remote_pers_pages_succ_get: int = 0
    remote_eph_pages_unsucc_get: int = 0
    remote_pers_pages_unsucc_get: int = 0
    pers_pages_remote_nomem: int = 0
    remote_objects_flushed: int = 0
    remote_pages_flushed: int = 0
    remote_object_flushes_failed: int = 0
    remote_page_flushes_failed: int = 0
    foreign_eph_pages: int = 0
    foreign_eph_pages_max: int = 0
    foreign_pers_pages: int = 0
    foreign_pers_pages_max: int = 0

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]
