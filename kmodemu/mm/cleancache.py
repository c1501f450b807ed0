"""Cleancache, the frontend of ephemeral tmem for clean page-cache pages.

Profile 3.10 is ``mm/cleancache.c`` after the lazy-initialization patchset:
filesystems mounted before any backend get a *fake* pool id (1000+slot, or
2000+slot for shared filesystems) and a slot marked FS_NO_BACKEND; registering
a backend replays ``init_fs``/``init_shared_fs`` for every such slot, then
publishes the ops. Profile 3.9 is the pre-patch file: the superblock gets the
backend's pool id directly, so a filesystem mounted before the backend never
gets cleancache and registration replays nothing.

The VFS side calls ``init_fs(sb)``, ``init_shared_fs(uuid, sb)``,
``get_page(inode, index, page)``, ``put_page(inode, index, page)``,
``invalidate_page(inode, index)``, ``invalidate_inode(inode)`` and
``invalidate_fs(sb)``. The per-page ones include the header's inline guard
(``sb.cleancache_poolid >= 0``) and call the backend's ops object directly:
no pluggy on the hot path. An inode carries ``sb`` and ``cleancache_key``
(the 24-byte filekey, or ``None`` when the filesystem cannot make one: the
lookup "fails" and the op is skipped, as in Linux).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Protocol

from kmodemu.kernel.printk import KERN_INFO
from kmodemu.mm.page import PAGE_SIZE, Page

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

MAX_INITIALIZABLE_FS = 32
FAKE_FS_POOLID_OFFSET = 1000
FAKE_SHARED_FS_POOLID_OFFSET = 2000
FS_NO_BACKEND = -1
FS_UNKNOWN = -2
CLEANCACHE_KEY_MAX = 6          # u32 words in a filekey
FILEKEY_SIZE = 4 * CLEANCACHE_KEY_MAX


class CleancacheOps(Protocol):
    """What a backend registers (``struct cleancache_ops``)."""

    def init_fs(self, pagesize: int) -> int: ...
    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int: ...
    def get_page(self, pool_id: int, key: bytes, index: int, page: Page) -> int: ...
    def put_page(self, pool_id: int, key: bytes, index: int, page: Page) -> None: ...
    def invalidate_page(self, pool_id: int, key: bytes, index: int) -> None: ...
    def invalidate_inode(self, pool_id: int, key: bytes) -> None: ...
    def invalidate_fs(self, pool_id: int) -> None: ...


def _lazy(kernel: "Kernel | None", lazy_init: bool | None) -> bool:
    if lazy_init is None:
        return kernel.lazy_init if kernel is not None else True
    return lazy_init


def ino_filekey(ino: int) -> bytes:
    """The default filekey: the inode number first, the rest zero (24 bytes)."""
    return ino.to_bytes(8, "little") + bytes(FILEKEY_SIZE - 8)


class Cleancache:
    """One kernel's cleancache frontend (``kernel.cleancache``).

    ``lazy_init`` defaults to the kernel profile's. The counters are plain
    attributes (``succ_gets``, ``failed_gets``, ``puts``, ``invalidates``),
    counted exactly where the chosen kernel version counts them.

    The class is 3.10's ``mm/cleancache.c``; constructing it for a kernel (or
    ``lazy_init``) without lazy init gives a :class:`Cleancache39`, whose
    methods are the pre-patch file's: one typed class per profile, chosen once.
    """

    def __new__(cls, kernel: "Kernel | None" = None, *,
                lazy_init: bool | None = None) -> "Cleancache":
        if cls is Cleancache and not _lazy(kernel, lazy_init):
            cls = Cleancache39
        return object.__new__(cls)

    def __init__(self, kernel: "Kernel | None" = None, *, lazy_init: bool | None = None):
        self.kernel = kernel
        lazy_init = _lazy(kernel, lazy_init)
        self.lazy_init = lazy_init
        #: the Nov-2012 ``CLEANCACHE_HAS_LAZY_INIT`` define: backends built as modules
        #: check it and refuse to load on a kernel without lazy init.
        self.CLEANCACHE_HAS_LAZY_INIT = lazy_init
        self.ops: CleancacheOps | None = None
        #: 3.9's exported ``cleancache_enabled`` (set by register); 3.10 has a constant 1
        self.enabled = lazy_init
        self.fs_poolid_map = [FS_UNKNOWN] * MAX_INITIALIZABLE_FS
        self.shared_fs_poolid_map = [FS_UNKNOWN] * MAX_INITIALIZABLE_FS
        self.uuids: list[bytes | None] = [None] * MAX_INITIALIZABLE_FS
        self.succ_gets = 0
        self.failed_gets = 0
        self.puts = 0
        self.invalidates = 0

    # -- shared helpers -------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """The debugfs files of ``cleancache/``, in Linux's creation order."""
        return {"succ_gets": self.succ_gets, "failed_gets": self.failed_gets,
                "puts": self.puts, "invalidates": self.invalidates}

    @property
    def registered(self) -> bool:
        return self.ops is not None

    def poolid_from_fake(self, fake: int) -> int:
        """Translate a superblock's fake pool id to the backend's real one."""
        if fake >= FAKE_SHARED_FS_POOLID_OFFSET:
            return self.shared_fs_poolid_map[fake - FAKE_SHARED_FS_POOLID_OFFSET]
        if fake >= FAKE_FS_POOLID_OFFSET:
            return self.fs_poolid_map[fake - FAKE_FS_POOLID_OFFSET]
        return FS_NO_BACKEND

    def real_poolid(self, sb: Any) -> int:
        """The pool id the backend knows this superblock by (-1 if none)."""
        fake = sb.cleancache_poolid
        if not self.lazy_init:
            return fake
        return self.poolid_from_fake(fake) if fake >= 0 else FS_NO_BACKEND

    def slots(self) -> list[tuple[str, int, int, bytes | None]]:
        """Slots in use: (``private``/``shared``, slot, map value, uuid)."""
        out: list[tuple[str, int, int, bytes | None]] = []
        for i in range(MAX_INITIALIZABLE_FS):
            if self.fs_poolid_map[i] != FS_UNKNOWN:
                out.append(("private", i, self.fs_poolid_map[i], None))
            if self.shared_fs_poolid_map[i] != FS_UNKNOWN:
                out.append(("shared", i, self.shared_fs_poolid_map[i], self.uuids[i]))
        return out

    def _event(self, name: str, **kw: Any) -> None:
        if self.kernel is not None:
            getattr(self.kernel.hook, name)(kernel=self.kernel, **kw)

    # -- 3.10: lazy init ------------------------------------------------------------
    def register_ops(self, ops: CleancacheOps) -> CleancacheOps | None:
        """Replay every FS_NO_BACKEND slot (by slot, private before shared), then publish."""
        old = self.ops
        for i in range(MAX_INITIALIZABLE_FS):
            if self.fs_poolid_map[i] == FS_NO_BACKEND:
                self.fs_poolid_map[i] = ops.init_fs(PAGE_SIZE)
                self._event("kmodemu_tmem_replay", frontend="cleancache", index=i, shared=False,
                            pool_id=self.fs_poolid_map[i])
            if self.shared_fs_poolid_map[i] == FS_NO_BACKEND:
                uuid = self.uuids[i]
                assert uuid is not None  # set with the slot by init_shared_fs
                self.shared_fs_poolid_map[i] = ops.init_shared_fs(uuid, PAGE_SIZE)
                self._event("kmodemu_tmem_replay", frontend="cleancache", index=i, shared=True,
                            pool_id=self.shared_fs_poolid_map[i])
        self.ops = ops  # published only after the replay
        self._event("kmodemu_tmem_backend_registered", frontend="cleancache", ops=ops, old=old)
        return old

    def unregister_ops(self, ops: CleancacheOps) -> int:
        """``cleancache_unregister_ops`` (beyond Linux, profile 3.10-unload): let a backend go.

        Unpublishes the ops first (no page can reach the backend after that),
        then tells the backend to drop each pool it made (``invalidate_fs``)
        and puts that slot back to FS_NO_BACKEND: the superblocks keep their
        fake pool ids, so the next backend registered replays them exactly as
        the first one did. Ephemeral pages simply go. 0, or -EINVAL if ``ops``
        is not the registered backend.
        """
        if self.ops is not ops or ops is None:
            return -errno.EINVAL
        self.ops = None
        dropped = 0
        for table in (self.fs_poolid_map, self.shared_fs_poolid_map):
            for i in range(MAX_INITIALIZABLE_FS):
                if table[i] != FS_UNKNOWN:
                    if table[i] >= 0:
                        ops.invalidate_fs(table[i])
                    table[i] = FS_NO_BACKEND
                    dropped += 1
        self._event("kmodemu_tmem_backend_unregistered", frontend="cleancache", ops=ops)
        if self.kernel is not None:
            self.kernel.printk(f"cleancache: backend unregistered, {dropped} filesystem(s) "
                               "wait for the next one", KERN_INFO)
        return 0

    def _take_slot(self, table: list[int]) -> int | None:
        for i in range(MAX_INITIALIZABLE_FS):
            if table[i] == FS_UNKNOWN:
                return i
        return None

    def init_fs(self, sb: Any) -> None:
        i = self._take_slot(self.fs_poolid_map)
        if i is None:
            return  # the 33rd filesystem: poolid stays -1, cleancache is off for it
        sb.cleancache_poolid = FAKE_FS_POOLID_OFFSET + i
        self.fs_poolid_map[i] = (self.ops.init_fs(PAGE_SIZE) if self.ops is not None
                                 else FS_NO_BACKEND)

    def init_shared_fs(self, uuid: bytes, sb: Any) -> None:
        i = self._take_slot(self.shared_fs_poolid_map)
        if i is None:
            return
        sb.cleancache_poolid = FAKE_SHARED_FS_POOLID_OFFSET + i
        self.uuids[i] = uuid  # the same object, not a copy (Linux keeps the pointer)
        self.shared_fs_poolid_map[i] = (self.ops.init_shared_fs(uuid, PAGE_SIZE)
                                        if self.ops is not None else FS_NO_BACKEND)

    def get_page(self, inode: Any, index: int, page: Page) -> int:
        fake = inode.sb.cleancache_poolid
        if fake < 0:
            return -1  # inline guard
        ops = self.ops
        if ops is None:
            self.failed_gets += 1
            return -1
        if fake >= FAKE_SHARED_FS_POOLID_OFFSET:
            pool = self.shared_fs_poolid_map[fake - FAKE_SHARED_FS_POOLID_OFFSET]
        elif fake >= FAKE_FS_POOLID_OFFSET:
            pool = self.fs_poolid_map[fake - FAKE_FS_POOLID_OFFSET]
        else:
            pool = FS_NO_BACKEND
        key = inode.cleancache_key
        if key is None:
            return -1
        ret = ops.get_page(pool, key, index, page) if pool >= 0 else -1
        if ret == 0:
            self.succ_gets += 1
        else:
            self.failed_gets += 1
        return ret

    def put_page(self, inode: Any, index: int, page: Page) -> None:
        fake = inode.sb.cleancache_poolid
        if fake < 0:
            return
        ops = self.ops
        if ops is None:
            self.puts += 1  # counted although nothing is stored
            return
        if fake >= FAKE_SHARED_FS_POOLID_OFFSET:
            pool = self.shared_fs_poolid_map[fake - FAKE_SHARED_FS_POOLID_OFFSET]
        elif fake >= FAKE_FS_POOLID_OFFSET:
            pool = self.fs_poolid_map[fake - FAKE_FS_POOLID_OFFSET]
        else:
            return
        key = inode.cleancache_key
        if pool >= 0 and key is not None:
            ops.put_page(pool, key, index, page)
            self.puts += 1

    def invalidate_page(self, inode: Any, index: int) -> None:
        fake = inode.sb.cleancache_poolid
        ops = self.ops
        if fake < 0 or ops is None:
            return
        pool = self.poolid_from_fake(fake)
        key = inode.cleancache_key
        if pool >= 0 and key is not None:
            ops.invalidate_page(pool, key, index)
            self.invalidates += 1

    def invalidate_inode(self, inode: Any) -> None:
        fake = inode.sb.cleancache_poolid
        ops = self.ops
        if fake < 0 or ops is None:
            return
        pool = self.poolid_from_fake(fake)
        key = inode.cleancache_key
        if pool >= 0 and key is not None:
            ops.invalidate_inode(pool, key)  # not counted

    def invalidate_fs(self, sb: Any) -> None:
        """Umount: free the slot; a registered backend is told even about -1."""
        fake = sb.cleancache_poolid
        old = fake
        if fake >= FAKE_SHARED_FS_POOLID_OFFSET:
            i = fake - FAKE_SHARED_FS_POOLID_OFFSET
            old = self.shared_fs_poolid_map[i]
            self.shared_fs_poolid_map[i] = FS_UNKNOWN
            self.uuids[i] = None
        elif fake >= FAKE_FS_POOLID_OFFSET:
            i = fake - FAKE_FS_POOLID_OFFSET
            old = self.fs_poolid_map[i]
            self.fs_poolid_map[i] = FS_UNKNOWN
        sb.cleancache_poolid = -1
        if self.ops is not None:
            self.ops.invalidate_fs(old)


