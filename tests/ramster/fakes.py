"""A small zcache stand-in that implements RAMster's ``ZcacheSide`` contract, and test nodes.

The fake keeps tmem entries in a dict, packs two zpages per "pageframe" on an
LRU list per kind (ephemeral/persistent), compresses with zlib, and stores
foreign pages with zcache's rejection rules (persistent zpages above 7/8 of a
page are refused; an ephemeral limit evicts the oldest foreign/local page).
"""

from __future__ import annotations

import errno
import hashlib
import random
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from kmodemu import demo_nodes
from kmodemu.kernel.kernel import Kernel
from kmodemu_plugins.ramster.ramster import Ramster
from kmodemu_plugins.ramster.zcache_side import RemotePampd, TmemHandle, Zombie

PAGE = 4096
LOCAL_CLIENT = 0xFFFF


class Local:
    """A local pampd: compressed bytes, in a pageframe."""

    __slots__ = ("data", "frame")

    def __init__(self, data: bytes, frame: list | None):
        self.data = data
        self.frame = frame


class FakeZcache:
    def __init__(self, eph_limit: int = 10_000):
        self.ramster: Ramster | None = None
        self.pools: dict[int, bool] = {}            # pool id -> ephemeral
        self.entries: dict[tuple, Any] = {}         # (pool, oid, index) -> pampd
        self.lru: dict[bool, OrderedDict] = {True: OrderedDict(), False: OrderedDict()}
        self.open_frame: dict[bool, list | None] = {True: None, False: None}
        self.foreign_pools: dict[tuple[int, int], bool] = {}
        self.foreign: OrderedDict[tuple, bytes] = OrderedDict()
        self.eph_limit = eph_limit
        self.next_frame = 0
        self.zombies: list[list] = []

    # -- the host's own pages ---------------------------------------------------------
    def new_pool(self, pool_id: int, eph: bool) -> None:
        self.pools[pool_id] = eph

    def put(self, pool_id: int, oid, index: int, page: bytes) -> None:
        key = (pool_id, oid, index)
        if key in self.entries:
            self.flush_page(pool_id, oid, index)
        eph = self.pools[pool_id]
        frame = self.open_frame[eph]
        if frame is None or len(frame) - 1 >= 2:
            self.next_frame += 1
            frame = [self.next_frame]
            self.open_frame[eph] = frame
        frame.append(key)
        self.lru[eph][frame[0]] = frame
        self.lru[eph].move_to_end(frame[0])  # MRU when a zpage is added
        self.entries[key] = Local(zlib.compress(page), frame)

    def get(self, pool_id: int, oid, index: int, exclusive: bool = True) -> bytes | None:
        key = (pool_id, oid, index)
        pampd = self.entries.get(key)
        if pampd is None:
            return None
        eph = self.pools[pool_id]
        free = eph or exclusive
        if isinstance(pampd, RemotePampd):
            assert self.ramster is not None
            while True:
                ret, page = self.ramster.repatriate(pool_id, oid, index, pampd, free)
                if ret != -errno.EAGAIN:
                    return page if ret == 0 else None
        page = zlib.decompress(pampd.data)
        if free:
            self._drop_local(key, pampd)
        return page

    def flush_page(self, pool_id: int, oid, index: int) -> int:
        key = (pool_id, oid, index)
        pampd = self.entries.pop(key, None)
        if pampd is None:
            return -1
        if isinstance(pampd, RemotePampd):
            assert self.ramster is not None
            self.ramster.pampd_free(pampd, pool_id, oid, index)
            self._maybe_free_obj(pool_id, oid)
        else:
            self._unframe(key, pampd)
        return 0

    def flush_object(self, pool_id: int, oid) -> int:
        keys = [k for k in self.entries if k[0] == pool_id and k[1] == oid]
        for key in keys:
            pampd = self.entries.pop(key)
            if isinstance(pampd, RemotePampd):
                assert self.ramster is not None
                self.ramster.pampd_free(pampd, pool_id, None, key[2])
            else:
                self._unframe(key, pampd)
        if self.ramster is not None:
            self.ramster.free_obj(pool_id, oid, False)
        return 0 if keys else -1

    def _maybe_free_obj(self, pool_id: int, oid) -> None:
        if not any(k[0] == pool_id and k[1] == oid for k in self.entries):
            if self.ramster is not None:
                self.ramster.free_obj(pool_id, oid, False)

    def _drop_local(self, key, pampd: Local) -> None:
        self.entries.pop(key, None)
        self._unframe(key, pampd)

    def _unframe(self, key, pampd: Local) -> None:
        frame = pampd.frame
        if frame is not None and key in frame:
            frame.remove(key)
            if len(frame) == 1:
                for d in self.lru.values():
                    d.pop(frame[0], None)
                for eph, f in self.open_frame.items():
                    if f is frame:
                        self.open_frame[eph] = None

    # -- ZcacheSide ---------------------------------------------------------------------
    def make_zombie_lru(self, eph: bool) -> list[Zombie]:
        lru = self.lru[eph]
        if not lru:
            return []
        _, frame = lru.popitem(last=False)
        if self.open_frame[eph] is frame:
            self.open_frame[eph] = None
        self.zombies.append(frame)
        out = []
        for key in frame[1:]:
            pampd = self.entries[key]
            out.append(Zombie(TmemHandle(LOCAL_CLIENT, key[0], key[1], key[2]), pampd.data))
        return out

    def is_ephemeral(self, pool_id: int) -> bool | None:
        return self.pools.get(pool_id)

    def lookup(self, pool_id: int, oid, index: int) -> Any:
        return self.entries.get((pool_id, oid, index))

    def replace(self, pool_id: int, oid, index: int, pampd: Any) -> bool:
        key = (pool_id, oid, index)
        old = self.entries.get(key)
        if old is None:
            return False
        if isinstance(old, Local):
            self._unframe(key, old)
        self.entries[key] = pampd
        return True

    def delete(self, pool_id: int, oid, index: int) -> None:
        self.entries.pop((pool_id, oid, index), None)
        self._maybe_free_obj(pool_id, oid)

    def pampd_create(self, handle: TmemHandle, size: int) -> Any:
        return Local(b"", None)

    def copy_to_zbud(self, pampd: Any, data: bytes) -> None:
        pampd.data = data

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)

    def foreign_put(self, client_id, pool_id, oid, index, data, eph) -> int:
        self.foreign_pools.setdefault((client_id, pool_id), eph)
        if not eph and len(data) > PAGE * 7 // 8:
            return -1  # compression too poor for a persistent page
        key = (client_id, pool_id, oid, index)
        if key in self.foreign:
            self._drop_foreign(key)
        if eph:
            while sum(1 for k in self.foreign if self.foreign_pools[k[:2]]) >= self.eph_limit:
                victim = next(k for k in self.foreign if self.foreign_pools[k[:2]])
                self._drop_foreign(victim)
        self.foreign[key] = data
        assert self.ramster is not None
        self.ramster.count_foreign_pages(eph, 1)
        return 0

    def _drop_foreign(self, key) -> None:
        del self.foreign[key]
        assert self.ramster is not None
        self.ramster.count_foreign_pages(self.foreign_pools[key[:2]], -1)

    def foreign_get(self, client_id, pool_id, oid, index, free) -> bytes | None:
        key = (client_id, pool_id, oid, index)
        data = self.foreign.get(key)
        if data is not None and free:
            self._drop_foreign(key)
        return data

    def foreign_flush_page(self, client_id, pool_id, oid, index) -> int:
        key = (client_id, pool_id, oid, index)
        if key not in self.foreign:
            return -1
        self._drop_foreign(key)
        return 0

    def foreign_flush_object(self, client_id, pool_id, oid) -> int:
        keys = [k for k in self.foreign if k[:3] == (client_id, pool_id, oid)]
        for k in keys:
            self._drop_foreign(k)
        return 0 if keys else -1


