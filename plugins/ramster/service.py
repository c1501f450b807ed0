"""The ramster init script (ramster-tools, a renamed o2cb): /etc/ramster.conf → configfs.

``/etc/ramster.conf`` is ocfs2's ``cluster.conf``: ``cluster:`` and ``node:``
stanzas of ``key = value`` lines (tab-indented). ``start`` makes the cluster
directory and one node directory per stanza of that cluster, writes each
node's address, port and number, and ``local`` = 1 on the node whose name is
this machine's hostname — the same configfs writes a user could type. The
tunables ``service ramster configure`` stores in ``/etc/sysconfig/ramster``
(o2cb's names: ``O2CB_BOOTCLUSTER``, ``O2CB_HEARTBEAT_THRESHOLD``,
``O2CB_IDLE_TIMEOUT_MS``, ``O2CB_KEEPALIVE_DELAY_MS``,
``O2CB_RECONNECT_DELAY_MS``) are written first. ``status`` prints the
howto's lines ("Checking ramster cluster NAME: Online", heartbeat "Not
active"). A failed write stops ``start`` and undoes what it made.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kmodemu.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.kernel import Kernel

CONFIGFS = "/sys/kernel/config"
CLUSTER_DIR = f"{CONFIGFS}/cluster"
SYSCONFIG_KEYS = {
    "O2CB_HEARTBEAT_THRESHOLD": "heartbeat/dead_threshold",
    "O2CB_IDLE_TIMEOUT_MS": "idle_timeout_ms",
    "O2CB_KEEPALIVE_DELAY_MS": "keepalive_delay_ms",
    "O2CB_RECONNECT_DELAY_MS": "reconnect_delay_ms",
}


class ConfError(ValueError):
    """A malformed ramster.conf (the message names the line)."""


@dataclass
class Stanza:
    kind: str
    line: int
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class ClusterConf:
    name: str
    node_count: int
    nodes: list[dict[str, str]]


def parse_conf(text: str) -> list[Stanza]:
    """cluster.conf: a stanza header at column 0 (``word:``), then indented ``key = value``."""
    stanzas: list[Stanza] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            if not line.endswith(":") or " " in line[:-1] or len(line) == 1:
                raise ConfError(f"line {n}: expected a stanza header such as 'node:'")
            stanzas.append(Stanza(line[:-1], n))
            continue
        if not stanzas:
            raise ConfError(f"line {n}: a value outside any stanza")
        key, sep, value = line.strip().partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfError(f"line {n}: expected 'key = value'")
        stanzas[-1].values[key.strip()] = value.strip()
    return stanzas


def cluster_conf(text: str, cluster: str | None = None) -> ClusterConf:
    stanzas = parse_conf(text)
    clusters = [s for s in stanzas if s.kind == "cluster"]
    if not clusters:
        raise ConfError("no cluster: stanza")
    chosen = clusters[0] if cluster is None else next(
        (s for s in clusters if s.values.get("name") == cluster), None)
    if chosen is None:
        raise ConfError(f"cluster {cluster} is not in the configuration")
    name = chosen.values.get("name")
    if not name:
        raise ConfError(f"line {chosen.line}: the cluster has no name")
    nodes = []
    for s in stanzas:
        if s.kind != "node" or s.values.get("cluster") != name:
            continue
        for key in ("name", "number", "ip_address", "ip_port"):
            if key not in s.values:
                raise ConfError(f"line {s.line}: node without {key}")
        nodes.append(s.values)
    try:
        count = int(chosen.values.get("node_count", len(nodes)))
    except ValueError:
        raise ConfError(f"line {chosen.line}: node_count is not a number") from None
    if count != len(nodes):
        raise ConfError(f"cluster {name}: node_count = {count} but {len(nodes)} node stanzas")
    return ClusterConf(name, count, nodes)


def parse_sysconfig(text: str) -> dict[str, str]:
    """Shell-style KEY=value lines (quotes stripped), as the init script sources them."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip("\"'")
    return out


