"""The shim's data path (``drivers/xen/tmem.c``, Linux 3.10): cleancache and frontswap ops as hypercalls.

Each op fills one ``struct tmem_op`` and makes hypercall 38. The mapping is
Linux's: a private ephemeral pool per filesystem (``init_fs``), a shared one
for a filesystem with a uuid (lo = bytes 0-7, hi = 8-15 as little-endian
u64), one persistent private pool for every swap type, created at the first
``frontswap init``; a swap entry's object is ``type << 4 | offset & 0xF`` and
its index ``offset >> 4`` (SWIZ_BITS 4), so invalidating an area flushes 16
objects. A page index or swap offset that does not fit in 32 bits is skipped
(a put does nothing, a get misses). Hypercall 1 is success; anything else a
miss or a failed store (frontswap then writes the page to swap).
"""

from __future__ import annotations

from typing import Any, Callable

from kmodemu.xen import abi

_PUT, _GET = abi.TMEM_PUT_PAGE, abi.TMEM_GET_PAGE
_FLUSH_PAGE, _FLUSH_OBJECT = abi.TMEM_FLUSH_PAGE, abi.TMEM_FLUSH_OBJECT
SWIZ_BITS = 4
SWIZ_MASK = (1 << SWIZ_BITS) - 1
U32 = 0xFFFFFFFF
PRIVATE_UUID = (0, 0)


def filekey_oid(key: bytes) -> tuple[int, int, int]:
    """The 24-byte cleancache filekey as ``struct tmem_oid`` (three u64, little-endian)."""
    return (int.from_bytes(key[0:8], "little"), int.from_bytes(key[8:16], "little"),
            int.from_bytes(key[16:24], "little"))


class Hypercalls:
    """``xen_tmem_op``/``xen_tmem_new_pool``: one reusable op struct, like Linux's on-stack one."""

    __slots__ = ("_call", "_op")

    def __init__(self, tmem_op: Callable[[abi.TmemOp], int]):
        self._call = tmem_op
        self._op = abi.TmemOp(abi.TMEM_PUT_PAGE)

    def page_op(self, cmd: int, pool_id: int, oid: tuple[int, int, int], index: int,
                page: Any) -> int:
        op = self._op
        op.cmd = cmd
        op.pool_id = pool_id
        op.oid = oid
        op.index = index
        op.gmfn = page
        rc = self._call(op)
        op.gmfn = None
        return rc

    def new_pool(self, uuid: tuple[int, int], flags: int) -> int:
        """``xen_tmem_new_pool``: flags | pagesize bits | spec version, as Linux builds them."""
        persistent = bool(flags & abi.TMEM_POOL_PERSIST)
        shared = bool(flags & abi.TMEM_POOL_SHARED)
        op = abi.TmemOp(abi.TMEM_NEW_POOL, uuid=uuid, flags=abi.pool_flags(persistent, shared))
        rc = self._call(op)
        return rc

    def destroy_pool(self, pool_id: int) -> int:
        return self._call(abi.TmemOp(abi.TMEM_DESTROY_POOL, pool_id))


class TmemCleancacheOps:
    """``tmem_cleancache_ops``."""

    __slots__ = ("hc", "_key", "_oid", "_page_op")

    def __init__(self, hc: Hypercalls):
        self.hc = hc
        self._key: bytes | None = None
        self._oid = (0, 0, 0)
        self._page_op = hc.page_op

    def _oid_of(self, key: bytes) -> tuple[int, int, int]:
        """The oid of ``key``; consecutive pages of one file reuse the last conversion."""
        if key != self._key:
            self._key, self._oid = key, filekey_oid(key)
        return self._oid

    def init_fs(self, pagesize: int) -> int:
        if pagesize != abi.PAGE_SIZE:
            return -1
        return self.hc.new_pool(PRIVATE_UUID, 0)

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        if pagesize != abi.PAGE_SIZE:
            return -1
        return self.hc.new_pool(abi.uuid_halves(bytes(uuid)), abi.TMEM_POOL_SHARED)

    # the per-page ops inline _oid_of's cache test: consecutive pages of one file
    def put_page(self, pool_id: int, key: bytes, index: int, page: Any) -> None:
        if pool_id < 0 or index > U32:
            return
        if key != self._key:
            self._key, self._oid = key, filekey_oid(key)
        self._page_op(_PUT, pool_id, self._oid, index, page)

    def get_page(self, pool_id: int, key: bytes, index: int, page: Any) -> int:
        if pool_id < 0 or index > U32:
            return -1
        if key != self._key:
            self._key, self._oid = key, filekey_oid(key)
        return 0 if self._page_op(_GET, pool_id, self._oid, index, page) == 1 else -1

    def invalidate_page(self, pool_id: int, key: bytes, index: int) -> None:
        if pool_id < 0 or index > U32:
            return
        self._page_op(_FLUSH_PAGE, pool_id, self._oid_of(key), index, None)

    def invalidate_inode(self, pool_id: int, key: bytes) -> None:
        if pool_id < 0:
            return
        self._page_op(_FLUSH_OBJECT, pool_id, self._oid_of(key), 0, None)

    def invalidate_fs(self, pool_id: int) -> None:
        if pool_id < 0:
            return
        self.hc.destroy_pool(pool_id)


class TmemFrontswapOps:
    """``tmem_frontswap_ops``: one persistent pool for all swap types."""

    __slots__ = ("hc", "poolid")

    def __init__(self, hc: Hypercalls):
        self.hc = hc
        self.poolid = -1

    def init(self, type: int) -> None:
        if self.poolid < 0:
            self.poolid = self.hc.new_pool(PRIVATE_UUID, abi.TMEM_POOL_PERSIST)

    def store(self, type: int, offset: int, page: Any) -> int:
        pool = self.poolid
        if pool < 0 or offset > U32:
            return -1
        rc = self.hc.page_op(_PUT, pool, ((type << SWIZ_BITS) | (offset & SWIZ_MASK), 0, 0),
                             offset >> SWIZ_BITS, page)
        return 0 if rc == 1 else -1

    def load(self, type: int, offset: int, page: Any) -> int:
        pool = self.poolid
        if pool < 0 or offset > U32:
            return -1
        rc = self.hc.page_op(_GET, pool, ((type << SWIZ_BITS) | (offset & SWIZ_MASK), 0, 0),
                             offset >> SWIZ_BITS, page)
        return 0 if rc == 1 else -1

    def invalidate_page(self, type: int, offset: int) -> None:
        pool = self.poolid
        if pool < 0 or offset > U32:
            return
        self.hc.page_op(_FLUSH_PAGE, pool, ((type << SWIZ_BITS) | (offset & SWIZ_MASK), 0, 0),
                        offset >> SWIZ_BITS, None)

    def invalidate_area(self, type: int) -> None:
        pool = self.poolid
        if pool < 0:
            return
        for ind in range(SWIZ_MASK, -1, -1):
            self.hc.page_op(_FLUSH_OBJECT, pool, ((type << SWIZ_BITS) | ind, 0, 0), 0, None)