def page(i: int) -> bytes:
    """Test page ``i``: 4 KiB, random per ``i``, compressible (a 512-byte run, eight times)."""
    rng = random.Random(i)
    return bytes(rng.getrandbits(8) for _ in range(512)) * 8


def sha(b: bytes | None) -> str:
    assert b is not None
    return hashlib.sha256(b).hexdigest()


def write_cluster_files(roots, conf: str) -> None:
    """/etc/ramster.conf (the same on every node) and /etc/hostname ``system<i+1>`` into
    each machine root directory, as an admin does before ``service ramster start``."""
    for i, root in enumerate(roots):
        etc = Path(root) / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "ramster.conf").write_text(conf)
        (etc / "hostname").write_text(f"system{i + 1}\n")


def free_port(*ips: str) -> int:
    """A TCP port free on every one of ``ips`` right now, from below the ephemeral range."""
    return demo_nodes.free_port(ips)


class Node:
    """One emulated kernel with the fake zcache and RAMster, driven like the console does."""

    def __init__(self, num: int, ip: str, port: int, *, selfshrink: bool = False,
                 eph_limit: int = 10_000, exclusive_gets: bool = True, cmdline: str = ""):
        self.num = num
        self.ip = ip
        self.port = port
        self.kernel = Kernel(cmdline=cmdline)
        self.kernel.boot()
        self.zc = FakeZcache(eph_limit)
        self.rs = Ramster(self.kernel, self.zc, selfshrink=selfshrink,
                          exclusive_gets=exclusive_gets)
        self.zc.ramster = self.rs
        with self.kernel.bkl:
            self.rs.init(register_nodemanager=True,
                         fail_peer=self.kernel.faults.points["fail_peer"].should_fail)

    def write(self, path: str, value: str) -> None:
        """``kmodemu write``: the store, then the 10 ms a command costs (timers due run)."""
        with self.kernel.bkl:
            try:
                self.kernel.write(path, value + "\n")
            finally:
                self.kernel.clock.advance_us(10_000)

    def mkdir(self, path: str) -> None:
        with self.kernel.bkl:
            self.kernel.configfs.mkdir(path)

    def rmdir(self, path: str) -> None:
        with self.kernel.bkl:
            self.kernel.configfs.rmdir(path)

    def read(self, path: str) -> str:
        with self.kernel.bkl:
            return self.kernel.read(path)

    def sleep(self, seconds: float) -> None:
        with self.kernel.bkl:
            self.kernel.clock.advance(int(seconds * 1e9))

    def dmesg(self) -> list[str]:
        return [r.text for r in self.kernel.log.records()]

    def ramster_lines(self) -> list[str]:
        return [line for line in self.dmesg() if line.startswith("ramster")]

    def configure(self, cluster: str, nodes: list["Node"], *, local: bool = True) -> None:
        """The howto's configfs writes (what ``service ramster start`` does)."""
        base = f"/sys/kernel/config/cluster/{cluster}"
        self.mkdir(base)
        for n in nodes:
            d = f"{base}/node/host{n.num}"
            self.mkdir(d)
            self.write(f"{d}/ipv4_address", n.ip)
            self.write(f"{d}/ipv4_port", str(n.port))
            self.write(f"{d}/num", str(n.num))
            if local and n is self:
                self.write(f"{d}/local", "1")

    def counter(self, name: str) -> int:
        return int(self.read(f"/sys/kernel/debug/ramster/{name}"))

    def close(self) -> None:
        self.rs.shutdown()
