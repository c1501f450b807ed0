"""Real running machines for tests: ``RunningMachine`` starts a machine process, stops it.

Used by the ``running_machine`` pytest fixture (kmodemu's pytest plugin) and by
tests of networked backends that need several machines alive at once: each
machine gets a distinct loopback address (127.0.0.1, 127.0.0.2, …) to bind its
peers' TCP servers to (the backends take it from their own configuration
commands; kmodemu only hands it out).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from kmodemu.machine import client
from kmodemu.machine import protocol as proto


class RunningMachine:
    """One machine process in ``path``, driven through its socket as the CLI drives it."""

    def __init__(self, path: Path, address: str):
        self.path = Path(path)
        self.address = address

    def boot(self, *args: str) -> "RunningMachine":
        res = kmodemu("--machine", str(self.path), "boot", *args)
        if res.returncode != 0:
            raise RuntimeError(f"boot {' '.join(args)} failed: {res.stderr}")
        return self

    def run(self, *argv: str) -> tuple[int, str, str]:
        """A console command on the machine: (status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        rc = client.run_command(self.path, [str(a) for a in argv], stdout=out, stderr=err)
        return rc, out.getvalue(), err.getvalue()

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """The real ``kmodemu`` executable against this machine."""
        return kmodemu("--machine", str(self.path), *args, timeout=timeout)

    @property
    def pid(self) -> int | None:
        data = client.info(self.path)
        return None if data is None else int(data["pid"])

    @property
    def running(self) -> bool:
        return client.is_running(self.path)

    def kill(self) -> None:
        """SIGKILL the machine process (a crash) and wait until it is gone."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        wait_stopped(self.path)

    def stop(self) -> None:
        """End the process without touching the image (what a test's teardown wants)."""
        if client.is_running(self.path):
            try:
                client.stop(self.path, "quit")
            except client.ClientError:
                self.kill()


def kmodemu(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("kmodemu")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "kmodemu"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def wait_stopped(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.is_running(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"machine {path} still running")
        time.sleep(0.02)


def stop_all_under(base: Path) -> list[Path]:
    """Stop every machine process whose directory is under ``base``; return their paths."""
    stopped = []
    for lock in Path(base).rglob(proto.LOCK_NAME):
        if client.is_running(lock.parent):
            RunningMachine(lock.parent, "").stop()
            stopped.append(lock.parent)
    return stopped


class Machines:
    """A factory of running machines under one directory, with distinct loopback addresses."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.started: list[RunningMachine] = []

    def __call__(self, name: str = "m", boot: Sequence[str] = ()) -> RunningMachine:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        m = RunningMachine(self.base / name, f"127.0.0.{len(self.started) + 1}")
        m.boot(*boot)
        self.started.append(m)
        return m

    def close(self) -> None:
        for m in self.started:
            m.stop()
        stop_all_under(self.base)
