"""What RAMster needs from zcache, and what zcache calls back (ramster.h's two halves).

RAMster is linked into zcache: zcache owns tmem, zbud and the compressor;
RAMster moves compressed zpages between nodes. ``ZcacheSide`` is the part of
zcache RAMster calls; :class:`plugins.ramster.ramster.Ramster` offers the
calls zcache makes back (``is_remote``, ``repatriate``, ``pampd_free``,
``free_obj``, ``count_foreign_pages``). Pampds are opaque to RAMster except
the remote descriptors it makes itself (:class:`RemotePampd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

Oid = tuple[int, int, int]


@dataclass(frozen=True)
class TmemHandle:
    """``struct tmem_handle``: where a zpage lives in tmem (zbud stores it with the data)."""

    client_id: int
    pool_id: int
    oid: Oid
    index: int


class Zombie(NamedTuple):
    """One zpage of a pageframe taken off the LRU for remotification: handle + compressed bytes."""

    handle: TmemHandle
    data: bytes


class RemotePampd:
    """RAMster's "fake pampd": the tmem entry of a page whose data is on another node.

    ``packed`` is Linux's 32-bit layout (ramster.h): bit 1 intransit, bit 2
    remote, bits 3–10 node, 11–23 size, 24–31 byte-sum checksum. ``local`` is
    the local space reserved for a persistent repatriation in transit.
    """

    __slots__ = ("node", "size", "cksum", "local")

    def __init__(self, node: int, size: int, cksum: int, local: Any = None):
        self.node = node
        self.size = size
        self.cksum = cksum
        self.local = local

    @property
    def intransit(self) -> bool:
        return self.local is not None

    @property
    def packed(self) -> int:
        return ((1 << 1 if self.intransit else 0) | (1 << 2) | ((self.node & 0xFF) << 3)
                | ((self.size & 0x1FFF) << 11) | ((self.cksum & 0xFF) << 24))

    def __repr__(self) -> str:
        return (f"RemotePampd(node={self.node}, size={self.size}, cksum={self.cksum}"
                f"{', intransit' if self.intransit else ''})")


class ZcacheSide(Protocol):
    """zcache as RAMster uses it. Pool ids are LOCAL_CLIENT's unless a client is given."""

    # -- this node's pages --------------------------------------------------------
    def make_zombie_lru(self, eph: bool) -> list[Zombie]:
        """zbud_make_zombie_lru: the LRU pageframe's zpages (0–2), off the LRU for good."""
        ...

    def is_ephemeral(self, pool_id: int) -> bool | None:
        """None if LOCAL_CLIENT has no such pool."""
        ...

    def lookup(self, pool_id: int, oid: Oid, index: int) -> Any:
        """The entry's pampd, or None."""
        ...

    def replace(self, pool_id: int, oid: Oid, index: int, pampd: Any) -> bool:
        """tmem_replace: free the old pampd's local data, install ``pampd``; False if gone."""
        ...

    def delete(self, pool_id: int, oid: Oid, index: int) -> None:
        """Remove the entry without any remote action (the caller has dealt with it)."""
        ...

    def pampd_create(self, handle: TmemHandle, size: int) -> Any:
        """Reserve local space for ``size`` compressed bytes (preload); None when there is none."""
        ...

    def copy_to_zbud(self, pampd: Any, data: bytes) -> None:
        """Fill space reserved by ``pampd_create``."""
        ...

    def decompress(self, data: bytes) -> bytes:
        ...

    # -- pages of other nodes ("foreign") ------------------------------------------
    def foreign_put(self, client_id: int, pool_id: int, oid: Oid, index: int, data: bytes,
                    eph: bool) -> int:
        """Store already-compressed bytes, creating the pool; 0, or <0 when refused."""
        ...

    def foreign_get(self, client_id: int, pool_id: int, oid: Oid, index: int,
                    free: bool) -> bytes | None:
        ...

    def foreign_flush_page(self, client_id: int, pool_id: int, oid: Oid, index: int) -> int:
        ...

    def foreign_flush_object(self, client_id: int, pool_id: int, oid: Oid) -> int:
        ...