class Cleancache39(Cleancache):
    """The pre-patch (3.9) cleancache: no lazy init, see the module docstring."""

    # -- 3.9: no lazy init ----------------------------------------------------------
    def register_ops(self, ops: CleancacheOps) -> CleancacheOps | None:
        """Copy the ops and enable the frontend; mounted filesystems stay without a pool."""
        old = self.ops
        self.ops = ops
        self.enabled = True
        self._event("kmodemu_tmem_backend_registered", frontend="cleancache", ops=ops, old=old)
        return old

    def init_fs(self, sb: Any) -> None:
        ops = self.ops
        if ops is not None:
            sb.cleancache_poolid = ops.init_fs(PAGE_SIZE)

    def init_shared_fs(self, uuid: bytes, sb: Any) -> None:
        ops = self.ops
        if ops is not None:
            sb.cleancache_poolid = ops.init_shared_fs(uuid, PAGE_SIZE)

    def get_page(self, inode: Any, index: int, page: Page) -> int:
        ops = self.ops
        pool = inode.sb.cleancache_poolid
        if pool < 0 or ops is None:
            return -1
        key = inode.cleancache_key
        if key is None:
            return -1
        ret = ops.get_page(pool, key, index, page)
        if ret == 0:
            self.succ_gets += 1
        else:
            self.failed_gets += 1
        return ret

    def put_page(self, inode: Any, index: int, page: Page) -> None:
        ops = self.ops
        pool = inode.sb.cleancache_poolid
        if pool < 0 or ops is None:
            return
        key = inode.cleancache_key
        if key is not None:
            ops.put_page(pool, key, index, page)
            self.puts += 1

    def invalidate_page(self, inode: Any, index: int) -> None:
        ops = self.ops
        pool = inode.sb.cleancache_poolid
        if pool < 0 or ops is None:
            return
        key = inode.cleancache_key
        if key is not None:
            ops.invalidate_page(pool, key, index)
            self.invalidates += 1

    def invalidate_inode(self, inode: Any) -> None:
        ops = self.ops
        pool = inode.sb.cleancache_poolid
        if pool < 0 or ops is None:
            return
        key = inode.cleancache_key
        if key is not None:
            ops.invalidate_inode(pool, key)

    def invalidate_fs(self, sb: Any) -> None:
        ops = self.ops
        if ops is not None and sb.cleancache_poolid >= 0:
            old = sb.cleancache_poolid
            sb.cleancache_poolid = -1
            ops.invalidate_fs(old)
