"""The console commands RAMster's admin uses: mkdir/rmdir under configfs, write, service."""

from __future__ import annotations

import io

from kmodemu.machine import Machine, MachineDef

from .fakes import FakeZcache
from kmodemu_plugins.ramster.ramster import Ramster


def run(m: Machine, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = m.run(list(argv), stdout=out, stderr=err, save=False)
    return rc, out.getvalue(), err.getvalue()


def test_configfs_from_the_console_and_service():
    with Machine(MachineDef(cmdline="quiet")) as m:
        assert run(m, "service", "ramster", "status") == (
            1, "", "ramster: unrecognized service\n")
        rs = Ramster(m.kernel, FakeZcache())
        with m.kernel.bkl:
            rs.init(register_nodemanager=True)
        base = "/sys/kernel/config/cluster"
        assert run(m, "ls", "/sys/kernel/config") == (0, "cluster\n", "")
        assert run(m, "mkdir", f"{base}/c")[0] == 0
        assert run(m, "mkdir", f"{base}/d") == (
            1, "", f"mkdir: cannot create directory '{base}/d': No space left on device\n")
        assert run(m, "mkdir", f"{base}/c/node/n0")[0] == 0
        assert run(m, "write", f"{base}/c/node/n0/num", "0") == (
            1, "", f"write: {base}/c/node/n0/num: Invalid argument\n")
        assert run(m, "rmdir", f"{base}/c") == (
            1, "", f"rmdir: failed to remove '{base}/c': Directory not empty\n")
        assert run(m, "rmdir", "/proc/sys") == (
            1, "", "rmdir: failed to remove '/proc/sys': Operation not permitted\n")
        assert run(m, "rmdir", f"{base}/c/node/n0")[0] == 0
        assert run(m, "rmdir", f"{base}/c")[0] == 0
        rc, out, err = run(m, "service", "ramster", "status")
        assert rc == 3 and "Checking ramster cluster: Offline" in out
        assert run(m, "service", "ramster", "start") == (
            1, "", "ramster: /etc/ramster.conf: No such file or directory\n")
