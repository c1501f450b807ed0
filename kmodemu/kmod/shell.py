"""Running modprobe.d ``install``/``remove`` commands against the emulated machine.

kmod runs these through ``/bin/sh -c``. Inside them, ``modprobe``, ``insmod``
and ``rmmod`` must act on the emulated kernel, not on the host. We put small
shims first in PATH (and rewrite ``/sbin/modprobe``-style absolute paths to
them); a shim only records its argv. When the shell has finished, the
recorded requests run in order against the same machine. So nested tools run
*after* the whole command, and the command sees them succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable

SHIM_TOOLS = ("modprobe", "insmod", "rmmod")
_ABS_TOOL = re.compile(r"(?<![\w./-])(?:/usr)?/s?bin/(modprobe|insmod|rmmod)(?![\w./-])")
_SHIM = """#!/bin/sh
# kmodemu: record this request; it runs on the emulated machine afterwards
{{ printf '%s\\0' {tool} "${{MODPROBE_OPTIONS-}}" "$#"; printf '%s\\0' "$@"; }} >> "$KMODEMU_REQUESTS"
exit 0
"""


@dataclass(frozen=True)
class Request:
    tool: str
    argv: list[str]
    modprobe_options: str


@dataclass(frozen=True)
class ShellResult:
    status: int
    stdout: str
    stderr: str
    requests: list[Request]


def _parse_requests(data: bytes) -> list[Request]:
    parts = data.split(b"\0")
    out: list[Request] = []
    i = 0
    while i + 3 <= len(parts) - 1:
        tool = parts[i].decode("utf-8", "surrogateescape")
        mpo = parts[i + 1].decode("utf-8", "surrogateescape")
        try:
            argc = int(parts[i + 2])
        except ValueError:
            break
        args = [p.decode("utf-8", "surrogateescape") for p in parts[i + 3:i + 3 + argc]]
        out.append(Request(tool, args, mpo))
        i += 3 + argc
    return out


def run_command(command: str, env: dict[str, str]) -> ShellResult:
    """Run ``command`` with ``/bin/sh -c``; nested kmod tools are only recorded."""
    with tempfile.TemporaryDirectory(prefix="kmodemu-sh-") as tmp:
        shimdir = os.path.join(tmp, "bin")
        os.mkdir(shimdir)
        for tool in SHIM_TOOLS:
            p = os.path.join(shimdir, tool)
            with open(p, "w") as fh:
                fh.write(_SHIM.format(tool=tool))
            os.chmod(p, 0o755)
        reqfile = os.path.join(tmp, "requests")
        open(reqfile, "wb").close()
        cmd = _ABS_TOOL.sub(lambda m: os.path.join(shimdir, m.group(1)), command)
        full_env = dict(env)
        full_env["PATH"] = shimdir + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        full_env["KMODEMU_REQUESTS"] = reqfile
        proc = subprocess.run(["/bin/sh", "-c", cmd], env=full_env, capture_output=True,
                              stdin=subprocess.DEVNULL)
        with open(reqfile, "rb") as fh:
            requests = _parse_requests(fh.read())
    return ShellResult(proc.returncode if proc.returncode >= 0 else 128 - proc.returncode,
                       proc.stdout.decode("utf-8", "surrogateescape"),
                       proc.stderr.decode("utf-8", "surrogateescape"), requests)


def replay(requests: list[Request], run_tool: Callable[[str, list[str], dict[str, str]], int],
           env: dict[str, str]) -> None:
    """Run recorded requests in order, each with the MODPROBE_OPTIONS it saw."""
    for req in requests:
        e = dict(env)
        if req.modprobe_options:
            e["MODPROBE_OPTIONS"] = req.modprobe_options
        else:
            e.pop("MODPROBE_OPTIONS", None)
        run_tool(req.tool, [req.tool, *req.argv], e)
