"""r2nm: the cluster and its nodes, configured through configfs (nodemanager.c).

``/sys/kernel/config/cluster/<name>/`` is the one cluster (a second mkdir is
ENOSPC), with the r2net timeouts and ``fence_method``; ``node/<hostname>/`` is
a node whose ``ipv4_address``, ``ipv4_port``, ``num`` and ``local`` can each
be written once (EBUSY after). ``num`` wants address and port first, ``local``
wants all three (EINVAL otherwise); an address or number already taken is
EEXIST; a second local node is EBUSY. Setting ``local`` starts r2net's
listener on the node's address. Removing a node disconnects it (and stops the
listener if it was the local one); a node with a live connection is pinned
(``configfs_depend_item`` in ``sc_alloc``), so its rmdir is EBUSY, as in Linux.
"""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, Callable

from kmodemu.errors import KernelError
from kmodemu.kernel.configfs import ConfigAttribute, ConfigGroup

from .heartbeat import Heartbeat, kstrtoul
from .ramster_nodemanager import R2NM_INVALID_NODE_NUM, R2NM_MAX_NAME_LEN, R2NM_MAX_NODES
from .tcp_internal import (
    R2NET_IDLE_TIMEOUT_MS_DEFAULT,
    R2NET_KEEPALIVE_DELAY_MS_DEFAULT,
    R2NET_RECONNECT_DELAY_MS_DEFAULT,
)

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

    from .tcp import R2Net

FENCE_METHODS = ("reset", "panic")
ATTR_NUM, ATTR_PORT, ATTR_ADDRESS, ATTR_LOCAL = range(4)
_IPV4 = re.compile(r"\s*(\d{1,3})\.\s*(\d{1,3})\.\s*(\d{1,3})\.\s*(\d{1,3})")


def ip_to_str(addr: int) -> str:
    return ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))


class R2NMNode:
    """``struct r2nm_node``: a configfs item plus what r2net needs to reach it."""

    def __init__(self, name: str):
        self.name = name
        self.num = 0
        self.ipv4_address = 0          # host order; 0 = unset
        self.ipv4_port = 0
        self.local = 0
        self.set_attributes: set[int] = set()
        self.pins = 0                  # configfs_depend_item from r2net's socket containers

    @property
    def address(self) -> str:
        return ip_to_str(self.ipv4_address)

    def describe(self) -> str:
        """SC_NODEF_FMT: ``node NAME (num N) at IP:PORT``."""
        return f"node {self.name} (num {self.num}) at {self.address}:{self.ipv4_port}"


