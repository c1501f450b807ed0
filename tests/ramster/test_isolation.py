"""A peer acts for itself only: messages are judged by the connection they came on.

Node 1 (kmodemu) keeps swap pages on node 0 (kmodemu); node 2 is a hand-written
peer, configured and up, that speaks r2net byte by byte and tries to act for
node 1: put, get, flush over node 1's pages on node 0 (-EPERM), answer a get
node 1 never sent (dropped, -ENOENT), and send short messages (-EINVAL). Every
refusal leaves both nodes as they were and the link up for what comes next.
"""

from __future__ import annotations

import errno
import socket

import pytest

from kmodemu_plugins.ramster.r2net import (
    RMSTR_KEY,
    RMSTR_TMEM_ASYNC_GET_AND_FREE_REQUEST,
    RMSTR_TMEM_ASYNC_GET_REPLY,
    RMSTR_TMEM_ASYNC_GET_REQUEST,
    RMSTR_TMEM_FLOBJ,
    RMSTR_TMEM_FLUSH,
    RMSTR_TMEM_PUT_EPH,
    RMSTR_TMEM_PUT_PERS,
    XHandle,
)
from kmodemu_plugins.ramster.ramster import Request
from kmodemu_plugins.ramster.tcp_internal import (
    HDR_SIZE,
    R2NET_MSG_DATA_MAGIC,
    R2NET_MSG_KEEP_REQ_MAGIC,
    R2NET_MSG_KEEP_RESP_MAGIC,
    R2NET_MSG_MAGIC,
    R2NET_MSG_STATUS_MAGIC,
    R2NetHandshake,
    R2NetMsg,
    keepalive,
)
from kmodemu_plugins.ramster.zcache_side import RemotePampd

from .fakes import Node, page, sha
from .test_tcp import IPS, free_port

SYS = "/sys/kernel/mm/ramster"
EPH, PERS = 0, 1
OID = (9, 8, 7)


