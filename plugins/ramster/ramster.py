"""RAMster's core (ramster/ramster.c): remotify, fetch back, flush, and the admin knobs.

A worker on the virtual clock (first 60 s after init, then every second)
takes up to 100 ephemeral and 100 persistent LRU pageframes per run from
zcache, sends each zpage to the one target node, and on success swaps the
local tmem entry for a :class:`RemotePampd`. A failed put is counted and never
retried (the zpage stays in its zombie pageframe). A get of a remote entry
blocks on a round trip; the reply handler ("localify") decides: entry gone →
unsuccessful; no longer remote → -EEXIST; size 0 → ephemeral miss, or a
kernel BUG for a persistent page; otherwise the bytes are decompressed into the
waiting page. Freeing a remote persistent page queues a flush that the worker
sends before its next remotify step; remote ephemeral pages are never flushed.
Frontswap self-shrinking (every 5 s, hysteresis 20, inertia 3) pulls swap
pages home so the peers' ``foreign_pers_pages`` drain when idle.
"""

from __future__ import annotations

import errno
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from kmodemu.errors import KernelError
from kmodemu.kernel.clock import NSEC_PER_SEC, Timer
from kmodemu.kernel.printk import KERN_EMERG, KERN_ERR, KERN_INFO, KERN_WARNING

from .debug import RamsterCounters
from .heartbeat import Heartbeat, kstrtoul
from .nodemanager import NodeManager
from .r2net import RamsterBug, RamsterNet, XHandle, byte_sum
from .ramster_nodemanager import R2NM_API_VERSION
from .service import make_service
from .tcp import R2Net
from .zcache_side import Oid, RemotePampd, TmemHandle, ZcacheSide

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

MANUAL_NODES = 8
PAGE_SIZE = 4096
LOCAL_CLIENT = 0xFFFF
FLUSH_ENTIRE_OBJECT = 0xFFFFFFFF
REMOTIFY_FIRST_DELAY_S = 60
REMOTIFY_INTERVAL_S = 1
REMOTIFY_BATCH = 100
SELFSHRINK_INTERVAL_S = 5
FRONTSWAP_HYSTERESIS = 20
FRONTSWAP_INERTIA = 3
SYSFS_DIR = "/sys/kernel/mm/ramster"
FLUSH_PAGE, FLUSH_OBJ = "page", "object"


@dataclass
class Request:
    """One of our remote gets waiting for its reply: what a reply must match to be taken."""

    free: bool
    node: int
    pool_id: int
    oid: Oid
    index: int
    answered: bool = False


@dataclass
class FlushNode:
    """``struct flushlist_node``: a remote flush waiting for the worker."""

    op: str
    node: int
    pool_id: int
    oid: Oid
    index: int


