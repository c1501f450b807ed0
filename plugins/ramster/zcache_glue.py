"""zcache's half of RAMster (the CONFIG_RAMSTER parts of zcache-main.c and tmem.c).

``link(zcache, ramster)`` turns one zcache instance into a RAMster node: it
implements :class:`ZcacheSide` on top of the instance's tmem and zbud, and
routes the few tmem operations that must see remote entries — a get that
finds a :class:`RemotePampd`, a flush or duplicate put that frees one, an
object or pool that goes away with remote pages — through RAMster, as
Linux's ``tmem_pamops`` extras (``is_remote``, ``repatriate``, ``free_obj``)
do. The routing is installed on that one instance only, so a zcache without
RAMster keeps its hot path untouched. RAMster needs zbud (pageframes of two
zpages); zsmalloc has no pageframes to remotify.
"""

from __future__ import annotations

from typing import Any, Callable

from kmodemu.kernel.printk import KERN_ERR

from .ramster import Ramster
from .zcache_side import Oid, RemotePampd, TmemHandle, Zombie

LOCAL_CLIENT = 0xFFFF
#: zcache.h: the remote clients (node numbers) and pools per client zcache keeps
MAX_CLIENTS = 16
MAX_POOLS_PER_CLIENT = 16
_U64 = (1 << 64) - 1


def oid_tuple(oid: int) -> Oid:
    return oid & _U64, (oid >> 64) & _U64, oid >> 128


def oid_int(oid: Oid) -> int:
    return (oid[0] & _U64) | (oid[1] & _U64) << 64 | (oid[2] & _U64) << 128