def start(kernel: "Kernel", conf_text: str, hostname: str,
          sysconfig: dict[str, str] | None = None) -> list[str]:
    """Apply the configuration; returns the lines to print. Raises ConfError / KernelError."""
    sysconfig = sysconfig or {}
    conf = cluster_conf(conf_text, sysconfig.get("O2CB_BOOTCLUSTER") or None)
    cfs = kernel.configfs
    if CLUSTER_DIR[len(CONFIGFS) + 1:] not in cfs.subsystems:
        raise KernelError(errno.ENOENT, "the cluster configfs subsystem is not registered "
                                        "(load zcache with ramster_enabled=1)")
    base = f"{CLUSTER_DIR}/{conf.name}"
    if kernel.vfs.exists(base):
        return [f"Cluster {conf.name} already online"]
    made: list[str] = []
    try:
        cfs.mkdir(base)
        made.append(base)
        for key, attr in SYSCONFIG_KEYS.items():
            if sysconfig.get(key):
                kernel.write(f"{base}/{attr}", sysconfig[key] + "\n")
        for node in conf.nodes:
            d = f"{base}/node/{node['name']}"
            cfs.mkdir(d)
            made.append(d)
            kernel.write(f"{d}/ipv4_port", node["ip_port"] + "\n")
            kernel.write(f"{d}/ipv4_address", node["ip_address"] + "\n")
            kernel.write(f"{d}/num", node["number"] + "\n")
            if node["name"] == hostname:
                kernel.write(f"{d}/local", "1\n")
    except KernelError:
        for d in reversed(made):
            try:
                cfs.rmdir(d)
            except KernelError:
                pass
        raise
    return [f"Starting ramster cluster {conf.name}: OK"]


def status(kernel: "Kernel") -> tuple[list[str], int]:
    """The init script's status: (lines, exit status: 0 online, 3 offline)."""
    cfs = kernel.configfs
    registered = "cluster" in cfs.subsystems
    lines = ['Driver for "configfs": Loaded', 'Filesystem "configfs": Mounted',
             'Driver for "ocfs2_dlmfs": Not loaded']
    clusters = kernel.vfs.listdir(CLUSTER_DIR) if registered else []
    if not clusters:
        lines.append("Checking ramster cluster: Offline")
        return lines, 3
    name = clusters[0]
    base = f"{CLUSTER_DIR}/{name}"
    lines.append(f"Checking ramster cluster {name}: Online")
    lines.append(f"  Heartbeat dead threshold: {kernel.read(f'{base}/heartbeat/dead_threshold').strip()}")
    lines.append(f"  Network idle timeout: {kernel.read(f'{base}/idle_timeout_ms').strip()}")
    lines.append(f"  Network keepalive delay: {kernel.read(f'{base}/keepalive_delay_ms').strip()}")
    lines.append(f"  Network reconnect delay: {kernel.read(f'{base}/reconnect_delay_ms').strip()}")
    lines.append("Checking ramster heartbeat: Not active")
    return lines, 0


DEFAULT_HOSTNAME = "kmodemu"  # what `uname -a` shows as the node name


def _read(root, rel: str) -> str | None:
    path = root / rel
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def make_service(kernel: "Kernel"):
    """The ``service ramster ACTION`` handler: (stdout lines, stderr lines, exit status)."""
    def handler(action: str, root) -> tuple[list[str], list[str], int]:
        if action == "status":
            lines, rc = status(kernel)
            return lines, [], rc
        if action != "start":
            return [], ["Usage: /etc/init.d/ramster {start|status}"], 2
        text = _read(root, "etc/ramster.conf")
        if text is None:
            return [], ["ramster: /etc/ramster.conf: No such file or directory"], 1
        hostname = (_read(root, "etc/hostname") or DEFAULT_HOSTNAME).strip() or DEFAULT_HOSTNAME
        sysconfig = parse_sysconfig(_read(root, "etc/sysconfig/ramster") or "")
        try:
            return start(kernel, text, hostname, sysconfig), [], 0
        except ConfError as e:
            return [], [f"ramster: /etc/ramster.conf: {e}"], 1
        except KernelError as e:
            import os
            why = e.message or os.strerror(e.errno)
            return [], [f"Starting ramster cluster: Failed ({why})"], 1
    return handler