class Ramster:
    """The RAMster personality of one zcache instance (one per kernel)."""

    def __init__(self, kernel: "Kernel", zcache: ZcacheSide, *, cleancache: bool = True,
                 frontswap: bool = True, exclusive_gets: bool = True, selfshrink: bool = True):
        self.kernel = kernel
        self.zcache = zcache
        self.use_cleancache = cleancache
        self.use_frontswap = frontswap
        self.use_exclusive_gets = exclusive_gets
        self.frontswap_selfshrinking = selfshrink
        self.counters = RamsterCounters()
        self.hb = Heartbeat(lambda text: kernel.printk(text, KERN_INFO))
        self.nm = NodeManager(kernel, self.hb)
        self.net = R2Net(kernel, self.nm, self.hb)
        self.rnet = RamsterNet(self.net, zcache, self.localify)
        self.interface_revision = R2NM_API_VERSION
        self.pers_remotify_enable = 0
        self.eph_remotify_enable = 0
        self.remote_pers_pages = 0
        self.nodes_manual_up = [False] * MANUAL_NODES
        self.remote_target_nodenum = -1
        self.flush_list: deque[FlushNode] = deque()
        self.flnodes = 0
        self.flnodes_max = 0
        #: obj->extra: the node holding an object's remote pages, and how many it holds
        self.obj_remote: dict[tuple[int, Oid], list[int]] = {}
        self._remotify_in_progress = False
        self.remotify_timer = Timer(self._remotify_process, "ramster_remotify_process")
        self.selfshrink_timer = Timer(self._selfshrink_process, "selfshrink_process")
        self._cur_frontswap_pages = 0
        self._last_frontswap_pages = 0
        self._inertia_counter = 0
        self._landing: dict[int, bytes] = {}
        #: our outstanding remote gets by their xhandle ``extra``
        self._requests: dict[int, Request] = {}
        self._next_extra = 1
        self._warned_pers_get = False

    # -- ramster_init ------------------------------------------------------------------
    def init(self, *, register_nodemanager: bool,
             fail_peer: Callable[[int], bool] | None = None) -> None:
        """``ramster_init``; ``register_nodemanager`` is the module case (r2nm_init here).

        ``fail_peer`` is the fault point's ``should_fail`` (``ctx.fault_point("fail_peer")``):
        r2net consults it on every send to a peer (docs/reliability.md).
        """
        k = self.kernel
        self.net.fail_peer = fail_peer
        k.debugfs_counters("ramster", lambda: self.counters)
        self._sysfs()
        self.rnet.register_handlers()
        k.services["ramster"] = make_service(k)
        k.shutdown_hooks.append(self.shutdown)
        k.entry_hooks.append(self.net.poll)
        if register_nodemanager and self.r2nm_init():
            k.printk("ramster: can't init r2net", KERN_ERR)
        if self.frontswap_selfshrinking:
            k.printk("ramster: Initializing frontswap selfshrink driver.", KERN_INFO)
            k.clock.mod_timer(self.selfshrink_timer,
                              k.clock.ns + SELFSHRINK_INTERVAL_S * NSEC_PER_SEC)
        k.clock.mod_timer(self.remotify_timer, k.clock.ns + REMOTIFY_FIRST_DELAY_S * NSEC_PER_SEC)

    def r2nm_init(self) -> int:
        """``r2nm_init``: the ``cluster`` configfs subsystem (late_initcall when built in)."""
        return self.nm.register()

    def _sysfs(self) -> None:
        v = self.kernel.vfs
        v.add_file(f"{SYSFS_DIR}/interface_revision", lambda: f"{self.interface_revision}\n")
        v.add_file(f"{SYSFS_DIR}/remote_pers_pages", lambda: f"{self.remote_pers_pages}\n")
        v.add_file(f"{SYSFS_DIR}/manual_node_up", self._show_manual_node_up,
                   self._store_manual_node_up, 0o644)
        v.add_file(f"{SYSFS_DIR}/remote_target_nodenum", self._show_target,
                   self._store_target, 0o644)
        for name in ("pers_remotify_enable", "eph_remotify_enable"):
            show, store = self._enable_file(name)
            v.add_file(f"{SYSFS_DIR}/{name}", show, store, 0o644)

    def _enable_file(self, name: str) -> tuple[Callable[[], str], Callable[[str], None]]:
        def show() -> str:
            return f"{getattr(self, name)}\n"

        def store(text: str) -> None:
            setattr(self, name, kstrtoul(text) & 0xFFFFFFFFFFFFFFFF)
        return show, store

    def _err(self, text: str) -> None:
        self.kernel.printk(text, KERN_ERR)

    def _show_manual_node_up(self) -> str:
        return "".join(f"{i} " for i, up in enumerate(self.nodes_manual_up) if up) + "\n"

    def _store_manual_node_up(self, text: str) -> None:
        try:
            num = kstrtoul(text)
        except KernelError:
            self._err("ramster: bad strtoul?")
            raise KernelError(errno.EINVAL) from None
        if num >= MANUAL_NODES:
            self._err(f"ramster: bad node_num={num}?")
            raise KernelError(errno.EINVAL)
        if self.nodes_manual_up[num]:
            self._err(f"ramster: node {num} already up, ignoring")
            return
        self.nodes_manual_up[num] = True
        self.net.hb_node_up_manual(num)

    def _show_target(self) -> str:
        return "unset\n" if self.remote_target_nodenum == -1 else f"{self.remote_target_nodenum}\n"

    def _store_target(self, text: str) -> None:
        try:
            num = kstrtoul(text)  # "-1" never parses: the target cannot be unset
        except KernelError:
            self._err("ramster: bad strtoul?")
            raise KernelError(errno.EINVAL) from None
        if num >= MANUAL_NODES:
            self._err(f"ramster: bad node_num={num}?")
            raise KernelError(errno.EINVAL)
        if not self.nodes_manual_up[num]:
            self._err(f"ramster: node {num} not up, ignoring setting of remotification target")
            return
        if self.rnet.target_node_set(num) >= 0:
            self.kernel.printk(f"ramster: node {num} set as remotification target", KERN_INFO)
            self.remote_target_nodenum = num
            return
        self._err(f"ramster: bad num to node node_num={num}?")
        raise KernelError(errno.EINVAL)

    # -- kernel BUG -------------------------------------------------------------------
    def bug(self, why: str) -> None:
        """What BUG() leaves behind: the oops lines and taint D; the caller's operation fails."""
        k = self.kernel
        k.printk("kernel BUG at drivers/staging/zcache/ramster/ramster.c!", KERN_EMERG)
        k.printk("invalid opcode: 0000 [#1] SMP", KERN_WARNING)
        k.printk(f"ramster: {why}", KERN_EMERG)
        k.taint.add("D")

    def warn_failed_persistent_get(self) -> None:
        """zcache_get_page's WARN_ONCE: a get on a persistent pool failed (taint W).

        In Linux it fires for any failed get of a persistent page; in kmodemu
        only a remote entry can fail that way (frontswap asks zcache only for
        pages it stored), so RAMster's get path raises it.
        """
        if self._warned_pers_get:
            return
        self._warned_pers_get = True
        k = self.kernel
        k.printk("------------[ cut here ]------------", KERN_WARNING)
        k.printk("WARNING: at drivers/staging/zcache/zcache-main.c zcache_get_page()",
                 KERN_WARNING)
        k.printk("zcache_get fails on persistent pool, bad things are very likely to happen soon",
                 KERN_WARNING)
        k.taint.add("W")

    # -- the remotify worker -----------------------------------------------------------
    def _remotify_process(self) -> None:
        try:
            if self._remotify_in_progress or self.remote_target_nodenum == -1:
                return
            self._remotify_in_progress = True
            try:
                if self.use_cleancache and self.eph_remotify_enable:
                    for _ in range(REMOTIFY_BATCH):
                        self.do_remotify_flushes()
                        self.remotify_pageframe(True)
                if self.use_frontswap and self.pers_remotify_enable:
                    for _ in range(REMOTIFY_BATCH):
                        self.do_remotify_flushes()
                        self.remotify_pageframe(False)
            finally:
                self._remotify_in_progress = False
        finally:
            clock = self.kernel.clock
            clock.mod_timer(self.remotify_timer, clock.ns + REMOTIFY_INTERVAL_S * NSEC_PER_SEC)

    def remotify_pageframe(self, eph: bool) -> int:
        """``ramster_remotify_pageframe``: the number of zpages the pageframe held."""
        zombies = self.zcache.make_zombie_lru(eph)
        c = self.counters
        for z in zombies:
            h = z.handle
            xh = XHandle(h.client_id, h.pool_id, h.oid, h.index)
            size = len(z.data)
            ret, node = self.rnet.remote_put(xh, z.data, eph)
            if ret != 0:
                # never retried: the data stays in the zombie pageframe (Linux's FIXME)
                if eph:
                    c.eph_pages_remote_failed += 1
                else:
                    c.pers_pages_remote_failed += 1
                break
            if eph:
                c.eph_pages_remoted += 1
            else:
                self.remote_pers_pages += 1
                c.pers_pages_remoted += 1
            if not self._track(h.pool_id, h.oid, node):
                break
            self.zcache.replace(h.pool_id, h.oid, h.index,
                                RemotePampd(node, size, byte_sum(z.data)))
        return len(zombies)

    def _track(self, pool_id: int, oid: Oid, node: int) -> bool:
        """``ramster_pampd_replace_in_obj``: all remote pages of an object on one node."""
        entry = self.obj_remote.get((pool_id, oid))
        if entry is None:
            self.obj_remote[(pool_id, oid)] = [node, 1]
            return True
        if entry[0] != node:
            self.bug(f"object of pool {pool_id} has remote pages on nodes {entry[0]} and {node}")
            return False
        entry[1] += 1
        return True

    def _untrack(self, pool_id: int, oid: Oid) -> None:
        entry = self.obj_remote.get((pool_id, oid))
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.obj_remote[(pool_id, oid)]

    def _queue_flush(self, fl: FlushNode) -> None:
        self.flush_list.appendleft(fl)  # list_add: the newest is sent first
        self.flnodes += 1
        self.flnodes_max = max(self.flnodes_max, self.flnodes)

    def do_remotify_flushes(self) -> None:
        c = self.counters
        while self.flush_list:
            fl = self.flush_list.popleft()
            self.flnodes -= 1
            xh = XHandle(fl.node, fl.pool_id, fl.oid, fl.index)
            try:
                if fl.op == FLUSH_PAGE:
                    ret = self.rnet.remote_flush(xh, fl.node)
                else:
                    ret = self.rnet.remote_flush_object(xh, fl.node)
            except RamsterBug as e:
                self.bug(str(e))
                ret = -1
            if fl.op == FLUSH_PAGE:
                if ret >= 0:
                    c.remote_pages_flushed += 1
                else:
                    c.remote_page_flushes_failed += 1
            elif ret >= 0:
                c.remote_objects_flushed += 1
            else:
                c.remote_object_flushes_failed += 1

    # -- what zcache calls ---------------------------------------------------------------
    @staticmethod
    def is_remote(pampd: Any) -> bool:
        return isinstance(pampd, RemotePampd)

    def pampd_free(self, pampd: RemotePampd, pool_id: int, oid: Oid | None,
                   index: int) -> Any:
        """A remote entry is freed locally; returns local space to free (intransit), or None."""
        if oid is None:
            return None  # the object's flush takes care of it
        eph = bool(self.zcache.is_ephemeral(pool_id))
        self._untrack(pool_id, oid)
        if eph:
            return None  # remote ephemeral pages are never flushed (Linux's FIXME)
        if pampd.intransit:
            return pampd.local
        self._queue_flush(FlushNode(FLUSH_PAGE, pampd.node, pool_id, oid, index))
        self.remote_pers_pages -= 1
        return None

    def free_obj(self, pool_id: int, oid: Oid, pool_destroy: bool) -> None:
        """An object is freed: if it had remote pages, flush the object on their node."""
        entry = self.obj_remote.pop((pool_id, oid), None)
        if entry is None:
            return
        if pool_destroy and self.zcache.is_ephemeral(pool_id):
            return
        self._queue_flush(FlushNode(FLUSH_OBJ, entry[0], pool_id, oid, FLUSH_ENTIRE_OBJECT))

    def repatriate(self, pool_id: int, oid: Oid, index: int, pampd: RemotePampd,
                   free: bool) -> tuple[int, bytes | None]:
        """A get found a remote entry: fetch it. (0, page), (-EAGAIN, None) or (-1, None)."""
        eph = bool(self.zcache.is_ephemeral(pool_id))
        reserved = None
        if not eph and not self.use_exclusive_gets:  # ramster_pampd_repatriate_preload
            if pampd.intransit:
                return -errno.EAGAIN, None
            handle = TmemHandle(pampd.node, pool_id, oid, index)
            reserved = self.zcache.pampd_create(handle, pampd.size)
            if reserved is not None:
                self.remote_pers_pages -= 1
                self.zcache.replace(pool_id, oid, index,
                                    RemotePampd(pampd.node, pampd.size, pampd.cksum, reserved))
                free = True  # local space is reserved, so the remote copy goes
            else:
                self.counters.pers_pages_remote_nomem += 1
        extra = self._next_extra
        self._next_extra += 1
        self._requests[extra] = Request(free, pampd.node, pool_id, oid, index)
        xh = XHandle(LOCAL_CLIENT, pool_id, oid, index, pampd.size, pampd.cksum, extra)
        try:
            ret = self.rnet.remote_async_get(xh, free, pampd.node)
        finally:
            self._requests.pop(extra, None)
        page = self._landing.pop(extra, None)
        if ret != 0 and reserved is not None:
            # kmodemu: give the reservation back rather than leave the entry in transit
            # forever (every later get would see -EAGAIN)
            if isinstance(self.zcache.lookup(pool_id, oid, index), RemotePampd):
                self.zcache.replace(pool_id, oid, index, pampd)
                self.remote_pers_pages += 1
        if ret == -errno.EAGAIN:
            return ret, None
        if ret != 0:
            if not eph and ret != -errno.EIO:  # -EIO: localify's BUG, the task is gone
                self.warn_failed_persistent_get()
            return -1, None
        return 0, page

    def localify(self, xh: XHandle, data: bytes, sender: int) -> int:
        """``ramster_localify``: the reply to our get arrived; finish the get.

        Only the answer to a get of ours still waiting, from the node it was
        sent to, for the page it asked for, is taken; anything else is -ENOENT
        and changes nothing (kmodemu: Linux takes any reply, docs/security.md).
        """
        req = self._requests.get(xh.extra)
        if (req is None or req.answered or req.node != sender
                or (req.pool_id, req.oid, req.index) != (xh.pool_id, xh.oid, xh.index)):
            return -errno.ENOENT
        c = self.counters
        eph = self.zcache.is_ephemeral(xh.pool_id)
        if eph is None:
            return -errno.ENOENT  # the pool is gone
        pampd = self.zcache.lookup(xh.pool_id, xh.oid, xh.index)
        if pampd is None:  # a flush while we waited
            if eph:
                c.remote_eph_pages_unsucc_get += 1
            else:
                c.remote_pers_pages_unsucc_get += 1
            return -errno.ENOENT
        if not isinstance(pampd, RemotePampd):  # a duplicate put while we waited
            if eph:
                c.remote_eph_pages_unsucc_get += 1
            else:
                c.remote_pers_pages_unsucc_get += 1
            return -errno.EEXIST
        free = req.free
        if len(data) == 0:
            req.answered = True
            if not eph:
                self.bug(f"persistent page (pool {xh.pool_id}, index {xh.index}) is not on "
                         f"node {pampd.node}")
                return -errno.EIO
            c.remote_eph_pages_unsucc_get += 1
            self._untrack(xh.pool_id, xh.oid)
            self.zcache.delete(xh.pool_id, xh.oid, xh.index)
            return -errno.ENOENT
        # kmodemu: the bytes must be the zpage we sent (its size and byte sum, kept in the
        # remote pampd) and decompress to a page, or nothing changes (Linux would BUG_ON in
        # the decompressor); the request may still be answered properly
        if len(data) != pampd.size or byte_sum(data) != pampd.cksum:
            return -errno.EINVAL
        try:
            page = self.zcache.decompress(data)
        except Exception:  # each codec raises its own error class on corrupt input
            page = b""
        if len(page) != PAGE_SIZE:
            return -errno.EINVAL
        req.answered = True
        if pampd.intransit:
            self.zcache.copy_to_zbud(pampd.local, data)
            self._untrack(xh.pool_id, xh.oid)
            self.zcache.replace(xh.pool_id, xh.oid, xh.index, pampd.local)
        elif free:
            self._untrack(xh.pool_id, xh.oid)
            self.zcache.delete(xh.pool_id, xh.oid, xh.index)
            if not eph:
                self.remote_pers_pages -= 1
        self._landing[xh.extra] = page
        if eph:
            c.remote_eph_pages_succ_get += 1
        else:
            c.remote_pers_pages_succ_get += 1
        return 0

    def count_foreign_pages(self, eph: bool, count: int) -> None:
        """``ramster_count_foreign_pages``: zcache stored (+1) or dropped (-1) a foreign page."""
        c = self.counters
        if eph:
            c.foreign_eph_pages += count
            c.foreign_eph_pages_max = max(c.foreign_eph_pages_max, c.foreign_eph_pages)
        else:
            c.foreign_pers_pages += count
            c.foreign_pers_pages_max = max(c.foreign_pers_pages_max, c.foreign_pers_pages)

    # -- frontswap self-shrinking ----------------------------------------------------------
    def _selfshrink_process(self) -> None:
        fs = self.kernel.frontswap
        if not (self.frontswap_selfshrinking and fs is not None and fs.registered):
            return  # not rescheduled, as in Linux
        self.frontswap_selfshrink()
        clock = self.kernel.clock
        clock.mod_timer(self.selfshrink_timer, clock.ns + SELFSHRINK_INTERVAL_S * NSEC_PER_SEC)

    def frontswap_selfshrink(self) -> None:
        fs = self.kernel.frontswap
        self._last_frontswap_pages = self._cur_frontswap_pages
        cur = self._cur_frontswap_pages = fs.curr_pages()
        if not cur or cur > self._last_frontswap_pages:
            self._inertia_counter = FRONTSWAP_INERTIA
            return
        if self._inertia_counter:
            self._inertia_counter -= 1
            if self._inertia_counter:
                return
        target = 0 if cur <= FRONTSWAP_HYSTERESIS else cur - cur // FRONTSWAP_HYSTERESIS
        fs.shrink(target)

    # -- unloading (profile 3.10-unload, beyond Linux) -----------------------------------
    def prepare_unload(self) -> int:
        """May zcache with RAMster go? 0, or -EBUSY with nothing changed.

        Refused while this node keeps persistent pages for other nodes (their
        swap would be lost) or while a node holding our persistent pages is
        unreachable (frontswap's writeback could not fetch them). Our remote
        persistent pages come back through the writeback's gets; remote
        ephemeral pages simply go.
        """
        k = self.kernel
        self.net.poll()  # a peer's close that already arrived is seen first
        foreign = self.counters.foreign_pers_pages
        if foreign:
            k.printk(f"ramster: keeping {foreign} persistent pages for other nodes: not "
                     "unloading", KERN_ERR)
            return -errno.EBUSY
        nodes = sorted({entry[0] for (pool_id, _oid), entry in self.obj_remote.items()
                        if entry[1] and not self.zcache.is_ephemeral(pool_id)})
        for node in nodes:
            valid, err = self.net.node_state(node)
            if err or not valid:
                k.printk(f"ramster: node {node} holds persistent pages and is unreachable: "
                         "not unloading", KERN_ERR)
                return -errno.EBUSY
        return 0

    def unload(self) -> None:
        """Undo ``init``: timers, files, handlers, the configfs subsystem, the sockets."""
        k = self.kernel
        self.do_remotify_flushes()  # flushes queued for peers go while the sockets are up
        k.clock.del_timer(self.remotify_timer)
        k.clock.del_timer(self.selfshrink_timer)
        k.vfs.remove("/sys/kernel/debug/ramster")
        k.vfs.remove(SYSFS_DIR)
        k.services.pop("ramster", None)
        for hooks, fn in ((k.entry_hooks, self.net.poll), (k.shutdown_hooks, self.shutdown)):
            if fn in hooks:
                hooks.remove(fn)
        self.net.unregister_handlers()
        self.shutdown()
        if self.nm.subsystem is not None:
            k.configfs.unregister_subsystem(self.nm.subsystem)
            self.nm.subsystem = None

    def shutdown(self) -> None:
        self.net.shutdown()