class RemoteAwarePamops:
    """The instance's pamops, with remote descriptors kept away from the allocator."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any):
        self.inner = inner

    def get_data(self, pampd: Any, pool: Any) -> bytes | None:
        if type(pampd) is RemotePampd:
            return None  # gets of remote entries are routed before tmem reads them
        return self.inner.get_data(pampd, pool)

    def get_data_and_free(self, pampd: Any, pool: Any) -> bytes | None:
        if type(pampd) is RemotePampd:
            return None
        return self.inner.get_data_and_free(pampd, pool)

    def free(self, pampd: Any, pool: Any) -> None:
        if type(pampd) is RemotePampd:
            if pampd.local is not None:
                self.inner.free(pampd.local, pool)
            return
        self.inner.free(pampd, pool)


class ZcacheGlue:
    """``ZcacheSide`` over a zcache instance (``Zcache`` of plugins/zcache/main.py)."""

    def __init__(self, zcache: Any):
        self.zcache = zcache
        self.tmem = zcache.tmem
        self.zpool = zcache.zpool
        self.ramster: Ramster | None = None

    # -- pools ------------------------------------------------------------------------
    def _pool(self, cli_id: int, pool_id: int) -> Any:
        return self.tmem.get_pool(cli_id, pool_id)

    def is_ephemeral(self, pool_id: int) -> bool | None:
        pool = self._pool(LOCAL_CLIENT, pool_id)
        return None if pool is None else not pool.persistent

    # -- this node's pages ---------------------------------------------------------------
    def make_zombie_lru(self, eph: bool) -> list[Zombie]:
        out = []
        for (cli, pool_id, oid, index), data in self.zpool.make_zombie_lru(eph):
            out.append(Zombie(TmemHandle(cli, pool_id, oid_tuple(oid), index), data))
        return out

    def lookup(self, pool_id: int, oid: Oid, index: int) -> Any:
        pool = self._pool(LOCAL_CLIENT, pool_id)
        return None if pool is None else self.tmem.peek(pool, oid_int(oid), index)

    def replace(self, pool_id: int, oid: Oid, index: int, pampd: Any) -> bool:
        """tmem_replace: the new pampd in place; old local data freed (never a remote one)."""
        pool = self._pool(LOCAL_CLIENT, pool_id)
        if pool is None:
            return False
        key = oid_int(oid)
        old = self.tmem.peek(pool, key, index)
        if old is None:
            return False
        pool.objs[key][index] = pampd
        if type(old) is not RemotePampd:
            self.zcache.pamops.inner.free(old, pool)
        return True

    def delete(self, pool_id: int, oid: Oid, index: int) -> None:
        pool = self._pool(LOCAL_CLIENT, pool_id)
        if pool is not None:
            old = self.tmem.take(pool, oid_int(oid), index)
            if old is not None and type(old) is not RemotePampd:
                self.zcache.pamops.inner.free(old, pool)

    def pampd_create(self, handle: TmemHandle, size: int) -> Any:
        pool = self._pool(LOCAL_CLIENT, handle.pool_id)
        if pool is None:
            return None
        return self.zpool.create(not pool.persistent, bytes(size), oid_int(handle.oid),
                                 handle.index, handle.pool_id, LOCAL_CLIENT)

    def copy_to_zbud(self, pampd: Any, data: bytes) -> None:
        self.zpool.write(pampd, data)

    def decompress(self, data: bytes) -> bytes:
        return self.zcache.compressor.decompress(data)

    # -- foreign pages ----------------------------------------------------------------
    def _foreign_pool(self, cli: int, pool_id: int, eph: bool) -> Any:
        """zcache_autocreate_pool: refused before anything is created for a bad client or
        pool id, and for an ephemeral put into a persistent pool (Linux's checks)."""
        if not (0 <= cli < MAX_CLIENTS and 0 <= pool_id < MAX_POOLS_PER_CLIENT):
            return None
        pool = self._pool(cli, pool_id)
        if pool is not None and pool.persistent and eph:
            if self.ramster is not None:
                self.ramster.kernel.printk("zcache_autocreate_pool: type mismatch", KERN_ERR)
            return None
        if pool is None:
            tmem = self.tmem
            if tmem._client(cli) is None:
                tmem.new_client(cli)
            # ramster asks for exactly the sender's pool id; create up to it
            while self._pool(cli, pool_id) is None:
                got = self.zcache.new_pool(cli, 0 if eph else 1)
                if got < 0 or got > pool_id:
                    return None
            pool = self._pool(cli, pool_id)
        return pool

    def foreign_put(self, client_id: int, pool_id: int, oid: Oid, index: int, data: bytes,
                    eph: bool) -> int:
        pool = self._foreign_pool(client_id, pool_id, eph)
        if pool is None:
            return -1
        key = oid_int(oid)
        pampd = self.zpool.create(eph, data, key, index, pool_id, client_id)
        if pampd is None:
            if eph:
                self.zcache.zc.failed_eph_puts += 1
            else:
                self.zcache.zc.failed_pers_puts += 1
            return -1
        if self.tmem.peek(pool, key, index) is not None:
            self._count(eph, -1)  # the duplicate's old copy is freed by tmem.put
        self.tmem.put(pool, key, index, pampd)
        self._count(eph, 1)
        return 0

    def _count(self, eph: bool, n: int) -> None:
        if self.ramster is not None:
            self.ramster.count_foreign_pages(eph, n)

    def foreign_get(self, client_id: int, pool_id: int, oid: Oid, index: int,
                    free: bool) -> bytes | None:
        pool = self._pool(client_id, pool_id)
        if pool is None:
            return None
        key = oid_int(oid)
        pampd = self.tmem.take(pool, key, index) if free else self.tmem.peek(pool, key, index)
        if pampd is None:
            return None
        buf = self.zpool.read(pampd)
        data = None if buf is None else bytes(buf)
        if free:
            self.zcache.pamops.inner.free(pampd, pool)
            self._count(not pool.persistent, -1)
        return data

    def foreign_flush_page(self, client_id: int, pool_id: int, oid: Oid, index: int) -> int:
        pool = self._pool(client_id, pool_id)
        if pool is None:
            return -1
        ret = self.zcache.flush_page(client_id, pool_id, oid_int(oid), index)
        if ret >= 0:
            self._count(not pool.persistent, -1)
        return ret

    def foreign_flush_object(self, client_id: int, pool_id: int, oid: Oid) -> int:
        pool = self._pool(client_id, pool_id)
        if pool is None:
            return -1
        key = oid_int(oid)
        n = len(pool.objs.get(key, ()))
        ret = self.zcache.flush_object(client_id, pool_id, key)
        if ret >= 0:
            self._count(not pool.persistent, -n)
        return ret


def link(zcache: Any, ramster_factory: Callable[[ZcacheGlue], Ramster]) -> Ramster:
    """Make ``zcache`` a RAMster node; returns the RAMster instance."""
    glue = ZcacheGlue(zcache)
    rs = ramster_factory(glue)
    glue.ramster = rs
    tmem = zcache.tmem
    zcache.pamops = tmem.pamops = RemoteAwarePamops(zcache.pamops)
    peek, take = tmem.peek, tmem.take
    orig_get, orig_put = zcache.get, zcache.put
    orig_flush_page, orig_flush_object = zcache.flush_page, zcache.flush_object
    orig_destroy = zcache.destroy_pool
    evict_flush = zcache.zpool.flush

    def get(pool: Any, oid: int, index: int, get_and_free: int) -> bytes | None:
        if pool.objs:
            pampd = peek(pool, oid, index)
            if type(pampd) is RemotePampd:
                free = get_and_free == 1 or (get_and_free == 0 and not pool.persistent)
                while True:  # tmem_repatriate, with its -EAGAIN retry
                    ret, page = rs.repatriate(pool.pool_id, oid_tuple(oid), index, pampd, free)
                    if ret != -11:
                        return page if ret == 0 else None
                    pampd = peek(pool, oid, index)
                    if type(pampd) is not RemotePampd:
                        return orig_get(pool, oid, index, get_and_free)
        return orig_get(pool, oid, index, get_and_free)

    def free_remote(pool: Any, oid: int, index: int, pampd: RemotePampd) -> None:
        take(pool, oid, index)
        local = rs.pampd_free(pampd, pool.pool_id, oid_tuple(oid), index)
        if local is not None:
            zcache.pamops.inner.free(local, pool)
        if oid not in pool.objs:
            rs.free_obj(pool.pool_id, oid_tuple(oid), False)

    def put(pool: Any, oid: int, index: int, data: bytes) -> int:
        if pool.client.cli_id == LOCAL_CLIENT and pool.objs:
            pampd = peek(pool, oid, index)
            if type(pampd) is RemotePampd:  # a duplicate put over a remote page
                free_remote(pool, oid, index, pampd)
        return orig_put(pool, oid, index, data)

    def flush_page(cli_id: int, pool_id: int, oid: int, index: int) -> int:
        pool = tmem.get_pool(cli_id, pool_id)
        if cli_id == LOCAL_CLIENT and pool is not None and pool.objs:
            pampd = peek(pool, oid, index)
            if type(pampd) is RemotePampd:
                zc = zcache.zc
                zc.flush_total += 1
                zc.flush_found += 1
                free_remote(pool, oid, index, pampd)
                return 0
        return orig_flush_page(cli_id, pool_id, oid, index)

    def flush_object(cli_id: int, pool_id: int, oid: int) -> int:
        pool = tmem.get_pool(cli_id, pool_id)
        had_remote = False
        if cli_id == LOCAL_CLIENT and pool is not None:
            obj = pool.objs.get(oid)
            if obj:
                for index, pampd in list(obj.items()):
                    if type(pampd) is RemotePampd:
                        had_remote = True
                        take(pool, oid, index)
                        rs.pampd_free(pampd, pool_id, None, index)
        ret = orig_flush_object(cli_id, pool_id, oid)
        if had_remote:
            rs.free_obj(pool_id, oid_tuple(oid), False)
            ret = 0
        return ret

    def destroy_pool(cli_id: int, pool_id: int) -> int:
        pool = tmem.get_pool(cli_id, pool_id) if pool_id >= 0 else None
        if cli_id == LOCAL_CLIENT and pool is not None:
            for oid, obj in list(pool.objs.items()):
                for index, pampd in list(obj.items()):
                    if type(pampd) is RemotePampd:
                        take(pool, oid, index)
                        rs.pampd_free(pampd, pool_id, None, index)
                rs.free_obj(pool_id, oid_tuple(oid), True)
        elif pool is not None:  # a foreign pool: its pages stop being foreign pages
            n = sum(len(o) for o in pool.objs.values())
            glue._count(not pool.persistent, -n)
        return orig_destroy(cli_id, pool_id)

    def flush_evicted(cli_id: int, pool_id: int, oid: int, index: int) -> int:
        """zbud evicted an ephemeral pageframe: foreign pages in it stop being foreign."""
        ret = evict_flush(cli_id, pool_id, oid, index)
        if ret >= 0 and cli_id != LOCAL_CLIENT:
            glue._count(True, -1)
        return ret

    zcache.get, zcache.put = get, put
    zcache.flush_page, zcache.flush_object, zcache.destroy_pool = (
        flush_page, flush_object, destroy_pool)
    zcache.zpool.flush = flush_evicted
    return rs
