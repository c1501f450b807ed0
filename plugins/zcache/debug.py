"""The debugfs counters of zcache (``zcache/``) and of its allocator (``zbud/``).

Plain objects with int attributes, so the hot path bumps them with one
attribute store; ``items()`` lists the published names in the order the 3.10
``debug.c`` / ``zbud.c`` create the files, for the glue to expose.  The two
directories share some names (``eph_zbytes``...) with different meanings:
zcache counts compressed bytes, zbud counts them plus the tmem handle stored
in front of each zpage, hence two objects.
"""

from __future__ import annotations

from typing import Iterator

#: zcache/ files, size_t, in debug.c order (3.10, with zero_filled_pages), plus
#: ``same_filled_pages`` (beyond Linux, right after zero_filled_pages): pages of
#: one repeated non-zero 8-byte word, stored as metadata only (docs/zcache.md)
ZCACHE_NAMES: tuple[str, ...] = (
    "obj_count", "obj_count_max",
    "objnode_count", "objnode_count_max",
    "flush_total", "flush_found",
    "flobj_total", "flobj_found",
    "failed_eph_puts", "failed_pers_puts",
    "failed_getfreepages", "failed_alloc",
    "put_to_flush",
    "compress_poor", "mean_compress_poor",
    "eph_ate_tail", "eph_ate_tail_failed",
    "pers_ate_eph", "pers_ate_eph_failed",
    "evicted_eph_zpages", "evicted_eph_pageframes",
    "eph_pageframes", "eph_pageframes_max",
    "pers_pageframes", "pers_pageframes_max",
    "eph_zpages", "eph_zpages_max",
    "pers_zpages", "pers_zpages_max",
    "last_active_file_pageframes",
    "last_inactive_file_pageframes",
    "last_active_anon_pageframes",
    "last_inactive_anon_pageframes",
    "eph_nonactive_puts_ignored",
    "pers_nonactive_puts_ignored",
    "zero_filled_pages",
    "same_filled_pages",
    # u64 files, created after the size_t array
    "eph_zbytes", "eph_zbytes_max",
    "pers_zbytes", "pers_zbytes_max",
)

#: kept by the kernel but never published
ZCACHE_PRIVATE: tuple[str, ...] = ("zero_filled_pages_max",)

#: zbud/ files in zbud_debugfs_init order
ZBUD_NAMES: tuple[str, ...] = (
    "eph_zbytes", "eph_cumul_zbytes",
    "pers_zbytes", "pers_cumul_zbytes",
    "eph_cumul_zpages", "eph_evicted_pageframes",
    "eph_zpages", "eph_pageframes",
    "eph_buddied_count", "eph_unbuddied_count",
    "pers_cumul_zpages", "pers_evicted_pageframes",
    "pers_zpages", "pers_pageframes",
    "pers_buddied_count", "pers_unbuddied_count",
    "pers_zombie_count",
)


class _Counters:
    __slots__ = ()
    NAMES: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def items(self) -> Iterator[tuple[str, int]]:
        """(name, value) of every published file, in creation order."""
        for name in self.NAMES:
            yield name, getattr(self, name)

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def reset(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        nonzero = ", ".join(f"{k}={v}" for k, v in self.items() if v)
        return f"<{type(self).__name__} {nonzero}>"


class ZcacheCounters(_Counters):
    """debugfs ``zcache/``: tmem objects, flushes, put failures, occupancy."""

    __slots__ = ZCACHE_NAMES + ZCACHE_PRIVATE
    NAMES = ZCACHE_NAMES


#: zbud/ values that are levels of the allocator, read from it when asked
ZBUD_GAUGES: tuple[str, ...] = tuple(
    n for n in ZBUD_NAMES if "cumul" not in n and "evicted" not in n and "zombie" not in n)


class _NoGauges:
    """Gauges before an allocator is bound: all zero."""

    def __getattr__(self, name: str) -> int:
        return 0


def _gauge(name: str) -> property:
    return property(lambda self: getattr(self._source, name),
                    doc=f"zbud/{name}, read from the allocator")


class ZbudCounters(_Counters):
    """debugfs ``zbud/``: the allocator's own view (sizes include the tmem handle).

    Cumulative counters are plain ints.  The levels (zpages, zbytes,
    pageframes, buddied/unbuddied counts) are read from the bound allocator
    when asked, so the hot path does not keep a second copy of them.
    """

    __slots__ = tuple(n for n in ZBUD_NAMES if n not in ZBUD_GAUGES) + ("_source",)
    NAMES = ZBUD_NAMES

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)
        self._source = _NoGauges()

    def bind(self, source) -> None:
        """Read the gauges from ``source`` (an allocator) from now on."""
        self._source = source

    def reset(self) -> None:
        source = self._source
        super().reset()
        self._source = source


for _name in ZBUD_GAUGES:
    setattr(ZbudCounters, _name, _gauge(_name))
del _name


class Counters:
    """Both directories of one zcache instance (one per emulated kernel)."""

    __slots__ = ("zcache", "zbud")

    def __init__(self) -> None:
        self.zcache = ZcacheCounters()
        self.zbud = ZbudCounters()

    def dirs(self) -> dict[str, _Counters]:
        """debugfs directory name -> its counters, in creation order."""
        return {"zcache": self.zcache, "zbud": self.zbud}
