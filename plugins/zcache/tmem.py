"""The tmem core: clients, pools, objects and pages, keyed by (pool, oid, index).

A pampd ("PAM page descriptor") is an opaque int owned by a ``pamops`` object,
which tmem calls to read or free it: ``get_data(pampd, pool)``,
``get_data_and_free(pampd, pool)`` (both return the page bytes, or None) and
``free(pampd, pool)``.  The caller creates the pampd (compress + allocate)
before ``put``, as zcache does.

Modelled against Linux (zcache2 tmem.c):

* An oid (3 x u64) is one packed int, ``oid0 | oid1 << 64 | oid2 << 128``:
  ``int.from_bytes(filekey, "little")`` for cleancache, the swizzled type for
  frontswap.  Packed ints cost less memory than tuples.
* A pool keeps its objects in one dict (Linux: 256 hash buckets of rb-trees);
  an object is a dict ``index -> pampd`` (Linux: a 64-way radix tree of
  objnodes).  No lookup order is observable, so only the counts are modelled.
* ``objnode_count`` follows what the tree would hold: an object whose largest
  index needs height h (64**h > index; index 0 alone lives in the root
  pointer, height 0) has, at each level k = 1..h, one objnode per distinct
  ``index >> 6k``.  Objects with all indices below 64 need 0 or 1 node and are
  counted from their size; larger ones keep per-level node counts.  Linux
  shrinks the height when the root keeps only slot 0, and so does the model.
* Operations are atomic (no concurrency), so there is no "stump" or dying
  page to observe, and ``create_finish`` has nothing to do.
"""

from __future__ import annotations

from typing import Protocol

LOCAL_CLIENT = 0xFFFF
MAX_CLIENTS = 16
MAX_POOLS_PER_CLIENT = 16

TMEM_POOL_PERSIST = 1
TMEM_POOL_SHARED = 2
TMEM_POOL_PRECOMPRESSED = 4

OBJNODE_TREE_MAP_SHIFT = 6
OBJNODE_TREE_MAP_SIZE = 1 << OBJNODE_TREE_MAP_SHIFT
#: page indices are u32
MAX_INDEX = 0xFFFFFFFF
_U64 = (1 << 64) - 1


class Pamops(Protocol):
    def get_data(self, pampd: int, pool: "Pool") -> bytes | None: ...
    def get_data_and_free(self, pampd: int, pool: "Pool") -> bytes | None: ...
    def free(self, pampd: int, pool: "Pool") -> None: ...


def oid_pack(oid0: int, oid1: int = 0, oid2: int = 0) -> int:
    """Three u64 words -> the packed oid used as a dict key."""
    return (oid0 & _U64) | (oid1 & _U64) << 64 | (oid2 & _U64) << 128


def oid_unpack(oid: int) -> tuple[int, int, int]:
    return oid & _U64, (oid >> 64) & _U64, oid >> 128


def oid_from_key(key: bytes) -> int:
    """A 24-byte cleancache filekey reinterpreted as 3 x u64 little-endian."""
    return int.from_bytes(key, "little")


class Pool:
    """A tmem pool: ephemeral or persistent, private or (flag only) shared."""

    __slots__ = ("client", "pool_id", "persistent", "shared", "objs", "trees")

    def __init__(self, client: "Client", pool_id: int, flags: int):
        self.client = client
        self.pool_id = pool_id
        self.persistent = bool(flags & TMEM_POOL_PERSIST)
        self.shared = bool(flags & TMEM_POOL_SHARED)
        #: oid -> {index: pampd}
        self.objs: dict[int, dict[int, int]] = {}
        #: oid -> objnodes per level, only for objects with an index >= 64
        self.trees: dict[int, list[dict[int, int]]] = {}

    @property
    def obj_count(self) -> int:
        return len(self.objs)

    @property
    def ephemeral(self) -> bool:
        return not self.persistent

    def page_count(self) -> int:
        return sum(len(obj) for obj in self.objs.values())

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kind = "persistent" if self.persistent else "ephemeral"
        return f"<Pool {self.client.cli_id}:{self.pool_id} {kind} objs={len(self.objs)}>"


