"""``service ramster start|status``: /etc/ramster.conf turned into the howto's configfs writes."""

from __future__ import annotations

import pytest

from kmodemu_plugins.ramster.service import ConfError, cluster_conf, parse_conf

from .fakes import Node, free_port

CONF = """\
cluster:
\tname = ramster
\tnode_count = 2

node:
\tname = system1
\tcluster = ramster
\tnumber = 0
\tip_address = 127.0.0.1
\tip_port = {port}

node:
\tname = system2
\tcluster = ramster
\tnumber = 1
\tip_address = 127.0.0.2
\tip_port = {port}
"""


@pytest.fixture
def node(tmp_path):
    n = Node(0, "127.0.0.1", free_port("127.0.0.1", "127.0.0.2"))
    (tmp_path / "etc" / "sysconfig").mkdir(parents=True)
    yield n, tmp_path
    n.close()


def run(n: Node, root, action: str):
    with n.kernel.bkl:
        return n.kernel.services["ramster"](action, root)


def test_start_and_status(node):
    n, root = node
    (root / "etc/ramster.conf").write_text(CONF.format(port=n.port))
    (root / "etc/hostname").write_text("system1\n")
    (root / "etc/sysconfig/ramster").write_text(
        'O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=ramster\nO2CB_HEARTBEAT_THRESHOLD=500\n'
        'O2CB_IDLE_TIMEOUT_MS="1000000"\n')
    assert run(n, root, "status") == ([
        'Driver for "configfs": Loaded', 'Filesystem "configfs": Mounted',
        'Driver for "ocfs2_dlmfs": Not loaded', "Checking ramster cluster: Offline"], [], 3)
    assert run(n, root, "start") == (["Starting ramster cluster ramster: OK"], [], 0)
    base = "/sys/kernel/config/cluster/ramster"
    assert n.read(f"{base}/node/system1/local") == "1\n"
    assert n.read(f"{base}/node/system2/local") == "0\n"
    assert n.read(f"{base}/node/system2/ipv4_address") == "127.0.0.2\n"
    assert n.read(f"{base}/node/system2/num") == "1\n"
    assert n.rs.net.listening
    out, err, rc = run(n, root, "status")
    assert rc == 0 and err == []
    assert out[3:] == ["Checking ramster cluster ramster: Online",
                       "  Heartbeat dead threshold: 500",
                       "  Network idle timeout: 1000000",
                       "  Network keepalive delay: 2000",
                       "  Network reconnect delay: 2000",
                       "Checking ramster heartbeat: Not active"]
    assert run(n, root, "start")[0] == ["Cluster ramster already online"]


def test_errors_leave_nothing_behind(node):
    n, root = node
    assert run(n, root, "start") == (
        [], ["ramster: /etc/ramster.conf: No such file or directory"], 1)
    assert run(n, root, "restart")[2] == 2
    bad = CONF.format(port=n.port).replace("127.0.0.2", "127.0.0.1")   # a duplicate address
    (root / "etc/ramster.conf").write_text(bad)
    assert run(n, root, "start") == ([], ["Starting ramster cluster: Failed (File exists)"], 1)
    assert n.kernel.vfs.listdir("/sys/kernel/config/cluster") == []
    (root / "etc/ramster.conf").write_text("node:\n\tname = x\n")
    out, err, rc = run(n, root, "start")
    assert rc == 1 and err == ["ramster: /etc/ramster.conf: no cluster: stanza"]


def test_parser():
    assert [s.kind for s in parse_conf(CONF.format(port=7777))] == ["cluster", "node", "node"]
    with pytest.raises(ConfError, match="line 2: expected 'key = value'"):
        parse_conf("cluster:\n\tname\n")
    with pytest.raises(ConfError, match="line 1: a value outside"):
        parse_conf("\tname = x\n")
    with pytest.raises(ConfError, match="node_count = 3 but 2 node stanzas"):
        cluster_conf(CONF.format(port=1).replace("node_count = 2", "node_count = 3"))
    with pytest.raises(ConfError, match="node without ip_port"):
        cluster_conf("cluster:\n\tname = c\nnode:\n\tname = a\n\tcluster = c\n\tnumber = 0\n"
                     "\tip_address = 1.2.3.4\n")
