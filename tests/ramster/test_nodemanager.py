"""The ``cluster`` configfs subsystem: every validation and errno of nodemanager.c."""

from __future__ import annotations

import errno

import pytest

from kmodemu.errors import KernelError

from .fakes import Node, free_port

BASE = "/sys/kernel/config/cluster"


@pytest.fixture
def node():
    n = Node(0, "127.0.0.1", free_port("127.0.0.1"))
    yield n
    n.close()


def err(fn, *args) -> int:
    with pytest.raises(KernelError) as e:
        fn(*args)
    return e.value.errno


def test_cluster_directory_and_defaults(node):
    node.mkdir(f"{BASE}/c")
    k = node.kernel
    assert k.vfs.listdir(f"{BASE}/c") == ["idle_timeout_ms", "keepalive_delay_ms",
                                         "reconnect_delay_ms", "fence_method", "heartbeat",
                                         "node"]
    assert node.read(f"{BASE}/c/idle_timeout_ms") == "30000\n"
    assert node.read(f"{BASE}/c/keepalive_delay_ms") == "2000\n"
    assert node.read(f"{BASE}/c/reconnect_delay_ms") == "2000\n"
    assert node.read(f"{BASE}/c/fence_method") == "reset\n"
    assert node.read(f"{BASE}/c/heartbeat/dead_threshold") == "31\n"
    assert err(node.mkdir, f"{BASE}/second") == errno.ENOSPC
    assert err(node.mkdir, f"{BASE}/c") == errno.EEXIST
    assert err(node.rmdir, f"{BASE}/c/node") == errno.EPERM       # a default group
    assert err(node.mkdir, f"{BASE}/c/other") == errno.EPERM      # the cluster makes nothing


def test_cluster_timeouts(node):
    node.mkdir(f"{BASE}/c")
    c = f"{BASE}/c"
    assert err(node.write, f"{c}/idle_timeout_ms", "0") == errno.EINVAL
    assert err(node.write, f"{c}/idle_timeout_ms", "x") == errno.EINVAL
    assert err(node.write, f"{c}/idle_timeout_ms", "4294967295") == errno.ERANGE
    assert err(node.write, f"{c}/idle_timeout_ms", "2000") == errno.EINVAL   # <= keepalive
    assert "r2net: idle timeout must be larger than keepalive delay" in node.dmesg()
    assert err(node.write, f"{c}/keepalive_delay_ms", "30000") == errno.EINVAL
    assert "r2net: keepalive delay must be smaller than idle timeout" in node.dmesg()
    node.write(f"{c}/idle_timeout_ms", "1000000")
    node.write(f"{c}/keepalive_delay_ms", "5000")
    node.write(f"{c}/reconnect_delay_ms", "3000")
    assert node.read(f"{c}/idle_timeout_ms") == "1000000\n"
    assert node.read(f"{c}/keepalive_delay_ms") == "5000\n"
    assert node.read(f"{c}/reconnect_delay_ms") == "3000\n"
    node.write(f"{c}/idle_timeout_ms", "1000000")  # not write-once


def test_fence_method(node):
    node.mkdir(f"{BASE}/c")
    f = f"{BASE}/c/fence_method"
    node.write(f, "PANIC")
    assert node.read(f) == "panic\n"
    assert "ramster: Changing fence method to panic" in node.dmesg()
    with node.kernel.bkl:
        assert err(node.kernel.write, f, "reset") == errno.EINVAL  # no newline
    assert err(node.write, f, "resets") == errno.EINVAL
    assert err(node.write, f, "") == errno.EINVAL