class Client:
    """LOCAL_CLIENT (the host kernel) or one of the remote (ramster) clients."""

    __slots__ = ("cli_id", "pools", "allocated")

    def __init__(self, cli_id: int):
        self.cli_id = cli_id
        self.pools: list[Pool | None] = [None] * MAX_POOLS_PER_CLIENT
        self.allocated = False


# ------------------------------------------------------------ objnode model

def _height(index: int) -> int:
    """Tree height needed for ``index`` (index 0 fits in the root pointer)."""
    return (index.bit_length() + OBJNODE_TREE_MAP_SHIFT - 1) // OBJNODE_TREE_MAP_SHIFT


def _small_nodes(obj: dict) -> int:
    """Objnodes of an object whose indices are all below 64."""
    n = len(obj)
    return 0 if n == 0 or (n == 1 and 0 in obj) else 1


def _tree_add(levels: list[dict[int, int]], index: int) -> int:
    """Insert ``index`` into the per-level node counts; returns nodes created."""
    added = 0
    while len(levels) < _height(index):
        levels.append({0: 1})  # a new root whose slot 0 is the old root
        added += 1
    shift = OBJNODE_TREE_MAP_SHIFT
    for level in levels:
        node = index >> shift
        used = level.get(node, 0)
        level[node] = used + 1
        if used:
            break
        added += 1
        shift += OBJNODE_TREE_MAP_SHIFT
    return added


def _tree_del(levels: list[dict[int, int]], index: int) -> int:
    """Remove ``index``; returns nodes freed, including a shrunk root."""
    freed = 0
    shift = OBJNODE_TREE_MAP_SHIFT
    for level in levels:
        node = index >> shift
        used = level[node] - 1
        if used:
            level[node] = used
            break
        del level[node]
        freed += 1
        shift += OBJNODE_TREE_MAP_SHIFT
    else:
        levels.clear()
        return freed
    while len(levels) >= 2 and levels[-1][0] == 1 and 0 in levels[-2]:
        levels.pop()
        freed += 1
    return freed


def _tree_build(indices) -> list[dict[int, int]]:
    levels: list[dict[int, int]] = [{} for _ in range(_height(max(indices)))]
    for index in indices:
        _tree_add(levels, index)
    return levels


def _tree_nodes(levels: list[dict[int, int]]) -> int:
    return sum(len(level) for level in levels)


def obj_objnodes(pool: Pool, oid: int) -> int:
    """Objnodes the radix tree of one object would hold (tests, debugging)."""
    levels = pool.trees.get(oid)
    if levels is not None:
        return _tree_nodes(levels)
    obj = pool.objs.get(oid)
    return _small_nodes(obj) if obj else 0


# ------------------------------------------------------------------- core