class R2NMCluster:
    """``struct r2nm_cluster``: the node tables and the cluster-wide timeouts."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[R2NMNode | None] = [None] * R2NM_MAX_NODES
        self.by_ip: dict[int, R2NMNode] = {}
        self.reconnect_delay_ms = R2NET_RECONNECT_DELAY_MS_DEFAULT
        self.idle_timeout_ms = R2NET_IDLE_TIMEOUT_MS_DEFAULT
        self.keepalive_delay_ms = R2NET_KEEPALIVE_DELAY_MS_DEFAULT
        self.fence_method = 0
        self.has_local = 0
        self.local_node = R2NM_INVALID_NODE_NUM


class NodeManager:
    """One kernel's r2nm: ``cluster`` configfs subsystem and node lookups."""

    def __init__(self, kernel: "Kernel", heartbeat: Heartbeat):
        self.kernel = kernel
        self.heartbeat = heartbeat
        self.cluster: R2NMCluster | None = None
        self.net: "R2Net | None" = None
        self.subsystem: ConfigGroup | None = None
        self.notice: Callable[[str], None] = lambda text: kernel.printk(text)

    # -- lookups (r2nm_get_node_by_*, r2nm_this_node) ---------------------------
    def node_by_num(self, num: int) -> R2NMNode | None:
        if self.cluster is None or not 0 <= num < R2NM_MAX_NODES:
            return None
        return self.cluster.nodes[num]

    def node_by_ip(self, addr: int) -> R2NMNode | None:
        return self.cluster.by_ip.get(addr) if self.cluster else None

    def this_node(self) -> int:
        c = self.cluster
        return c.local_node if c is not None and c.has_local else R2NM_MAX_NODES

    def configured_nodes(self) -> list[R2NMNode]:
        return [n for n in self.cluster.nodes if n is not None] if self.cluster else []

    # -- registration (r2nm_init) ------------------------------------------------
    def register(self) -> int:
        group = ConfigGroup("cluster", make_group=self._make_cluster, drop_item=self._drop_cluster)
        ret = self.kernel.configfs.register_subsystem(group)
        if ret:
            self.kernel.printk(f"nodemanager: Registration returned {ret}")
            return ret
        self.subsystem = group
        return 0

    # -- the cluster directory ---------------------------------------------------
    def _make_cluster(self, name: str) -> ConfigGroup:
        if self.cluster is not None:
            raise KernelError(errno.ENOSPC)
        cluster = R2NMCluster(name)
        self.cluster = cluster
        node_group = ConfigGroup("node", make_group=self._make_node, drop_item=self._drop_node)
        attrs = [
            ConfigAttribute("idle_timeout_ms", lambda: f"{cluster.idle_timeout_ms}\n",
                            self._store_idle_timeout),
            ConfigAttribute("keepalive_delay_ms", lambda: f"{cluster.keepalive_delay_ms}\n",
                            self._store_keepalive_delay),
            ConfigAttribute("reconnect_delay_ms", lambda: f"{cluster.reconnect_delay_ms}\n",
                            self._store_reconnect_delay),
            ConfigAttribute("fence_method", lambda: f"{FENCE_METHODS[cluster.fence_method]}\n",
                            self._store_fence_method),
        ]
        return ConfigGroup(name, attrs=attrs,
                           default_groups=[node_group, self.heartbeat.make_hb_set()],
                           data=cluster)

    def _drop_cluster(self, group: ConfigGroup) -> None:
        self.cluster = None

    @staticmethod
    def _cluster_u32(text: str) -> int:
        value = kstrtoul(text)
        if value == 0:
            raise KernelError(errno.EINVAL)
        if value >= 0xFFFFFFFF:
            raise KernelError(errno.ERANGE)
        return value

    def _connected_peers(self) -> int:
        return self.net.connected_peers() if self.net is not None else 0

    def _store_idle_timeout(self, text: str) -> None:
        c = self._cluster()
        val = self._cluster_u32(text)
        if c.idle_timeout_ms != val and self._connected_peers():
            self.notice("r2net: cannot change idle timeout after the first peer has agreed "
                        f"to it.  {self._connected_peers()} connected peers")
            raise KernelError(errno.EINVAL)
        if val <= c.keepalive_delay_ms:
            self.notice("r2net: idle timeout must be larger than keepalive delay")
            raise KernelError(errno.EINVAL)
        c.idle_timeout_ms = val

    def _store_keepalive_delay(self, text: str) -> None:
        c = self._cluster()
        val = self._cluster_u32(text)
        if c.keepalive_delay_ms != val and self._connected_peers():
            self.notice("r2net: cannot change keepalive delay after the first peer has agreed "
                        f"to it.  {self._connected_peers()} connected peers")
            raise KernelError(errno.EINVAL)
        if val >= c.idle_timeout_ms:
            self.notice("r2net: keepalive delay must be smaller than idle timeout")
            raise KernelError(errno.EINVAL)
        c.keepalive_delay_ms = val

    def _store_reconnect_delay(self, text: str) -> None:
        self._cluster().reconnect_delay_ms = self._cluster_u32(text)

    def _store_fence_method(self, text: str) -> None:
        c = self._cluster()
        if not text.endswith("\n"):
            raise KernelError(errno.EINVAL)
        word = text[:-1]
        for i, name in enumerate(FENCE_METHODS):
            if word.lower() == name:
                if c.fence_method != i:
                    self.kernel.printk(f"ramster: Changing fence method to {name}")
                    c.fence_method = i
                return
        raise KernelError(errno.EINVAL)

    def _cluster(self) -> R2NMCluster:
        if self.cluster is None:  # the files vanish with the cluster; kept for safety
            raise KernelError(errno.ENOENT)
        return self.cluster

    # -- node directories ---------------------------------------------------------
    def _make_node(self, name: str) -> ConfigGroup:
        if len(name) > R2NM_MAX_NAME_LEN:
            raise KernelError(errno.ENAMETOOLONG)
        node = R2NMNode(name)
        stores = {ATTR_NUM: self._store_num, ATTR_PORT: self._store_port,
                  ATTR_ADDRESS: self._store_address, ATTR_LOCAL: self._store_local}

        def once(index: int):
            def store(text: str) -> None:
                if index in node.set_attributes:
                    raise KernelError(errno.EBUSY)
                stores[index](node, text)
                node.set_attributes.add(index)
            return store

        attrs = [
            ConfigAttribute("num", lambda: f"{node.num}\n", once(ATTR_NUM)),
            ConfigAttribute("ipv4_port", lambda: f"{node.ipv4_port}\n", once(ATTR_PORT)),
            ConfigAttribute("ipv4_address", lambda: f"{node.address}\n", once(ATTR_ADDRESS)),
            ConfigAttribute("local", lambda: f"{node.local}\n", once(ATTR_LOCAL)),
        ]
        return ConfigGroup(name, attrs=attrs, item=True, data=node, dependents=lambda: node.pins)

    def _store_num(self, node: R2NMNode, text: str) -> None:
        c = self._cluster()
        value = kstrtoul(text)
        if value >= R2NM_MAX_NODES:
            raise KernelError(errno.ERANGE)
        if ATTR_ADDRESS not in node.set_attributes or ATTR_PORT not in node.set_attributes:
            raise KernelError(errno.EINVAL)
        if c.nodes[value] is not None:
            raise KernelError(errno.EEXIST)
        c.nodes[value] = node
        node.num = value

    def _store_port(self, node: R2NMNode, text: str) -> None:
        value = kstrtoul(text)
        if value == 0:
            raise KernelError(errno.EINVAL)
        if value >= 0xFFFF:
            raise KernelError(errno.ERANGE)
        node.ipv4_port = value

    def _store_address(self, node: R2NMNode, text: str) -> None:
        c = self._cluster()
        m = _IPV4.match(text)
        if m is None:
            raise KernelError(errno.EINVAL)
        octets = [int(x) for x in m.groups()]
        if any(o > 255 for o in octets):
            raise KernelError(errno.ERANGE)
        addr = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
        if addr in c.by_ip:
            raise KernelError(errno.EEXIST)
        c.by_ip[addr] = node
        node.ipv4_address = addr

    def _store_local(self, node: R2NMNode, text: str) -> None:
        c = self._cluster()
        want = 1 if kstrtoul(text) else 0
        if not {ATTR_ADDRESS, ATTR_NUM, ATTR_PORT} <= node.set_attributes:
            raise KernelError(errno.EINVAL)
        if want and c.has_local and c.local_node != node.num:
            raise KernelError(errno.EBUSY)
        if want and not c.has_local:
            ret = self.net.start_listening(node) if self.net is not None else -errno.ESRCH
            if ret:
                raise KernelError(-ret)
        if not want and c.has_local and c.local_node == node.num:
            if self.net is not None:
                self.net.stop_listening(node)
            c.local_node = R2NM_INVALID_NODE_NUM
        node.local = want
        if want:
            c.has_local = 1
            c.local_node = node.num

    def _drop_node(self, group: ConfigGroup) -> None:
        node = group.data
        assert isinstance(node, R2NMNode)
        c = self._cluster()
        if self.net is not None:
            self.net.disconnect_node(node)
        if c.has_local and c.local_node == node.num:
            c.has_local = 0
            c.local_node = R2NM_INVALID_NODE_NUM
            if self.net is not None:
                self.net.stop_listening(node)
        if node.ipv4_address and c.by_ip.get(node.ipv4_address) is node:
            del c.by_ip[node.ipv4_address]
        if c.nodes[node.num] is node:
            c.nodes[node.num] = None
