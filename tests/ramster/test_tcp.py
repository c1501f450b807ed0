"""r2net over real loopback TCP: connect/accept, handshake, keepalive, idle, node death."""

from __future__ import annotations

import errno
import socket
import struct
import time

import pytest

from kmodemu_plugins.ramster.tcp import DataReply
from kmodemu_plugins.ramster.tcp_internal import (
    HDR_SIZE,
    R2NET_MSG_MAGIC,
    R2NET_MSG_STATUS_MAGIC,
    R2NetHandshake,
    R2NetMsg,
)

from .fakes import Node, free_port

IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
BASE = "/sys/kernel/config/cluster/c"


def make_nodes(n: int = 2, **kw) -> list[Node]:
    port = free_port(*IPS[:n])
    nodes = [Node(i, IPS[i], port, **kw) for i in range(n)]
    for node in nodes:
        node.configure("c", nodes)
    return nodes


@pytest.fixture
def pair():
    nodes = make_nodes(2)
    yield nodes
    for n in nodes:
        n.close()


def up_all(nodes: list[Node]) -> None:
    """Howto step 4: on every node, mark every node up (lower-numbered nodes first)."""
    for node in nodes:
        for other in nodes:
            node.write("/sys/kernel/mm/ramster/manual_node_up", str(other.num))


def desc(n: Node) -> str:
    return f"node host{n.num} (num {n.num}) at {n.ip}:{n.port}"


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_wire_sizes():
    assert len(R2NetMsg().pack()) == 24
    assert len(R2NetHandshake(11, 1, 60000, 30000, 2000, 2000).pack()) == 32
    raw = R2NetMsg(magic=R2NET_MSG_MAGIC, data_len=5, msg_type=100, sys_status=0, status=-1,
                   key=0x77347734, msg_num=7).pack()
    assert raw.hex() == "fa5500050064000000000000ffffffff7734773400000007"
    assert R2NetMsg.unpack(raw).status == -1


def test_nodes_start_in_persistent_enotconn(pair):
    n0, n1 = pair
    assert n1.rs.net.send_message(100, 1, b"x", 0) == (-errno.ENOTCONN, 0)
    assert n1.rs.net.send_message(100, 1, b"x", 1) == (-errno.ELOOP, 0)
    assert n1.rs.net.send_message(100, 1, b"x" * 4073, 0) == (-errno.EINVAL, 0)


def test_connect_accept_dmesg_and_reply(pair):
    n0, n1 = pair
    up_all(pair)
    assert f"ramster: Connected to {desc(n0)}" in n1.dmesg()
    assert f"ramster: Accepted connection from {desc(n1)}" in n0.dmesg()
    assert n0.rs.net.connected_peers() == 1 and n1.rs.net.connected_peers() == 1
    assert n0.read("/sys/kernel/mm/ramster/manual_node_up") == "0 1 \n"
    # the higher node connected from its own configured address
    sc = n0.rs.net.nodes[1].sc
    assert sc is not None and sc.sock.getpeername()[0] == "127.0.0.2"

    def echo(hdr, payload):
        return DataReply(104, 9, payload[::-1])
    seen = []
    n0.rs.net.register_handler(200, 9, 100, lambda h, p: len(p) * 10)
    n0.rs.net.register_handler(201, 9, 100, echo)
    n1.rs.net.register_handler(104, 9, 100, lambda h, p: seen.append(p) or 5)
    with n1.kernel.bkl:
        assert n1.rs.net.send_message(200, 9, b"abc", 0) == (0, 30)
        assert n1.rs.net.send_message(201, 9, b"abc", 0) == (0, 5)      # data magic reply
        assert seen == [b"cba"]
        assert n1.rs.net.send_message(202, 9, b"abc", 0) == (-errno.ENOPROTOOPT, 0)
        assert n1.rs.net.send_message(200, 9, b"x" * 101, 0) == (-errno.EOVERFLOW, 0)
    assert "ramster_r2net, message length problem" in n0.dmesg()
    # a second manual_node_up of the same node is ignored
    n1.write("/sys/kernel/mm/ramster/manual_node_up", "0")
    assert "ramster: node 0 already up, ignoring" in n1.dmesg()


def test_keepalive_keeps_an_idle_link_up(pair):
    n0, n1 = pair
    up_all(pair)
    n1.sleep(120)          # 60 keepalive round trips, no idle timeout
    n0.sleep(120)
    assert n1.rs.net.nodes[0].sc_valid and n0.rs.net.nodes[1].sc_valid
    assert not any("idle" in line for line in n0.dmesg() + n1.dmesg())


def test_handshake_mismatch_disconnects_for_good(pair):
    n0, n1 = pair
    n0.write(f"{BASE}/idle_timeout_ms", "40000")
    up_all(pair)
    msg0 = (f"ramster: {desc(n1)} uses a network idle timeout of 30000 ms, but we use 40000 ms "
            "locally. Disconnecting.")
    msg1 = (f"ramster: {desc(n0)} uses a network idle timeout of 40000 ms, but we use 30000 ms "
            "locally. Disconnecting.")
    assert wait_for(lambda: msg0 in n0.dmesg() and msg1 in n1.dmesg())
    assert n1.rs.net.node_state(0) == (False, -errno.ENOTCONN)
    n1.sleep(30)
    assert ("ramster: No connection established with node 0 after 30.0 seconds, giving up."
            in n1.dmesg())
    assert not any(line.startswith("ramster: Connected") for line in n1.dmesg())
    with n1.kernel.bkl:
        assert n1.rs.net.send_message(200, 9, b"x", 0) == (-errno.ENOTCONN, 0)


