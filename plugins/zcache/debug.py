"""The debugfs counters of zcache (``zcache/``) and of its allocator (``zbud/``).

Plain objects with int attributes, so the hot path bumps them with one
attribute store; ``items()`` lists the published names in the order the 3.10
``debug.c`` / ``zbud.c`` create the files, for the glue to expose.  The two
directories share some names (``eph_zbytes``...) with different meanings:
zcache counts compressed bytes, zbud counts them plus the tmem handle stored
in front of each zpage, hence two objects.
"""

from __future__ import annotations

from typing import Any, Iterator


class _Counters:
    __slots__: tuple[str, ...] = ()
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
    """debugfs ``zcache/``: tmem objects, flushes, put failures, occupancy.

    The fields are the files, size_t ones in 3.10 debug.c order (with
    zero_filled_pages), then ``same_filled_pages`` (beyond Linux, right after
    zero_filled_pages: pages of one repeated non-zero 8-byte word, stored as
    metadata only, docs/zcache.md), then the u64 files; last the values the
    kernel keeps but never publishes.
    """

    obj_count: int
    obj_count_max: int
    objnode_count: int
    objnode_count_max: int
    flush_total: int
    flush_found: int
    flobj_total: int
    flobj_found: int
    failed_eph_puts: int
    failed_pers_puts: int
    failed_getfreepages: int
    failed_alloc: int
    put_to_flush: int
    compress_poor: int
    mean_compress_poor: int
    eph_ate_tail: int
    eph_ate_tail_failed: int
    pers_ate_eph: int
    pers_ate_eph_failed: int
    evicted_eph_zpages: int
    evicted_eph_pageframes: int
    eph_pageframes: int
    eph_pageframes_max: int
    pers_pageframes: int
    pers_pageframes_max: int
    eph_zpages: int
    eph_zpages_max: int
    pers_zpages: int
    pers_zpages_max: int
    last_active_file_pageframes: int
    last_inactive_file_pageframes: int
    last_active_anon_pageframes: int
    last_inactive_anon_pageframes: int
    eph_nonactive_puts_ignored: int
    pers_nonactive_puts_ignored: int
    zero_filled_pages: int
    same_filled_pages: int
    eph_zbytes: int
    eph_zbytes_max: int
    pers_zbytes: int
    pers_zbytes_max: int
    # kept by the kernel but never published
    zero_filled_pages_max: int

    __slots__ = tuple(__annotations__)
    NAMES = __slots__[:-1]


#: zcache/ files in creation order
ZCACHE_NAMES: tuple[str, ...] = ZcacheCounters.NAMES
#: kept by the kernel but never published
ZCACHE_PRIVATE: tuple[str, ...] = ZcacheCounters.__slots__[len(ZCACHE_NAMES):]


def _is_gauge(name: str) -> bool:
    """zbud/ values that are levels of the allocator, read from it when asked."""
    return "cumul" not in name and "evicted" not in name and "zombie" not in name


class _NoGauges:
    """Gauges before an allocator is bound: all zero."""

    def __getattr__(self, name: str) -> int:
        return 0


def _gauge(name: str) -> property:
    return property(lambda self: getattr(self._source, name),
                    doc=f"zbud/{name}, read from the allocator")


class ZbudCounters(_Counters):
    """debugfs ``zbud/``: the allocator's own view (sizes include the tmem handle).

    The fields are the files in zbud_debugfs_init order. Cumulative counters
    are plain ints. The levels (zpages, zbytes, pageframes, buddied/unbuddied
    counts) are read from the bound allocator when asked, so the hot path
    does not keep a second copy of them.
    """

    eph_zbytes: int
    eph_cumul_zbytes: int
    pers_zbytes: int
    pers_cumul_zbytes: int
    eph_cumul_zpages: int
    eph_evicted_pageframes: int
    eph_zpages: int
    eph_pageframes: int
    eph_buddied_count: int
    eph_unbuddied_count: int
    pers_cumul_zpages: int
    pers_evicted_pageframes: int
    pers_zpages: int
    pers_pageframes: int
    pers_buddied_count: int
    pers_unbuddied_count: int
    pers_zombie_count: int
    _source: Any

    __slots__ = tuple(n for n in __annotations__ if n == "_source" or not _is_gauge(n))
    NAMES = tuple(n for n in __annotations__ if n != "_source")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)
        self._source = _NoGauges()

    def bind(self, source: Any) -> None:
        """Read the gauges from ``source`` (an allocator) from now on."""
        self._source = source

    def reset(self) -> None:
        source = self._source
        super().reset()
        self._source = source


#: zbud/ files in zbud_debugfs_init order
ZBUD_NAMES: tuple[str, ...] = ZbudCounters.NAMES
#: the zbud/ files that are the allocator's levels
ZBUD_GAUGES: tuple[str, ...] = tuple(n for n in ZBUD_NAMES if _is_gauge(n))

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