def test_node_attributes_order_once_and_uniqueness(node):
    node.mkdir(f"{BASE}/c")
    a = f"{BASE}/c/node/alpha"
    b = f"{BASE}/c/node/beta"
    node.mkdir(a)
    node.mkdir(b)
    assert node.kernel.vfs.listdir(a) == ["num", "ipv4_port", "ipv4_address", "local"]
    assert err(node.write, f"{a}/num", "0") == errno.EINVAL            # address+port first
    assert err(node.write, f"{a}/ipv4_address", "127.0.0") == errno.EINVAL
    assert err(node.write, f"{a}/ipv4_address", "127.0.0.256") == errno.ERANGE
    node.write(f"{a}/ipv4_address", "127.0.0.1")
    assert err(node.write, f"{a}/ipv4_address", "127.0.0.9") == errno.EBUSY   # write-once
    assert err(node.write, f"{b}/ipv4_address", "127.0.0.1") == errno.EEXIST  # unique
    assert err(node.write, f"{a}/ipv4_port", "0") == errno.EINVAL
    assert err(node.write, f"{a}/ipv4_port", "65535") == errno.ERANGE
    assert err(node.write, f"{a}/local", "1") == errno.EINVAL          # num missing
    node.write(f"{a}/ipv4_port", str(node.port))
    assert err(node.write, f"{a}/num", "255") == errno.ERANGE
    node.write(f"{a}/num", "0")
    assert err(node.write, f"{a}/num", "1") == errno.EBUSY
    node.write(f"{b}/ipv4_address", "127.0.0.2")
    node.write(f"{b}/ipv4_port", "7777")
    assert err(node.write, f"{b}/num", "0") == errno.EEXIST
    node.write(f"{b}/num", "1")
    node.write(f"{a}/local", "1")
    assert node.rs.net.listening
    assert err(node.write, f"{b}/local", "1") == errno.EBUSY           # one local node
    assert node.read(f"{a}/ipv4_address") == "127.0.0.1\n"
    assert node.read(f"{a}/num") == "0\n"
    assert node.read(f"{a}/local") == "1\n"
    assert node.read(f"{b}/local") == "0\n"
    assert err(node.mkdir, f"{a}/sub") == errno.EPERM                  # an item, not a group
    assert err(node.rmdir, f"{BASE}/c") == errno.ENOTEMPTY


def test_node_name_length_and_rmdir(node):
    node.mkdir(f"{BASE}/c")
    assert err(node.mkdir, f"{BASE}/c/node/" + "x" * 65) == errno.ENAMETOOLONG
    node.mkdir(f"{BASE}/c/node/" + "x" * 64)
    a = f"{BASE}/c/node/alpha"
    node.mkdir(a)
    node.write(f"{a}/ipv4_address", "127.0.0.1")
    node.write(f"{a}/ipv4_port", str(node.port))
    node.write(f"{a}/num", "0")
    node.write(f"{a}/local", "1")
    assert node.rs.net.listening
    node.rmdir(a)                       # the local node: stops listening
    assert not node.rs.net.listening
    assert not node.kernel.vfs.exists(a)
    assert node.rs.nm.node_by_num(0) is None
    node.mkdir(a)                       # address and number are free again
    node.write(f"{a}/ipv4_address", "127.0.0.1")
    node.write(f"{a}/ipv4_port", str(node.port))
    node.write(f"{a}/num", "0")
    node.rmdir(f"{BASE}/c/node/" + "x" * 64)
    node.rmdir(a)
    node.rmdir(f"{BASE}/c")
    assert node.kernel.vfs.listdir(BASE) == []
    node.mkdir(f"{BASE}/again")         # the one cluster slot is free again
    assert err(node.rmdir, f"{BASE}/missing") == errno.ENOENT


def test_local_bind_failure_is_the_listen_errno(node):
    node.mkdir(f"{BASE}/c")
    a = f"{BASE}/c/node/alpha"
    node.mkdir(a)
    node.write(f"{a}/ipv4_address", "192.0.2.1")   # not an address of this host
    node.write(f"{a}/ipv4_port", "7777")
    node.write(f"{a}/num", "0")
    assert err(node.write, f"{a}/local", "1") == errno.EADDRNOTAVAIL
    assert f"ramster: Error -{errno.EADDRNOTAVAIL} while binding socket at 192.0.2.1:7777" \
        in node.dmesg()
    assert node.read(f"{a}/local") == "0\n"


def test_heartbeat_group(node):
    node.mkdir(f"{BASE}/c")
    hb = f"{BASE}/c/heartbeat"
    node.write(f"{hb}/dead_threshold", "500")
    assert node.read(f"{hb}/dead_threshold") == "500\n"
    assert node.rs.hb.max_write_timeout_ms == 998000
    node.write(f"{hb}/dead_threshold", "2")       # at or below the minimum: kept as it was
    assert node.read(f"{hb}/dead_threshold") == "500\n"
    assert err(node.write, f"{hb}/dead_threshold", "-1") == errno.EINVAL
    assert node.read(f"{hb}/mode") == "local\n"
    node.write(f"{hb}/mode", "global")
    assert "ramster: Heartbeat mode set to global" in node.dmesg()
    assert err(node.write, f"{hb}/mode", "disk") == errno.EINVAL
    assert err(node.mkdir, f"{hb}/" + "r" * 33) == errno.ENAMETOOLONG
    node.mkdir(f"{hb}/region")
    node.rmdir(f"{hb}/region")
    assert "ramster: Heartbeat stopped/aborted on region region (no region)" in node.dmesg()
