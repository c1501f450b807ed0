"""Console helpers for the user-visible tests: run command lines, read dmesg and debugfs.

The edge-case and ordering tests drive a whole machine the way a user would,
so these read what a user can read (command output, ``dmesg -t``,
``cat --json /sys/kernel/debug/...``) rather than frontend attributes.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from kmodemu.machine import Machine, MachineDef

PLUGINS = Path(__file__).resolve().parent / "plugins"
PROFILES = ["3.10", "3.9"]


def boot(profile: str = "3.10", **kw) -> Machine:
    """A machine that also finds the test backend ``tmem_dict``."""
    kw.setdefault("module_path", [str(PLUGINS)])
    return Machine(MachineDef(profile=profile, **kw))


def run(m: Machine, line: str) -> tuple[int, str, str]:
    return m.capture(shlex.split(line))


def sh(m: Machine, line: str) -> str:
    """Run a command line that must succeed; return its stdout."""
    rc, out, err = run(m, line)
    assert rc == 0, f"{line!r} exited {rc}: {err}"
    return out


def sh_all(m: Machine, *lines: str) -> None:
    for line in lines:
        sh(m, line)


def dmesg(m: Machine) -> list[str]:
    """The kernel log without timestamps, one line per record."""
    return sh(m, "dmesg -t").splitlines()


def dmesg_of(m: Machine, *prefixes: str) -> list[str]:
    return [x for x in dmesg(m) if x.startswith(prefixes)]


def debugfs(m: Machine, directory: str) -> dict[str, int]:
    """Every counter of /sys/kernel/debug/<directory>, read with ``cat --json``."""
    files = json.loads(sh(m, f"cat --json /sys/kernel/debug/{directory}"))
    return {path.rsplit("/", 1)[1]: int(text) for path, text in files.items()}


def vmstat(m: Machine) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in sh(m, "cat /proc/vmstat").splitlines())}


def stat_lines(m: Machine) -> list[str]:
    return sh(m, "stat").splitlines()


def sb(m: Machine, mountpoint: str):
    """The superblock mounted at ``mountpoint`` (its pool id is not visible from user space)."""
    return m.kernel.mm.fs.find_mount(mountpoint)