class Raw:
    """Node 2, by hand: one TCP connection to one kmodemu node."""

    def __init__(self, node: Node):
        self.s = socket.socket()
        self.s.settimeout(5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.bind((IPS[2], 0))
        self.s.connect((node.ip, node.port))
        self.s.recv(32, socket.MSG_WAITALL)                # the node's handshake
        self.s.sendall(R2NetHandshake(11, 1, 60000, 30000, 2000, 2000).pack())
        self.num = 0

    def send(self, msg_type: int, payload: bytes, magic: int = R2NET_MSG_MAGIC,
             msg_num: int | None = None) -> None:
        if msg_num is None:
            msg_num, self.num = self.num, self.num + 1
        self.s.sendall(R2NetMsg(magic, len(payload), msg_type, key=RMSTR_KEY,
                                msg_num=msg_num).pack() + payload)

    def reply(self) -> tuple[R2NetMsg, bytes]:
        while True:
            hdr = R2NetMsg.unpack(self.s.recv(HDR_SIZE, socket.MSG_WAITALL))
            body = self.s.recv(hdr.data_len, socket.MSG_WAITALL) if hdr.data_len else b""
            if hdr.magic == R2NET_MSG_KEEP_REQ_MAGIC:
                self.s.sendall(keepalive(R2NET_MSG_KEEP_RESP_MAGIC))
                continue
            return hdr, body

    def call(self, msg_type: int, payload: bytes) -> tuple[R2NetMsg, bytes]:
        self.send(msg_type, payload)
        return self.reply()

    def close(self) -> None:
        self.s.close()


def xh(client: int, index: int, size: int = 0, pool: int = PERS, extra: int = 0) -> bytes:
    return XHandle(client, pool, OID, index, size, 0, extra).pack()


@pytest.fixture
def trio():
    """Nodes 0 and 1 (kmodemu) and 2 (raw, made by the third item); node 1 has swap pages
    0..3 on node 0."""
    port = free_port(*IPS)

    class Peer2:
        num, ip = 2, IPS[2]
    Peer2.port = port
    n0, n1 = Node(0, IPS[0], port), Node(1, IPS[1], port)
    for n in (n0, n1):
        n.configure("c", [n0, n1, Peer2])              # type: ignore[list-item]
    for n in (n0, n1):
        for num in range(3):
            n.write(f"{SYS}/manual_node_up", str(num))
        n.zc.new_pool(EPH, True)
        n.zc.new_pool(PERS, False)
    n1.write(f"{SYS}/remote_target_nodenum", "0")
    for i in range(4):
        n1.zc.put(PERS, OID, i, page(i))
    n1.write(f"{SYS}/pers_remotify_enable", "1")
    n1.sleep(60)
    assert n0.counter("foreign_pers_pages") == 4
    n1.write(f"{SYS}/pers_remotify_enable", "0")
    raws: list[Raw] = []

    def raw(to: Node) -> Raw:
        """Node 2's raw socket to ``to``, closed at teardown."""
        raws.append(Raw(to))
        return raws[-1]
    yield n0, n1, raw
    for r in raws:
        r.close()
    for n in (n0, n1):
        n.close()


def snapshot(n: Node):
    return (dict(n.zc.foreign), dict(n.zc.entries), n.rs.counters.items(),
            n.read(f"{SYS}/remote_pers_pages"))


def test_requests_for_another_client_are_eperm_and_change_nothing(trio):
    n0, n1, raw = trio
    r = raw(n0)
    before = snapshot(n0)
    data = b"forged zpage"
    for msg_type, payload in ((RMSTR_TMEM_PUT_PERS, xh(1, 0, len(data)) + data),
                              (RMSTR_TMEM_PUT_EPH, xh(1, 9, len(data), EPH) + data),
                              (RMSTR_TMEM_ASYNC_GET_REQUEST, xh(1, 1)),
                              (RMSTR_TMEM_ASYNC_GET_AND_FREE_REQUEST, xh(1, 1)),
                              (RMSTR_TMEM_FLUSH, xh(1, 2)),
                              (RMSTR_TMEM_FLOBJ, xh(1, 0xFFFFFFFF)),
                              (RMSTR_TMEM_PUT_PERS, xh(0, 0, len(data)) + data)):
        hdr, body = r.call(msg_type, payload)
        # a status reply, never a data reply: nothing of node 1's leaves node 0
        assert (hdr.magic, hdr.sys_status, hdr.status, body) == \
            (R2NET_MSG_STATUS_MAGIC, 0, -errno.EPERM, b""), msg_type
    assert snapshot(n0) == before
    # acting for itself is fine, on the same link
    hdr, _ = r.call(RMSTR_TMEM_PUT_PERS, xh(2, 0, len(data)) + data)
    assert (hdr.magic, hdr.status) == (R2NET_MSG_STATUS_MAGIC, 0)
    assert n0.zc.foreign[(2, PERS, OID, 0)] == data
    assert n0.zc.foreign[(1, PERS, OID, 0)] != data
    assert n0.counter("foreign_pers_pages") == 5
    # node 1's pages all come back intact
    assert [sha(n1.zc.get(PERS, OID, i)) for i in range(4)] == [sha(page(i)) for i in range(4)]
    assert n1.counter("remote_pers_pages_succ_get") == 4
    assert n0.counter("foreign_pers_pages") == 1


def test_an_unsolicited_get_reply_is_dropped_and_changes_nothing(trio):
    n0, n1, raw = trio
    r = raw(n1)
    before = snapshot(n1)
    remote = n1.zc.entries[(PERS, OID, 0)]
    assert isinstance(remote, RemotePampd)
    junk = b"\x00" * 100
    for extra in (0, 1, 2, 1 << 40):                   # node 1 has no get outstanding
        r.send(RMSTR_TMEM_ASYNC_GET_REPLY, xh(1, 0, len(junk), extra=extra) + junk,
               magic=R2NET_MSG_DATA_MAGIC)
    r.send(RMSTR_TMEM_ASYNC_GET_REPLY, xh(1, 1), magic=R2NET_MSG_DATA_MAGIC)  # "not found"
    # the link still works: the reply to this proves node 1 read all of the above first
    hdr, _ = r.call(RMSTR_TMEM_PUT_EPH, xh(2, 5, 3, EPH) + b"abc")
    assert (hdr.magic, hdr.status) == (R2NET_MSG_STATUS_MAGIC, 0)
    after = snapshot(n1)
    assert after[1] == before[1] and after[3] == before[3]
    counters = dict(before[2], foreign_eph_pages=1, foreign_eph_pages_max=1)   # the put
    assert dict(after[2]) == counters
    assert n1.zc.entries[(PERS, OID, 0)] is remote
    assert after[0] == {**before[0], (2, EPH, OID, 5): b"abc"}
    assert sha(n1.zc.get(PERS, OID, 0)) == sha(page(0))
    # the dispatch itself: -ENOENT, and no handler ran
    msg = R2NetMsg(R2NET_MSG_DATA_MAGIC, 48 + len(junk), RMSTR_TMEM_ASYNC_GET_REPLY,
                   key=RMSTR_KEY, msg_num=12345, sender=0)
    with n1.kernel.bkl:
        assert n1.rs.net.deliver(msg, xh(1, 1, len(junk)) + junk) == (0, -errno.ENOENT)
    assert isinstance(n1.zc.entries[(PERS, OID, 1)], RemotePampd)
    # r2net itself drops a data reply nobody waits for, before any handler (here: a counter)
    calls: list[bytes] = []
    n1.rs.net.register_handler(300, 5, 64, lambda h, p: calls.append(p) or 0)
    with n1.kernel.bkl:
        assert n1.rs.net.deliver(R2NetMsg(R2NET_MSG_DATA_MAGIC, 1, 300, key=5, msg_num=3,
                                          sender=2), b"x") == (0, -errno.ENOENT)
        assert n1.rs.net.deliver(R2NetMsg(R2NET_MSG_MAGIC, 1, 300, key=5, msg_num=3,
                                          sender=2), b"x") == (0, 0)
    assert calls == [b"x"]


def test_a_reply_is_taken_only_from_the_node_asked_for_the_page_asked(trio):
    """With a get outstanding, the reply handler checks sender, page and client id."""
    n0, n1, _ = trio
    rn = n1.rs.rnet
    zpage = n0.zc.foreign[(1, PERS, OID, 0)]
    n1.rs._requests[77] = Request(True, 0, PERS, OID, 0)   # what repatriate records
    before = snapshot(n1)

    def reply(sender: int, payload: bytes) -> int:
        return rn._get_reply_handler(R2NetMsg(R2NET_MSG_DATA_MAGIC, len(payload),
                                              RMSTR_TMEM_ASYNC_GET_REPLY, sender=sender), payload)
    good = xh(1, 0, len(zpage), extra=77) + zpage
    assert reply(2, good) == -errno.ENOENT                 # node 2 was not asked
    assert reply(0, xh(1, 1, len(zpage), extra=77) + zpage) == -errno.ENOENT  # another page
    assert reply(0, xh(2, 0, len(zpage), extra=77) + zpage) == -errno.EPERM   # not our get
    assert reply(0, xh(1, 0, len(zpage) + 1, extra=77) + zpage) == -errno.EINVAL
    assert reply(0, good[:40]) == -errno.EINVAL
    # the right size but not the zpage sent: its byte sum differs, or (same bytes, another
    # order) it does not decompress: refused, and the request still waits for its answer
    assert reply(0, xh(1, 0, len(zpage), extra=77) + bytes(len(zpage))) == -errno.EINVAL
    assert reply(0, xh(1, 0, len(zpage), extra=77) + zpage[::-1]) == -errno.EINVAL
    assert snapshot(n1) == before
    assert reply(0, good) == 0                             # the real answer is taken
    assert n1.rs._landing.pop(77) == page(0)
    assert n1.counter("remote_pers_pages_succ_get") == 1
    assert reply(0, good) == -errno.ENOENT                 # once
    assert n1.counter("remote_pers_pages_succ_get") == 1


def test_short_messages_are_einval_and_the_link_survives(trio):
    n0, n1, raw = trio
    r = raw(n0)
    before = snapshot(n0)
    for msg_type, payload in ((RMSTR_TMEM_PUT_PERS, b"0123456789"),
                              (RMSTR_TMEM_PUT_PERS, xh(2, 0, 1000) + b"0123456789"),  # truncated
                              (RMSTR_TMEM_PUT_PERS, xh(2, 0, 3) + b"0123456789"),     # padded
                              (RMSTR_TMEM_PUT_EPH, xh(2, 0, 0)),                      # empty
                              (RMSTR_TMEM_ASYNC_GET_REQUEST, xh(1, 0)[:20]),
                              (RMSTR_TMEM_ASYNC_GET_AND_FREE_REQUEST, b""),
                              (RMSTR_TMEM_FLUSH, xh(1, 0)[:47]),
                              (RMSTR_TMEM_FLOBJ, b"x")):
        hdr, body = r.call(msg_type, payload)
        assert (hdr.magic, hdr.sys_status, hdr.status, body) == \
            (R2NET_MSG_STATUS_MAGIC, 0, -errno.EINVAL, b""), (msg_type, payload)
    assert snapshot(n0) == before
    assert n0.rs.net.node_state(2) == (True, 0)
    hdr, _ = r.call(RMSTR_TMEM_PUT_PERS, xh(2, 3, 4) + b"page")
    assert (hdr.magic, hdr.status) == (R2NET_MSG_STATUS_MAGIC, 0)
    assert n0.zc.foreign[(2, PERS, OID, 3)] == b"page"
    hdr, body = r.call(RMSTR_TMEM_ASYNC_GET_REQUEST, xh(2, 3))
    assert hdr.magic == R2NET_MSG_DATA_MAGIC and XHandle.unpack(body).size == 4
    assert body[48:] == b"page"


def test_autocreate_refuses_bad_pool_ids_and_types_before_creating_anything():
    """zcache_autocreate_pool's checks, on the real zcache: pool id and client id below 16,
    no ephemeral put into a persistent pool; a refused put leaves no client or pool behind."""
    from pathlib import Path

    from kmodemu.machine import Machine, MachineDef
    from kmodemu_plugins.zcache.main import ZcacheState, zcache_of
    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    with Machine(MachineDef(cmdline="zcache ramster noselfshrink", builtin=["zcache"],
                            module_path=[plugins])) as m:
        k = m.kernel
        ctx = k.modules.builtin["zcache"].ctx
        zc, rs = zcache_of(ctx), ctx.private(ZcacheState).ramster

        def put(msg_type: int, pool: int, sender: int = 1) -> int:
            z = zc.compressor.compress(page(pool))
            payload = XHandle(sender, pool, OID, 0, len(z)).pack() + z
            with k.bkl:
                syserr, result = rs.net.deliver(
                    R2NetMsg(R2NET_MSG_MAGIC, len(payload), msg_type, key=RMSTR_KEY,
                             sender=sender), payload)
            assert syserr == 0
            return result
        assert put(RMSTR_TMEM_PUT_PERS, 16) == -1
        assert put(RMSTR_TMEM_PUT_PERS, 3, sender=16) == -1
        assert sorted(zc.tmem.clients) == [0xFFFF]            # nothing was created
        assert put(RMSTR_TMEM_PUT_PERS, 0) == 0
        assert put(RMSTR_TMEM_PUT_EPH, 0) == -1
        assert k.dmesg().splitlines()[-1].endswith("] zcache_autocreate_pool: type mismatch")
        assert rs.counters.foreign_pers_pages == 1 and rs.counters.foreign_eph_pages == 0
        pools = zc.tmem.clients[1].pools
        assert pools[0] is not None and pools[0].persistent and pools[1:] == [None] * 15