def test_cannot_change_timeouts_once_connected(pair):
    n0, n1 = pair
    up_all(pair)
    with pytest.raises(Exception):
        n0.write(f"{BASE}/idle_timeout_ms", "40000")
    assert ("r2net: cannot change idle timeout after the first peer has agreed to it.  "
            "1 connected peers") in n0.dmesg()


def test_connect_before_peer_is_up_retries_then_succeeds(pair):
    n0, n1 = pair
    n1.write("/sys/kernel/mm/ramster/manual_node_up", "0")   # node 0 does not hear node 1 yet
    assert not n1.rs.net.nodes[0].sc_valid
    assert wait_for(lambda: n1.rs.net.nodes[0].sc is None)
    n0.write("/sys/kernel/mm/ramster/manual_node_up", "1")
    n1.sleep(2)                                               # the reconnect delay
    assert n1.rs.net.nodes[0].sc_valid
    assert f"ramster: Connected to {desc(n0)}" in n1.dmesg()


def test_peer_death_wakes_waiters_and_stays_down(pair):
    n0, n1 = pair
    up_all(pair)
    n0.close()                       # the node goes away: its sockets close
    assert wait_for(lambda: not n1.rs.net.nodes[0].sc_valid)
    assert wait_for(lambda: f"ramster: No longer connected to {desc(n0)}" in n1.dmesg())
    assert n1.rs.net.node_state(0) == (False, -errno.ENOTCONN)
    with n1.kernel.bkl:
        assert n1.rs.net.send_message(200, 9, b"x", 0) == (-errno.ENOTCONN, 0)


def test_idle_timeout_then_reconnect():
    """A peer that stops answering (its receive side is blocked) runs into the idle timer."""
    nodes = make_nodes(2)
    n0, n1 = nodes
    try:
        up_all(nodes)
        n1.rs.net.ping_timeout_s = 0.05
        n1.rs.net.connect_timeout_s = 0.2
        with n0.kernel.bkl:        # node 0's receive thread cannot run handlers: no answers
            n1.sleep(31)
        lines = n1.dmesg()
        assert any(line.startswith(f"ramster: Connection to {desc(n0)} has been idle for 30.")
                   for line in lines), lines
        assert wait_for(lambda: f"ramster: No longer connected to {desc(n1)}" in n0.dmesg())
        for _ in range(5):         # nn_timeout lets the connector try again, every 2 s
            if n1.rs.net.nodes[0].sc_valid:
                break
            n1.sleep(2)
        assert n1.rs.net.nodes[0].sc_valid and n0.rs.net.nodes[1].sc_valid
    finally:
        for n in nodes:
            n.close()


def test_unknown_and_unexpected_peers(pair):
    n0, n1 = pair
    up_all(pair)
    s = socket.socket()
    s.bind(("127.0.0.9", 0))
    s.connect((n0.ip, n0.port))
    assert wait_for(lambda: any("Attempt to connect from unknown node at 127.0.0.9:" in x
                                for x in n0.dmesg()))
    s.close()
    s = socket.socket()            # node 0 connecting to node 1: the wrong direction
    s.bind(("127.0.0.1", 0))
    s.connect((n1.ip, n1.port))
    assert wait_for(lambda: any(x.startswith(
        f"ramster: Unexpected connect attempt seen at node 'host1' (1, {n1.ip}:{n1.port}) "
        "from node 'host0' (0, 127.0.0.1:") for x in n1.dmesg()))
    s.close()


def test_a_raw_peer_speaks_the_protocol():
    """Byte-level: a hand-written node 1 connects to a kmodemu node 0."""
    port = free_port("127.0.0.1", "127.0.0.2")
    n0 = Node(0, "127.0.0.1", port)
    try:
        class Peer:
            num, ip = 1, "127.0.0.2"
        Peer.port = port
        n0.configure("c", [n0, Peer])  # type: ignore[list-item]
        n0.write("/sys/kernel/mm/ramster/manual_node_up", "1")
        n0.rs.net.register_handler(300, 5, 10, lambda h, p: 42)
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(R2NetHandshake(11, 1, 60000, 30000, 2000, 2000).pack())
        hand = R2NetHandshake.unpack(s.recv(32, socket.MSG_WAITALL))
        assert (hand.protocol_version, hand.r2net_idle_timeout_ms) == (11, 30000)
        s.sendall(R2NetMsg(data_len=3, msg_type=300, key=5, msg_num=77).pack() + b"abc")
        reply = R2NetMsg.unpack(s.recv(HDR_SIZE, socket.MSG_WAITALL))
        assert (reply.magic, reply.status, reply.msg_num, reply.sys_status) == \
            (R2NET_MSG_STATUS_MAGIC, 42, 77, 0)
        s.sendall(R2NetMsg(data_len=11, msg_type=300, key=5, msg_num=78).pack() + b"x" * 11)
        reply = R2NetMsg.unpack(s.recv(HDR_SIZE, socket.MSG_WAITALL))
        assert reply.sys_status == 2  # OVERFLOW
        s.sendall(struct.pack(">H", 0x1234) + b"\0" * 22)   # bad magic: the link is closed
        assert s.recv(1) == b""
        s.close()
    finally:
        n0.close()