class Tmem:
    """All clients and pools of one zcache instance, and the tmem operations.

    ``zc`` is the zcache/ counter object: tmem keeps obj_count, objnode_count
    and their maxima (the kernel's hostops do that on obj/objnode alloc/free).
    """

    __slots__ = ("pamops", "zc", "clients", "local")

    def __init__(self, pamops: Pamops, zc):
        self.pamops = pamops
        self.zc = zc
        self.clients: dict[int, Client] = {}
        self.local = self.clients[LOCAL_CLIENT] = Client(LOCAL_CLIENT)
        self.local.allocated = True

    # ---------------------------------------------------- clients and pools

    def _client(self, cli_id: int) -> Client | None:
        cli = self.clients.get(cli_id)
        if cli is None:
            if cli_id != LOCAL_CLIENT and not 0 <= cli_id < MAX_CLIENTS:
                return None
            cli = self.clients[cli_id] = Client(cli_id)
        return cli

    def new_client(self, cli_id: int) -> int:
        """Mark a remote client allocated: 0, or -1 if bad or already there."""
        cli = self._client(cli_id)
        if cli is None or cli.allocated:
            return -1
        cli.allocated = True
        return 0

    def new_pool(self, cli_id: int, flags: int) -> int:
        """Create a pool in the lowest free slot; its id, or -1 (bad client, all 16 used)."""
        cli = self._client(cli_id)
        if cli is None:
            return -1
        pools = cli.pools
        for pool_id in range(MAX_POOLS_PER_CLIENT):
            if pools[pool_id] is None:
                pools[pool_id] = Pool(cli, pool_id, flags)
                return pool_id
        return -1

    def get_pool(self, cli_id: int, pool_id: int) -> Pool | None:
        cli = self.clients.get(cli_id)
        if cli is None or not 0 <= pool_id < MAX_POOLS_PER_CLIENT:
            return None
        return cli.pools[pool_id]

    def destroy_pool(self, cli_id: int, pool_id: int) -> int:
        """Flush every page of the pool and free its slot: 0, or -1 if no such pool."""
        pool = self.get_pool(cli_id, pool_id)
        if pool is None:
            return -1
        pool.client.pools[pool_id] = None
        self._flush_pool(pool)
        return 0

    def _flush_pool(self, pool: Pool) -> None:
        free = self.pamops.free
        zc = self.zc
        nodes = 0
        objs = pool.objs
        for oid, obj in objs.items():
            nodes += obj_objnodes(pool, oid)
            for pampd in obj.values():
                free(pampd, pool)
        zc.obj_count -= len(objs)
        zc.objnode_count -= nodes
        pool.objs = {}
        pool.trees = {}

    # ------------------------------------------------------- page operations

    def put(self, pool: Pool, oid: int, index: int, pampd: int) -> int:
        """Associate ``pampd`` with the handle; a duplicate put frees the old pampd first."""
        objs = pool.objs
        obj = objs.get(oid)
        zc = self.zc
        if obj is None:
            obj = objs[oid] = {}
            v = zc.obj_count + 1
            zc.obj_count = v
            if v > zc.obj_count_max:
                zc.obj_count_max = v
        else:
            n = len(obj)
            if n > 1 and index < OBJNODE_TREE_MAP_SIZE and oid not in pool.trees:
                # common case: a small object that keeps its one objnode
                old = obj.setdefault(index, pampd)
                if len(obj) == n:  # dup put: the old data goes first
                    obj[index] = pampd
                    self.pamops.free(old, pool)
                return 0
            prev = obj.get(index)
            if prev is not None:
                # dup put: the tree keeps its shape, the old data goes first
                obj[index] = pampd
                self.pamops.free(prev, pool)
                return 0
        levels = pool.trees.get(oid)
        if levels is not None:
            added = _tree_add(levels, index)
        elif index < OBJNODE_TREE_MAP_SIZE:
            added = 0 if (not obj and index == 0) else 1 - _small_nodes(obj)
        else:
            before = _small_nodes(obj)
            levels = pool.trees[oid] = _tree_build([*obj, index])
            added = _tree_nodes(levels) - before
        obj[index] = pampd
        if added:
            v = zc.objnode_count + added
            zc.objnode_count = v
            if v > zc.objnode_count_max:
                zc.objnode_count_max = v
        return 0

    def unlink(self, pool: Pool, oid: int, obj: dict, index: int) -> None:
        """Account for ``index`` having left ``obj`` (already popped): objnodes, and
        the object itself once empty.  Not needed when a small object (no
        index >= 64) keeps two or more pages; ``take`` relies on that."""
        zc = self.zc
        levels = pool.trees.get(oid)
        if levels is not None:
            freed = _tree_del(levels, index)
            if len(levels) <= 1:
                del pool.trees[oid]
                freed += _tree_nodes(levels) - _small_nodes(obj)
        else:
            # obj had index; count nodes before (with it) and after (without it)
            n = len(obj)
            before = 0 if (n == 0 and index == 0) else 1
            freed = before - _small_nodes(obj)
        if freed:
            zc.objnode_count -= freed
        if not obj:
            del pool.objs[oid]
            zc.obj_count -= 1

    def take(self, pool: Pool, oid: int, index: int) -> int | None:
        """Unlink the handle and return its pampd (the freeing half of ``get``), or None.

        The caller owns the pampd from then on: it reads and frees it, as
        ``pamops.get_data_and_free`` does.
        """
        obj = pool.objs.get(oid)
        if obj is None:
            return None
        pampd = obj.pop(index, None)
        if pampd is None:
            return None
        if len(obj) < 2 or oid in pool.trees:
            self.unlink(pool, oid, obj, index)
        # else: a small object with two or more pages left keeps its objnode
        return pampd

    def peek(self, pool: Pool, oid: int, index: int) -> int | None:
        """The pampd of the handle, left in place (the keeping half of ``get``), or None."""
        obj = pool.objs.get(oid)
        if obj is None:
            return None
        return obj.get(index)

    def get(self, pool: Pool, oid: int, index: int, get_and_free: int) -> bytes | None:
        """The page bytes, or None on a miss.

        ``get_and_free`` 1 frees on a hit, -1 keeps, 0 frees only in an
        ephemeral pool.  A freed entry is gone even if reading it failed, so
        a failed get is never followed by a successful one without a put.
        """
        if get_and_free == 1 or (get_and_free == 0 and not pool.persistent):
            pampd = self.take(pool, oid, index)
            if pampd is None:
                return None
            return self.pamops.get_data_and_free(pampd, pool)
        pampd = self.peek(pool, oid, index)
        if pampd is None:
            return None
        return self.pamops.get_data(pampd, pool)

    def flush_page(self, pool: Pool, oid: int, index: int) -> int:
        """Forget one page: 0 if it was there, else -1."""
        obj = pool.objs.get(oid)
        if obj is None:
            return -1
        pampd = obj.pop(index, None)
        if pampd is None:
            return -1
        self.unlink(pool, oid, obj, index)
        self.pamops.free(pampd, pool)
        return 0

    def flush_object(self, pool: Pool, oid: int) -> int:
        """Forget every page of one object: 0 if the object was there, else -1."""
        obj = pool.objs.pop(oid, None)
        if obj is None:
            return -1
        zc = self.zc
        levels = pool.trees.pop(oid, None)
        zc.objnode_count -= _tree_nodes(levels) if levels is not None else _small_nodes(obj)
        zc.obj_count -= 1
        free = self.pamops.free
        for pampd in obj.values():
            free(pampd, pool)
        return 0

    def flush_handle(self, cli_id: int, pool_id: int, oid: int, index: int) -> int:
        """flush_page by numbers, as zbud's eviction reads them from a frame."""
        pool = self.get_pool(cli_id, pool_id)
        if pool is None:
            return -1
        return self.flush_page(pool, oid, index)

    # ---------------------------------------------------------------- views

    def pools(self):
        """Every live pool, client by client."""
        for cli in self.clients.values():
            for pool in cli.pools:
                if pool is not None:
                    yield pool

    def check(self) -> None:
        """Assert the counters match the objects (tests)."""
        objs = nodes = 0
        for pool in self.pools():
            for oid, obj in pool.objs.items():
                assert obj, "empty object left behind"
                objs += 1
                expect = _tree_nodes(_tree_build(list(obj))) if max(obj) >= OBJNODE_TREE_MAP_SIZE \
                    else _small_nodes(obj)
                got = obj_objnodes(pool, oid)
                assert got == expect, (oid, sorted(obj), got, expect)
                nodes += got
            assert set(pool.trees) <= set(pool.objs)
        assert self.zc.obj_count == objs, (self.zc.obj_count, objs)
        assert self.zc.objnode_count == nodes, (self.zc.objnode_count, nodes)
