"""The bytes of r2net and RAMster: header and xhandle round trips, the checksum, framing.

The receive path parses messages in place from whatever one ``recv`` returned
and keeps a partial message for the next one; a peer that cuts its stream at
arbitrary points must be understood exactly as one that sends whole messages.
"""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu_plugins.ramster.r2net import XHandle, byte_sum
from kmodemu_plugins.ramster.tcp_internal import (
    HDR_SIZE,
    R2NET_MSG_STATUS_MAGIC,
    R2NetHandshake,
    R2NetMsg,
)

from .fakes import Node, free_port

u32 = st.integers(0, 0xFFFFFFFF)
s32 = st.integers(-(1 << 31), (1 << 31) - 1)


@given(st.binary(max_size=4096))
def test_byte_sum_is_the_sum_of_the_bytes_mod_256(data):
    assert byte_sum(data) == sum(data) & 0xFF


def test_byte_sum_at_the_piece_edges():
    for n in (255, 256, 257, 511, 512, 513, 4096):
        assert byte_sum(b"\xff" * n) == (255 * n) & 0xFF


@given(st.integers(0, 0xFFFF), st.integers(0, 4072), st.integers(0, 0xFFFF), s32, s32, u32, u32)
def test_header_round_trip(magic, data_len, msg_type, sys_status, status, key, msg_num):
    msg = R2NetMsg(magic, data_len, msg_type, sys_status, status, key, msg_num)
    raw = msg.pack()
    assert len(raw) == HDR_SIZE
    assert R2NetMsg.unpack(raw) == msg


@given(st.integers(0, 0xFF), st.integers(0, 0xFFFF),
       st.tuples(*[st.integers(0, (1 << 64) - 1)] * 3), u32, st.integers(0, 0xFFFF),
       st.integers(0, 0xFF), st.integers(0, (1 << 64) - 1))
def test_xhandle_round_trip(client, pool, oid, index, size, cksum, extra):
    xh = XHandle(client, pool, oid, index, size, cksum, extra)
    assert XHandle.unpack(xh.pack() + b"trailing data") == xh


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=12),
       st.lists(st.integers(1, 97), min_size=1, max_size=30))
def test_a_stream_cut_anywhere_is_read_message_by_message(payloads, cuts):
    port = free_port("127.0.0.1", "127.0.0.2")
    n0 = Node(0, "127.0.0.1", port)
    seen: list[bytes] = []
    s = socket.socket()
    try:
        class Peer:
            num, ip = 1, "127.0.0.2"
        Peer.port = port
        n0.configure("c", [n0, Peer])  # type: ignore[list-item]
        n0.write("/sys/kernel/mm/ramster/manual_node_up", "1")
        n0.rs.net.register_handler(300, 5, 64, lambda h, p: (seen.append(p), len(p))[1])
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(5)  # a lost message fails the test instead of hanging it
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        stream = R2NetHandshake(11, 1, 60000, 30000, 2000, 2000).pack()
        for i, p in enumerate(payloads):
            stream += R2NetMsg(data_len=len(p), msg_type=300, key=5, msg_num=i).pack() + p
        s.recv(32, socket.MSG_WAITALL)  # node 0's handshake
        pos, k = 0, 0
        while pos < len(stream):
            step = cuts[k % len(cuts)]
            s.sendall(stream[pos:pos + step])
            pos += step
            k += 1
        replies = [R2NetMsg.unpack(s.recv(HDR_SIZE, socket.MSG_WAITALL)) for _ in payloads]
        assert [(r.magic, r.msg_num, r.status) for r in replies] == \
            [(R2NET_MSG_STATUS_MAGIC, i, len(p)) for i, p in enumerate(payloads)]
        assert seen == payloads
    finally:
        s.close()
        n0.close()
