"""r2net (tcp.c): messages between nodes over real TCP sockets.

One ``R2Net`` per kernel. The node with the higher number connects (bound to
its own configured address, since the acceptor knows a peer only by its source
address); the lower one accepts. Both ends send the 32-byte handshake and
compare protocol version, idle timeout, keepalive delay and heartbeat timeout;
a mismatch disconnects with the kernel's message and a persistent -ENOTCONN.
A message is a 24-byte big-endian header plus at most 4072 bytes; every send
blocks for its status (or data) reply, as ``r2net_send_message_vec`` does.

Real sockets meet the virtual clock this way (docs/ramster.md): bytes move in
real time, on a receive thread per connection and a listener thread per node,
each of which takes the kernel's big lock before touching the kernel; every
*decision that depends on time* — keepalive, idle timeout, reconnect delay,
"giving up" — is a timer on the node's virtual clock. A task that waits on the
network (a reply, a handshake, a keepalive answer) drops the big lock and
waits a bounded amount of *real* time; a connect completes (handshake both
ways, then one keepalive round trip so the acceptor has seen ours) before the
command that caused it returns, so dmesg on both nodes is the same run after
run. A keepalive is a round trip too: it is answered before the clock moves
on, so only a peer that really stopped answering can run into the idle
timeout. A reply that does not come within ``reply_timeout_s`` real seconds
counts as the idle timeout expiring.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

from kmodemu.kernel.clock import NSEC_PER_MSEC, Timer
from kmodemu.kernel.printk import KERN_ERR, KERN_INFO, KERN_NOTICE

from .heartbeat import Heartbeat
from .nodemanager import NodeManager, R2NMNode, ip_to_str
from .ramster_nodemanager import R2NM_MAX_NODES
from .tcp_internal import (
    HANDSHAKE_SIZE,
    HDR_SIZE,
    R2NET_ERR_DIED,
    R2NET_ERR_NO_HNDLR,
    R2NET_ERR_NONE,
    R2NET_ERR_OVERFLOW,
    R2NET_MAX_PAYLOAD_BYTES,
    R2NET_MSG_DATA_MAGIC,
    R2NET_MSG_KEEP_REQ_MAGIC,
    R2NET_MSG_KEEP_RESP_MAGIC,
    R2NET_MSG_MAGIC,
    R2NET_MSG_STATUS_MAGIC,
    R2NET_PROTOCOL_VERSION,
    SYS_ERR_TO_ERRNO,
    R2NetHandshake,
    R2NetMsg,
    _s32,
    keepalive,
)
from .tcp_internal import _HDR

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

#: how long the receive thread stays out of a sender's way after it stopped reading (s)
RX_PARK_S = 0.002

#: how long a reader whose peer is in another process polls without sleeping after a
#: message (s): the next message of a burst is caught without a thread wake-up
SPIN_S = 0.0005

#: the connected ends of r2net links in this process by (own address, peer's address): a
#: sender waiting for a peer that lives in this process too runs that peer's receive work
#: itself (see ``R2Net._serve_peer``)
_ENDS: dict[tuple[object, object], "SockContainer"] = {}

TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8


@dataclass
class DataReply:
    """What a handler returns to answer with data (``r2net_force_data_magic``)."""

    msg_type: int
    key: int
    data: bytes


HandlerResult = Union[int, DataReply]
HandlerFunc = Callable[[R2NetMsg, bytes], HandlerResult]


@dataclass
class _Handler:
    max_len: int
    func: HandlerFunc
    post: Callable[[int], None] | None = None


class _Waiter:
    """``struct r2net_status_wait``: one sender waiting for its reply."""

    __slots__ = ("id", "done", "sys_status", "status")

    def __init__(self, id: int):
        self.id = id
        self.done = False
        self.sys_status = R2NET_ERR_NONE
        self.status = 0


class _ReplyDone:
    """The condition a sender waits for: its reply, or the link going away."""

    __slots__ = ("w", "nn")

    def __init__(self, w: _Waiter, nn: "R2NetNode"):
        self.w = w
        self.nn = nn

    def __call__(self) -> bool:
        nn = self.nn
        return self.w.done or bool(nn.persistent_error) or not nn.sc_valid


class SockContainer:
    """``struct r2net_sock_container``: one TCP connection to one node."""

    def __init__(self, net: "R2Net", node: R2NMNode, sock: socket.socket):
        self.net = net
        self.node = node
        self.sock = sock
        self.handshake_ok = False
        self.registered = True      # our callbacks are on the socket (until shutdown)
        self.send_lock = threading.Lock()
        self.idle_timer = Timer(self._idle_expired, "r2net_idle_timer")
        self.keepalive_timer = Timer(self._send_keep_req, "r2net_sc_send_keep_req")
        self.tv_timer = 0
        self.pongs = 0
        #: one reader at a time: the receive thread, or a sender waiting for its reply
        self.rx_lock = threading.Lock()
        self.rxbuf = bytearray()
        #: tasks waiting for a reply on this link, and when the last one stopped waiting
        #: (monotonic s): while a sender reads, the receive thread keeps out of its way
        self.senders = 0
        self.sender_left = 0.0
        #: for whoever holds rx_lock
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        #: (own address, peer's address) once connected, the key in ``_ENDS``
        self.end: tuple[object, object] | None = None
        node.pins += 1              # r2nm_depend_item: the node cannot be removed meanwhile

    def connected(self) -> None:
        """The socket is connected: other ends in this process may find this one."""
        try:
            self.end = (self.sock.getsockname(), self.sock.getpeername())
        except OSError:
            return
        _ENDS[self.end] = self

    def forget(self) -> None:
        end = self.end
        if end is not None and _ENDS.get(end) is self:
            del _ENDS[end]

    def in_process_peer(self) -> "SockContainer | None":
        """The other end of this link, when it is an r2net of this process; else None."""
        end = self.end
        if end is None:
            return None
        peer = _ENDS.get((end[1], end[0]))
        return peer if peer is not None and peer.registered else None

    # -- sending (r2net_send_tcp_msg / r2net_sendpage) --------------------------
    def send(self, data: bytes) -> int:
        try:
            with self.send_lock:
                self.sock.sendall(data)
            return 0
        except OSError as e:
            return -(e.errno or errno.EPIPE)

    def _send_keep_req(self) -> None:
        """Keepalive: a request, and (our addition) its answer awaited before time moves on."""
        net = self.net
        cl = net.nm.cluster
        clock = net.kernel.clock
        if cl is not None:
            due = self.tv_timer + cl.keepalive_delay_ms * NSEC_PER_MSEC
            if due > clock.ns:  # something arrived since this was armed: not yet
                clock.mod_timer(self.keepalive_timer, due)
                return
        self.ping()

    def ping(self) -> None:
        """One keepalive round trip, waited for (bounded) with the big lock dropped."""
        net = self.net
        before = self.pongs
        if self.send(keepalive(R2NET_MSG_KEEP_REQ_MAGIC)) < 0:
            net.ensure_shutdown(self, 0)
            return
        net._wait_reply(self, lambda: self.pongs != before or not self.registered,
                        net.ping_timeout_s)

    def _idle_expired(self) -> None:
        net = self.net
        cl = net.nm.cluster
        clock = net.kernel.clock
        if cl is not None and self.registered:
            due = self.tv_timer + cl.idle_timeout_ms * NSEC_PER_MSEC
            if due > clock.ns:  # postponed by traffic since it was armed
                clock.mod_timer(self.idle_timer, due)
                return
        self.expire()

    def expire(self) -> None:
        """The idle timeout ran out: log it, allow a reconnect, shut the link down."""
        net = self.net
        msecs = (net.kernel.clock.ns - self.tv_timer) // NSEC_PER_MSEC
        net.printk(f"ramster: Connection to {self.node.describe()} has been idle for "
                   f"{msecs // 1000}.{msecs % 1000} secs, shutting it down.", KERN_NOTICE)
        net.nodes[self.node.num].timeout = 1
        net.shutdown_sc(self)

    def reset_idle_timer(self) -> None:
        clock = self.net.kernel.clock
        cl = self.net.nm.cluster
        if cl is None:
            return
        clock.del_timer(self.keepalive_timer)
        clock.mod_timer(self.keepalive_timer, clock.ns + cl.keepalive_delay_ms * NSEC_PER_MSEC)
        self.tv_timer = clock.ns
        clock.mod_timer(self.idle_timer, clock.ns + cl.idle_timeout_ms * NSEC_PER_MSEC)

    def postpone_idle(self) -> None:
        """Every message pushes the idle timeout (and the next keepalive) out.

        Only the time is recorded here; the timers move when they fire
        (``_idle_expired``/``_send_keep_req`` re-arm from ``tv_timer``), which
        is the same schedule without a timer operation per message.
        """
        if self.idle_timer.pending:
            self.tv_timer = self.net.kernel.clock.ns
            if not self.keepalive_timer.pending:
                self.reset_idle_timer()


class R2NetNode:
    """``struct r2net_node``: the connection state kept for one node number."""

    def __init__(self, net: "R2Net", num: int):
        self.num = num
        self.sc: SockContainer | None = None
        self.sc_valid = False
        #: until we see a heartbeat from a node, sends fail with this
        self.persistent_error = -errno.ENOTCONN
        self.timeout = 0
        self.last_connect_attempt: int | None = None
        self.connect_work = Timer(lambda: net.start_connect(self), "r2net_start_connect")
        self.connect_expired = Timer(lambda: net.connect_expired(self), "r2net_connect_expired")
        self.waiters: dict[int, _Waiter] = {}
        self.next_id = 0


class R2Net:
    """One kernel's r2net: listener, per-node connection state, message handlers."""

    #: real seconds a task waits for the network before it counts as the peer not answering
    reply_timeout_s = 10.0
    ping_timeout_s = 5.0
    connect_timeout_s = 5.0

    def __init__(self, kernel: "Kernel", nm: NodeManager, hb: Heartbeat):
        self.kernel = kernel
        self.nm = nm
        self.hb = hb
        nm.net = self
        self.nodes = [R2NetNode(self, i) for i in range(R2NM_MAX_NODES)]
        self.handlers: dict[tuple[int, int], _Handler] = {}
        self.listen_sock: socket.socket | None = None
        self.listening = False          # r2net_wq != NULL
        self.connected = 0              # r2net_connected_peers
        #: the nodes that have a socket container now (what ``poll`` looks at)
        self.live: dict[int, R2NetNode] = {}
        self.cond = threading.Condition()
        #: tasks sleeping on ``cond`` (wake-ups are skipped when there are none)
        self.cond_waiters = 0
        self.connector_id = 1
        #: the fail_peer fault point's should_fail (ramster_init hands it over), or None
        self.fail_peer: Callable[[int], bool] | None = None
        hb.up_callbacks.append(self.hb_node_up)
        hb.down_callbacks.append(self.hb_node_down)

    # -- small services -------------------------------------------------------------
    def printk(self, text: str, level: int = KERN_INFO) -> None:
        self.kernel.printk(text, level)

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """``wait_event`` with the big lock dropped, bounded by ``timeout_s`` real seconds."""
        def block() -> bool:
            deadline = time.monotonic() + timeout_s
            with self.cond:
                self.cond_waiters += 1
                try:
                    while not done():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        self.cond.wait(min(left, 0.05))
                finally:
                    self.cond_waiters -= 1
            return True
        return self.kernel.bkl.sleep(block)

    def _queue_delayed(self, timer: Timer, delay_ns: int) -> None:
        if not timer.pending:  # queue_delayed_work does nothing for queued work
            self.kernel.clock.mod_timer(timer, self.kernel.clock.ns + delay_ns)

    def connected_peers(self) -> int:
        return self.connected

    def node_state(self, num: int) -> tuple[bool, int]:
        """(valid, persistent error) of a node's connection, for RAMster's pre-checks."""
        nn = self.nodes[num]
        return nn.sc_valid, nn.persistent_error

    # -- handlers ------------------------------------------------------------------
    def register_handler(self, msg_type: int, key: int, max_len: int, func: HandlerFunc,
                         post: Callable[[int], None] | None = None) -> int:
        if max_len > R2NET_MAX_PAYLOAD_BYTES or not msg_type or func is None:
            return -errno.EINVAL
        if (msg_type, key) in self.handlers:
            return -errno.EEXIST
        self.handlers[(msg_type, key)] = _Handler(max_len, func, post)
        return 0

    def unregister_handlers(self) -> None:
        self.handlers.clear()

    # -- connection state (r2net_set_nn_state) ----------------------------------------
    def set_nn_state(self, nn: R2NetNode, sc: SockContainer | None, valid: bool, err: int) -> None:
        was_valid = nn.sc_valid
        old_sc = nn.sc
        if old_sc is not None and sc is None:
            self.connected -= 1
        elif old_sc is None and sc is not None:
            self.connected += 1
        if was_valid and not valid and err == 0:
            err = -errno.ENOTCONN
        nn.sc = sc
        if sc is None:
            self.live.pop(nn.num, None)
        else:
            self.live[nn.num] = nn
        nn.sc_valid = bool(valid)
        nn.persistent_error = err
        self.wake()
        clock = self.kernel.clock
        if was_valid and not valid and old_sc is not None:
            self.printk(f"ramster: No longer connected to {old_sc.node.describe()}", KERN_NOTICE)
            for w in list(nn.waiters.values()):  # r2net_complete_nodes_nsw
                self._complete(nn, w, R2NET_ERR_DIED, 0)
        if not was_valid and valid and sc is not None:
            clock.del_timer(nn.connect_expired)
            verb = "Connected to" if self.nm.this_node() > sc.node.num else \
                "Accepted connection from"
            self.printk(f"ramster: {verb} {sc.node.describe()}", KERN_NOTICE)
        if not valid and self.listening and self.nm.cluster is not None:
            rd = self.nm.cluster.reconnect_delay_ms * NSEC_PER_MSEC
            delay = rd
            if nn.last_connect_attempt is not None:
                delay = nn.last_connect_attempt + rd - clock.ns
            if delay > rd or delay < 0:
                delay = 0
            self._queue_delayed(nn.connect_work, delay)
            self._queue_delayed(nn.connect_expired,
                                delay + self.nm.cluster.idle_timeout_ms * NSEC_PER_MSEC)
        if old_sc is not None and old_sc is not sc:
            self.shutdown_sc(old_sc)

    def ensure_shutdown(self, sc: SockContainer, err: int) -> None:
        nn = self.nodes[sc.node.num]
        if nn.sc is sc:
            self.set_nn_state(nn, None, False, err)

    def shutdown_sc(self, sc: SockContainer) -> None:
        """``r2net_shutdown_sc``: stop the timers and the socket once, then detach."""
        if sc.registered:
            sc.registered = False
            sc.forget()
            clock = self.kernel.clock
            clock.del_timer(sc.idle_timer)
            clock.del_timer(sc.keepalive_timer)
            try:
                sc.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sc.node.pins -= 1
            self.wake()
        self.ensure_shutdown(sc, 0)

    # -- replies -------------------------------------------------------------------
    def _complete(self, nn: R2NetNode, w: _Waiter, sys_status: int, status: int) -> None:
        if not w.done:
            w.done = True
            w.sys_status = sys_status
            w.status = status
            nn.waiters.pop(w.id, None)
            if self.cond_waiters:  # a sender reading its own reply needs no wake-up
                self.wake()

    def _complete_id(self, nn: R2NetNode, msg_num: int, sys_status: int, status: int) -> None:
        w = nn.waiters.get(msg_num)
        if w is not None:
            self._complete(nn, w, sys_status if 0 <= sys_status < 4 else R2NET_ERR_DIED, status)

    # -- sending (r2net_send_message_vec) ----------------------------------------------
    def send_message(self, msg_type: int, key: int, data: bytes, target: int) -> tuple[int, int]:
        """Send and wait for the reply: (system errno, handler status)."""
        if not self.listening:
            return -errno.ESRCH, 0
        if len(data) > R2NET_MAX_PAYLOAD_BYTES:
            return -errno.EINVAL, 0
        if target == self.nm.this_node():
            return -errno.ELOOP, 0
        if not 0 <= target < R2NM_MAX_NODES:
            return -errno.EINVAL, 0
        nn = self.nodes[target]
        if not (nn.persistent_error or nn.sc_valid):
            # a connect is under way in real time: wait for it; a reconnect that waits for
            # virtual time cannot come while this task blocks, so that is -ENOTCONN here
            self.wait(lambda: bool(nn.persistent_error or nn.sc_valid or nn.sc is None),
                      self.connect_timeout_s)
        if nn.persistent_error:
            return nn.persistent_error, 0
        sc = nn.sc
        if not nn.sc_valid or sc is None:
            return -errno.ENOTCONN, 0
        fail = self.fail_peer
        if fail is not None and fail(1):
            # fail_peer: the peer died with this message in flight; nothing reached it and the
            # sender sees what r2net_complete_nodes_nsw reports (R2NET_ERR_DIED)
            return -errno.EHOSTDOWN, 0
        w = _Waiter(nn.next_id)
        nn.next_id = (nn.next_id + 1) & 0x7FFFFFFF
        nn.waiters[w.id] = w
        ret = sc.send(_HDR.pack(R2NET_MSG_MAGIC, len(data), msg_type, 0, 0, 0,
                                key & 0xFFFFFFFF, w.id) + data)
        if ret < 0:
            nn.waiters.pop(w.id, None)
            return ret, 0
        answered = self._wait_reply(sc, _ReplyDone(w, nn), self.reply_timeout_s)
        if not answered and nn.sc is sc and sc.registered:
            sc.expire()                 # the peer stopped answering: what the idle timer does
        nn.waiters.pop(w.id, None)
        if not w.done:
            return -errno.EHOSTDOWN, 0
        ret = SYS_ERR_TO_ERRNO[w.sys_status]
        return ret, (w.status if ret == 0 else 0)

    # -- receiving ---------------------------------------------------------------------
    def _rx_thread(self, sc: SockContainer) -> None:
        """``r2net_rx_until_empty``: read messages whenever no waiting sender is reading them."""
        sock = sc.sock
        poller = select.poll()  # its own: a poll object is not shared between threads
        poller.register(sock, select.POLLIN)
        monotonic = time.monotonic
        spin_until = 0.0
        try:
            while sc.registered:
                if sc.senders or monotonic() - sc.sender_left < RX_PARK_S:
                    # a sender is reading its replies (and whatever else comes) itself: two
                    # readers woken by every reply would cost both a thread switch
                    time.sleep(RX_PARK_S)
                    continue
                try:
                    ready = poller.poll(0 if monotonic() < spin_until else 500)
                except (OSError, ValueError):
                    self._rx_done(sc, -errno.EBADF)
                    break
                if not ready:
                    continue
                with sc.rx_lock:
                    if not sc.registered:
                        break
                    ret = self._read_one(sc)  # non-blocking: a waiting sender may have read it
                if ret <= 0:
                    self._rx_done(sc, ret)
                    break
                if sc.in_process_peer() is None:
                    spin_until = monotonic() + SPIN_S
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _read_one(self, sc: SockContainer) -> int:
        """Read what the socket has and process every complete unit (caller holds ``rx_lock``).

        1: progress (or nothing to read); 0: the peer closed; <0: an error
        that closes the link (bad handshake, bad magic, an oversized header).
        """
        try:
            data = sc.sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 1  # another reader took it
        except OSError:
            return 0
        if not data:
            return 0
        if sc.rxbuf:  # the rest of a message that came in pieces
            sc.rxbuf += data
            data = bytes(sc.rxbuf)
            sc.rxbuf.clear()
        size = len(data)
        unpack_from = _HDR.unpack_from
        pos = 0
        ret = 1
        with self.kernel.bkl:
            while sc.registered:
                if not sc.handshake_ok:
                    if size - pos < HANDSHAKE_SIZE:
                        break
                    raw = data[pos:pos + HANDSHAKE_SIZE]
                    pos += HANDSHAKE_SIZE
                    if not self._check_handshake(sc, raw):
                        ret = -errno.EPROTO
                        break
                    continue
                if size - pos < HDR_SIZE:
                    break
                fields = unpack_from(data, pos)
                data_len = fields[1]
                if data_len > R2NET_MAX_PAYLOAD_BYTES:
                    ret = -errno.EOVERFLOW  # a framing error closes the connection
                    break
                end = pos + HDR_SIZE + data_len
                if size < end:
                    break
                if fields[0] == R2NET_MSG_STATUS_MAGIC:  # the common case: a reply to a sender
                    sc.postpone_idle()
                    self._complete_id(self.nodes[sc.node.num], fields[7],
                                      _s32(fields[4]), _s32(fields[5]))
                    pos = end
                    continue
                payload = data[pos + HDR_SIZE:end]
                pos = end
                if self._process_message(sc, R2NetMsg.from_fields(fields, sc.node.num),
                                         payload) < 0:
                    ret = -errno.EPIPE
                    break
            if not sc.registered and ret > 0:
                ret = -errno.ENOTCONN
        if pos < size:
            sc.rxbuf += data[pos:]
        return ret

    def _rx_done(self, sc: SockContainer, ret: int) -> None:
        """The link ended on the receive side: EOF (the peer went away) or an error."""
        with self.kernel.bkl:
            if sc.registered and ret == 0:
                self.printk(f"ramster: Connection to {sc.node.describe()} shutdown, "
                            f"state {TCP_CLOSE_WAIT}", KERN_INFO)
            self.shutdown_sc(sc)

    def poll(self) -> None:
        """Take in, now, whatever every connection has received (a message, a close).

        Run at the start of each console command and before RAMster's
        connection checks, so a peer's close that happened before is always
        seen before — never during — what comes next, whichever thread reads it.
        """
        for nn in list(self.live.values()):
            sc = nn.sc
            if sc is None or not sc.registered:
                continue
            if sc.rx_lock.acquire(blocking=False):  # the usual case: nobody else is reading
                try:
                    try:
                        ready = sc.poller.poll(0)
                    except (OSError, ValueError):
                        ready, ret = [], 0
                    else:
                        ret = self._read_one(sc) if ready else 1
                finally:
                    sc.rx_lock.release()
                if ret <= 0:
                    self._rx_done(sc, ret)
                continue

            def take(sc: SockContainer = sc) -> int:  # noqa: B023
                if not sc.rx_lock.acquire(timeout=self.ping_timeout_s):
                    return 1
                try:
                    if not sc.registered:
                        return 1
                    try:
                        ready, _, _ = select.select([sc.sock], [], [], 0)
                    except (OSError, ValueError):
                        return 0
                    return self._read_one(sc) if ready else 1
                finally:
                    sc.rx_lock.release()
            ret = self.kernel.bkl.sleep(take)
            if ret <= 0:
                self._rx_done(sc, ret)

    def _wait_reply(self, sc: SockContainer, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for a reply, reading the socket ourselves when the receive thread is idle.

        Linux's sender sleeps and the rx work wakes it; here the waiting task
        takes the reader's role when it can (one reader at a time, ``rx_lock``),
        which saves a thread hand-off per round trip. When the peer is an r2net
        of this process, the task first runs the peer's receive work too
        (``_serve_peer``), so an in-process round trip wakes no thread at all.
        """
        poller = sc.poller
        rx_lock = sc.rx_lock
        sleep = self.kernel.bkl.sleep
        monotonic = time.monotonic
        deadline = monotonic() + timeout_s
        sc.senders += 1
        try:
            while not done():
                left = deadline - monotonic()
                if left <= 0:
                    return False
                peer = sc.in_process_peer()
                if peer is not None and not peer.net.kernel.bkl.held():
                    # not while this task holds the peer's big lock itself: that CPU is busy
                    sleep(self._serve_peer, peer)
                    if done():
                        continue
                if sc.registered and rx_lock.acquire(blocking=False):
                    # rx_lock, then the big lock: the order the receive thread takes them in;
                    # only the wait drops the big lock, and the read runs with it taken back
                    ret = 1
                    try:
                        if done() or not sc.registered:
                            continue
                        try:
                            if peer is None:  # the reply comes from another process
                                ready = sleep(_spin_poll, poller, min(left, 0.05))
                            else:
                                ready = sleep(poller.poll, min(left, 0.05) * 1000)
                        except (OSError, ValueError):
                            ready = []
                        if ready:
                            ret = self._read_one(sc)
                    finally:
                        rx_lock.release()
                    if ret <= 0:
                        self._rx_done(sc, ret)
                else:
                    sleep(self._cond_wait, done, min(left, 0.005))
            return True
        finally:
            sc.senders -= 1
            sc.sender_left = monotonic()

    @staticmethod
    def _serve_peer(peer: SockContainer) -> None:
        """Run an in-process peer's receive work on this task, if its reader is free.

        The caller waits for that peer's answer with its own big lock dropped.
        The peer's ``rx_lock`` (tried only, never waited for), then its big lock
        inside ``_read_one``: the locks and the order its receive thread takes;
        its receive thread stays parked meanwhile (``sender_left``). The peer
        reads, handles and answers exactly what its receive thread would have;
        only the thread that runs the work differs, and the round trip needs no
        thread to wake (two wake-ups of a thread on another CPU were most of an
        in-process round trip's time).
        """
        rx_lock = peer.rx_lock
        if not rx_lock.acquire(blocking=False):
            return  # its receive thread (or one of its senders) is reading
        ret = 1
        try:
            if not peer.registered:
                return
            peer.sender_left = time.monotonic()
            try:
                ready = peer.poller.poll(0)
            except (OSError, ValueError):
                ready = []  # its receive thread sees the same and handles it
            if ready:
                ret = peer.net._read_one(peer)
            peer.sender_left = time.monotonic()
        finally:
            rx_lock.release()
        if ret <= 0:
            peer.net._rx_done(peer, ret)

    def _cond_wait(self, done: Callable[[], bool], timeout_s: float) -> None:
        with self.cond:
            self.cond_waiters += 1  # counted before the check: no lost wake-up
            try:
                if not done():
                    self.cond.wait(timeout_s)
            finally:
                self.cond_waiters -= 1

    def _check_handshake(self, sc: SockContainer, raw: bytes) -> bool:
        hand = R2NetHandshake.unpack(raw)
        cl = self.nm.cluster
        nn = self.nodes[sc.node.num]
        if cl is None:
            self.ensure_shutdown(sc, -errno.ENOTCONN)
            return False
        who = f"ramster: {sc.node.describe()}"
        problem = None
        if hand.protocol_version != R2NET_PROTOCOL_VERSION:
            problem = (f"{who} Advertised net protocol version {hand.protocol_version} but "
                       f"{R2NET_PROTOCOL_VERSION} is required. Disconnecting.")
        elif hand.r2net_idle_timeout_ms != cl.idle_timeout_ms:
            problem = (f"{who} uses a network idle timeout of {hand.r2net_idle_timeout_ms} ms, "
                       f"but we use {cl.idle_timeout_ms} ms locally. Disconnecting.")
        elif hand.r2net_keepalive_delay_ms != cl.keepalive_delay_ms:
            problem = (f"{who} uses a keepalive delay of {hand.r2net_keepalive_delay_ms} ms, "
                       f"but we use {cl.keepalive_delay_ms} ms locally. Disconnecting.")
        elif hand.r2hb_heartbeat_timeout_ms != self.hb.max_write_timeout_ms:
            problem = (f"{who} uses a heartbeat timeout of {hand.r2hb_heartbeat_timeout_ms} ms, "
                       f"but we use {self.hb.max_write_timeout_ms} ms locally. Disconnecting.")
        if problem is not None:
            self.printk(problem, KERN_NOTICE)
            self.ensure_shutdown(sc, -errno.ENOTCONN)
            return False
        sc.handshake_ok = True
        if nn.sc is sc:
            sc.reset_idle_timer()
            nn.timeout = 0
            self.set_nn_state(nn, sc, True, 0)
        return True

    def _process_message(self, sc: SockContainer, hdr: R2NetMsg, payload: bytes) -> int:
        nn = self.nodes[sc.node.num]
        sc.postpone_idle()
        magic = hdr.magic
        if magic == R2NET_MSG_STATUS_MAGIC:
            self._complete_id(nn, hdr.msg_num, hdr.sys_status, hdr.status)
            return 0
        if magic == R2NET_MSG_KEEP_REQ_MAGIC:
            return min(0, sc.send(keepalive(R2NET_MSG_KEEP_RESP_MAGIC)))
        if magic == R2NET_MSG_KEEP_RESP_MAGIC:
            sc.pongs += 1
            self.wake()
            return 0
        if magic not in (R2NET_MSG_MAGIC, R2NET_MSG_DATA_MAGIC):
            return -errno.EINVAL  # bad magic
        syserr, result = self.deliver(hdr, payload)
        if magic == R2NET_MSG_DATA_MAGIC and syserr == R2NET_ERR_NONE:
            # a data reply to our own request: its handler's value completes the wait
            # (an unsolicited one was dropped by deliver and completes nothing)
            self._complete_id(nn, hdr.msg_num, hdr.sys_status,
                              result if isinstance(result, int) else 0)
            return 0
        if isinstance(result, DataReply):
            return min(0, sc.send(_HDR.pack(R2NET_MSG_DATA_MAGIC, len(result.data),
                                            result.msg_type, 0, syserr, 0,
                                            result.key & 0xFFFFFFFF,
                                            hdr.msg_num & 0xFFFFFFFF) + result.data))
        status = result
        ret = min(0, sc.send(_HDR.pack(R2NET_MSG_STATUS_MAGIC, 0, hdr.msg_type, 0, syserr,
                                       status & 0xFFFFFFFF, hdr.key & 0xFFFFFFFF,
                                       hdr.msg_num & 0xFFFFFFFF)))
        if syserr == R2NET_ERR_NONE:
            handler = self.handlers.get((hdr.msg_type, hdr.key))
            if handler is not None and handler.post is not None:
                handler.post(status)
        return ret

    def deliver(self, hdr: R2NetMsg, payload: bytes) -> tuple[int, HandlerResult]:
        """Hand one message from node ``hdr.sender`` to its handler: (sys error, result).

        The part of r2net_process_message between reading a message and
        answering it, with no socket: the receive path and the fuzz target call
        it. No handler is R2NET_ERR_NO_HNDLR, a payload over the handler's
        maximum R2NET_ERR_OVERFLOW. A data reply (R2NET_MSG_DATA_MAGIC) is only
        taken from a node we have a request of that number outstanding with;
        any other is dropped, -ENOENT, and no handler runs (kmodemu: Linux runs
        the handler for any data reply, docs/security.md).
        """
        if hdr.magic == R2NET_MSG_DATA_MAGIC:
            if not 0 <= hdr.sender < len(self.nodes) or \
                    hdr.msg_num not in self.nodes[hdr.sender].waiters:
                return R2NET_ERR_NONE, -errno.ENOENT
        handler = self.handlers.get((hdr.msg_type, hdr.key))
        if handler is None:
            return R2NET_ERR_NO_HNDLR, 0
        if hdr.data_len > handler.max_len or len(payload) > handler.max_len:
            self.printk("ramster_r2net, message length problem", KERN_ERR)
            return R2NET_ERR_OVERFLOW, 0
        return R2NET_ERR_NONE, handler.func(hdr, payload)

    def _handshake_bytes(self) -> bytes:
        cl = self.nm.cluster
        assert cl is not None
        return R2NetHandshake(R2NET_PROTOCOL_VERSION, self.connector_id,
                              self.hb.max_write_timeout_ms, cl.idle_timeout_ms,
                              cl.keepalive_delay_ms, cl.reconnect_delay_ms).pack()

    def _start_rx(self, sc: SockContainer) -> None:
        t = threading.Thread(target=self._rx_thread, args=(sc,), daemon=True,
                             name=f"r2net-rx-{sc.node.num}")
        t.start()

    # -- connecting (r2net_start_connect, r2net_connect_expired) ------------------------
    def start_connect(self, nn: R2NetNode) -> None:
        this = self.nm.this_node()
        if this <= nn.num:
            return
        node = self.nm.node_by_num(nn.num)
        mynode = self.nm.node_by_num(this)
        if node is None or mynode is None or not self.listening:
            return
        stop = nn.sc is not None or (nn.persistent_error != 0 and (
            nn.persistent_error != -errno.ENOTCONN or nn.timeout == 0))
        if stop:
            return
        nn.last_connect_attempt = self.kernel.clock.ns
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sc = SockContainer(self, node, sock)
        try:
            sock.bind((mynode.address, 0))
        except OSError as e:
            self.printk(f"ramster: ERROR: bind failed with {-(e.errno or 1)} at address "
                        f"{mynode.address}", KERN_ERR)
            self.printk(f"ramster: Connect attempt to {node.describe()} failed with errno "
                        f"{-(e.errno or 1)}", KERN_NOTICE)
            sc.registered = False
            node.pins -= 1
            sock.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.set_nn_state(nn, sc, False, 0)
        sock.settimeout(self.connect_timeout_s)

        def connect() -> bool:
            try:
                sock.connect((node.address, node.ipv4_port))
                return True
            except OSError:
                return False
        ok = self.kernel.bkl.sleep(connect)
        if not ok:
            if sc.registered:  # the socket went to TCP_CLOSE without ever connecting
                self.printk(f"ramster: Connection to {node.describe()} shutdown, "
                            f"state {TCP_CLOSE}", KERN_INFO)
            self.shutdown_sc(sc)
            sock.close()
            return
        sock.settimeout(None)
        sc.connected()
        self._start_rx(sc)
        if sc.send(self._handshake_bytes()) < 0:  # r2net_sc_connect_completed
            self.ensure_shutdown(sc, 0)
            return
        # wait for the acceptor's handshake, then one keepalive round trip so that the
        # acceptor has processed ours too (both dmesgs are complete when we return)
        self.wait(lambda: nn.sc_valid or not sc.registered, self.connect_timeout_s)
        if nn.sc is sc and nn.sc_valid:
            sc.ping()

    def connect_expired(self, nn: R2NetNode) -> None:
        if not nn.sc_valid and self.nm.cluster is not None:
            idle = self.nm.cluster.idle_timeout_ms
            self.printk(f"ramster: No connection established with node {nn.num} after "
                        f"{idle // 1000}.{idle % 1000} seconds, giving up.", KERN_NOTICE)
            self.set_nn_state(nn, None, False, -errno.ENOTCONN)

    def disconnect_node(self, node: R2NMNode) -> None:
        """Don't reconnect until it is heartbeating again."""
        nn = self.nodes[node.num]
        nn.timeout = 0
        self.set_nn_state(nn, None, False, -errno.ENOTCONN)
        self.kernel.clock.del_timer(nn.connect_expired)
        self.kernel.clock.del_timer(nn.connect_work)

    # -- heartbeat callbacks --------------------------------------------------------------
    def hb_node_up(self, num: int) -> None:
        nn = self.nodes[num]
        if self.nm.cluster is not None:  # ensure an immediate connect attempt
            nn.last_connect_attempt = self.kernel.clock.ns - (
                self.nm.cluster.reconnect_delay_ms * NSEC_PER_MSEC + 1)
        if num != self.nm.this_node():
            nn.timeout = 0
            if nn.persistent_error:
                self.set_nn_state(nn, None, False, 0)

    def hb_node_down(self, num: int) -> None:
        node = self.nm.node_by_num(num)
        if node is not None and num != self.nm.this_node():
            self.disconnect_node(node)

    def hb_node_up_manual(self, num: int) -> None:
        if self.nm.cluster is None:
            self.printk("ramster: cluster not alive, node_up_manual ignored", KERN_ERR)
            return
        self.hb.manual_set_node_heartbeating(num)
        self.hb_node_up(num)

    # -- listening (r2net_start_listening / stop) ---------------------------------------
    def start_listening(self, node: R2NMNode) -> int:
        if self.listening:
            return -errno.EBUSY
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((node.address, node.ipv4_port))
        except OSError as e:
            err = -(e.errno or errno.EINVAL)
            self.printk(f"ramster: Error {err} while binding socket at "
                        f"{node.address}:{node.ipv4_port}", KERN_ERR)
            sock.close()
            return err
        try:
            sock.listen(64)
        except OSError as e:
            err = -(e.errno or errno.EINVAL)
            self.printk(f"ramster: Error {err} while listening on "
                        f"{node.address}:{node.ipv4_port}", KERN_ERR)
            sock.close()
            return err
        self.listen_sock = sock
        self.listening = True
        threading.Thread(target=self._listen_thread, args=(sock,), daemon=True,
                         name="r2net-listen").start()
        return 0

    def stop_listening(self, node: R2NMNode | None = None) -> None:
        sock = self.listen_sock
        if sock is None:
            return
        self.listen_sock = None
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        for n in self.nm.configured_nodes():
            self.disconnect_node(n)
        self.listening = False

    def _listen_thread(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, (ip, port) = sock.accept()
            except OSError:
                return
            with self.kernel.bkl:
                if self.listen_sock is not sock:
                    conn.close()
                    return
                self._accept_one(conn, ip, port)

    def _accept_one(self, conn: socket.socket, ip: str, port: int) -> None:
        """``r2net_accept_one``: who may connect to us, and on what terms."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        addr = _ip_to_int(ip)
        node = self.nm.node_by_ip(addr)
        this = self.nm.this_node()
        if node is None:
            self.printk(f"ramster: Attempt to connect from unknown node at {ip}:{port}",
                        KERN_NOTICE)
            conn.close()
            return
        if this >= node.num:
            local = self.nm.node_by_num(this)
            assert local is not None
            self.printk(f"ramster: Unexpected connect attempt seen at node '{local.name}' "
                        f"({local.num}, {local.address}:{local.ipv4_port}) from node "
                        f"'{node.name}' ({node.num}, {ip}:{port})", KERN_NOTICE)
            conn.close()
            return
        if not self.hb.check_node_heartbeating(node.num):
            conn.close()  # it isn't heartbeating (mlog ML_CONN: not printed by default)
            return
        nn = self.nodes[node.num]
        if nn.sc is not None:
            self.printk(f"ramster: Attempt to connect from node '{node.name}' at {ip}:{port} "
                        "but it already has an open connection", KERN_NOTICE)
            conn.close()
            return
        sc = SockContainer(self, node, conn)
        sc.connected()
        nn.timeout = 0
        self.set_nn_state(nn, sc, False, 0)
        self._start_rx(sc)
        if sc.send(self._handshake_bytes()) < 0:
            self.ensure_shutdown(sc, 0)

    def shutdown(self) -> None:
        """Close every socket (the machine is going away)."""
        with self.kernel.bkl:
            self.stop_listening()
            for nn in self.nodes:
                if nn.sc is not None:
                    self.shutdown_sc(nn.sc)


def _spin_poll(poller: "select.poll", timeout_s: float) -> list[tuple[int, int]]:
    """``poller.poll``, polling without sleeping for up to ``SPIN_S`` first (busy polling).

    A reply from another process usually comes within that time: caught this way,
    no thread has to be woken for it.
    """
    poll = poller.poll
    monotonic = time.monotonic
    spin_until = monotonic() + min(SPIN_S, timeout_s)
    while True:
        ready = poll(0)
        if ready or monotonic() >= spin_until:
            break
    return ready or poll(max(timeout_s - SPIN_S, 0) * 1000)


def _ip_to_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


__all__ = ["R2Net", "DataReply", "SockContainer", "ip_to_str"]
