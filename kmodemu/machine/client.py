"""The CLI's side of a running machine: start its process, send it commands.

A command goes to the machine process over ``DIR/.sock``; its output comes back
as it is printed and is written to our stdout/stderr unchanged, and its status
becomes ours. When no process serves the directory, the machine is brought
back from its journal first (said once on stderr, with a progress bar when
that takes more than a second).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from kmodemu.machine import protocol as proto
from kmodemu.machine.journal import Entry

START_TIMEOUT_S = 600.0
PROGRESS_AFTER_S = 1.0


class ClientError(Exception):
    """A machine that cannot be reached or started: one line for the user."""


@contextlib.contextmanager
def boot_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Serialises starting machine processes for one directory (racing boots, recoveries)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path / proto.BOOT_LOCK_NAME, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ClientError(f"machine {path}: another boot is in progress") from None
        yield


def is_running(path: Path) -> bool:
    """Whether a machine process holds the directory's lock."""
    lock = Path(path) / proto.LOCK_NAME
    if not lock.exists():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _connect(path: Path) -> Any:
    try:
        return proto.connect(path)
    except proto.ProtocolError as e:
        raise ClientError(str(e)) from None
    except OSError as e:
        raise ClientError(f"{path}: {e.strerror}") from None


def start(path: Path, *, stderr: TextIO, announce: bool = True) -> dict[str, Any]:
    """Start the machine process for ``path`` (holding the boot lock) and wait until it serves."""
    path = Path(path).absolute()
    rfd, wfd = os.pipe()
    env = dict(os.environ)
    env.pop("KMODEMU_MACHINE", None)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kmodemu.machine.server", str(path), "--ready-fd", str(wfd)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(wfd,), start_new_session=True, close_fds=True, env=env, cwd="/")
    finally:
        os.close(wfd)
    t0 = time.monotonic()
    bar: Any = None
    buf = b""
    result: dict[str, Any] | None = None
    try:
        with os.fdopen(rfd, "rb", buffering=0) as pipe:
            while result is None:
                ready, _, _ = select.select([pipe], [], [], 0.2)
                if not ready:
                    if time.monotonic() - t0 > START_TIMEOUT_S:
                        raise ClientError(f"machine {path} did not start in {START_TIMEOUT_S:.0f} s")
                    continue
                chunk = pipe.read(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    if "progress" in msg:
                        done, total = msg["progress"]
                        if bar is None and announce and time.monotonic() - t0 > PROGRESS_AFTER_S:
                            import click
                            bar = click.progressbar(length=total, label="recovering",
                                                    file=stderr)
                            bar.__enter__()
                        if bar is not None:
                            bar.update(done - bar.pos)
                    else:
                        result = msg
                        break
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if result is None:
        proc.wait()
        raise ClientError(f"machine {path}: its process ended before it was up "
                          f"(status {proc.returncode})")
    if "error" in result:
        proc.wait()
        raise ClientError(result["error"])
    return result


def ensure_running(path: Path, *, stderr: TextIO) -> None:
    """Connectable afterwards: a dead machine is recovered from its journal (said once)."""
    path = Path(path)
    s = _connect(path)
    if s is not None:
        s.close()
        return
    if not (path / proto.IMAGE_NAME).exists():
        raise ClientError(f"{path}: no machine here (create one with 'kmodemu boot')")
    with boot_lock(path):
        if _wait_serving(path):  # someone else started it meanwhile (maybe still recovering)
            return
        result = start(path, stderr=stderr)
    if result.get("note") == "powered-off":
        stderr.write(f"kmodemu: machine {path} was powered off; booting it again\n")
    else:
        n = result.get("replayed", 0)
        stderr.write(f"kmodemu: machine {path} was not running; recovered it from its journal "
                     f"({n} command{'s' if n != 1 else ''} replayed in "
                     f"{result.get('seconds', 0):.1f} s)\n")
    stderr.flush()


def _wait_serving(path: Path, timeout: float = START_TIMEOUT_S) -> bool:
    """True once the machine serves its socket; False if no process holds the machine.

    A process that holds the lock but does not serve yet is starting (replaying
    its journal for a client that went away): wait for it rather than start a second.
    """
    deadline = time.monotonic() + timeout
    while True:
        s = _connect(path)
        if s is not None:
            s.close()
            return True
        if not is_running(path):
            return False
        if time.monotonic() > deadline:
            raise ClientError(f"machine {path} did not start in {timeout:.0f} s")
        time.sleep(0.05)


def request(path: Path, req: dict[str, Any], *, stdout: TextIO, stderr: TextIO,
            extra: dict[str, Any] | None = None, timeout: float | None = None) -> int:
    """Send one request; copy its output as it comes; return its exit status.

    Ctrl-C is forwarded (the machine drops the command and answers 130); a
    second Ctrl-C stops waiting. ``timeout`` bounds each wait for the machine
    (shell completion must not hang on a busy one): a ClientError when it passes.
    """
    s = _connect(path)
    if s is None:
        raise ClientError(f"machine {path} is not running")
    s.settimeout(timeout)
    with contextlib.closing(s):
        reader = proto.LineReader(s)
        try:
            hello = reader.read()
        except (OSError, proto.ProtocolError):
            hello = None
        if hello is None or hello.get("kmodemu") != proto.PROTOCOL:
            raise ClientError(f"machine {path}: the process on its socket does not speak "
                              f"kmodemu protocol {proto.PROTOCOL}")
        if hello.get("version") != proto.version():
            raise ClientError(f"machine {path} runs kmodemu {hello.get('version')}; this is "
                              f"kmodemu {proto.version()}: power it off with that version first")
        proto.send(s, {"kmodemu": proto.PROTOCOL, "version": proto.version(), **req})
        interrupts = 0
        while True:
            try:
                msg = reader.read()
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts > 1:
                    return 130
                with contextlib.suppress(OSError):
                    proto.send(s, {"interrupt": True})
                continue
            except (OSError, proto.ProtocolError):
                msg = None
            if msg is None:
                raise ClientError(f"machine {path}: the connection ended before the command did "
                                  "(the machine process died?)")
            if "out" in msg:
                stdout.write(msg["out"])
                stdout.flush()
            elif "err" in msg:
                stderr.write(msg["err"])
                stderr.flush()
            elif "exit" in msg:
                return int(msg["exit"])
            elif extra is not None:
                extra.update(msg)


def _tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_command(path: Path, argv: Sequence[str], *, target: str | None = None,
                stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    ensure_running(path, stderr=err)
    return request(path, {"op": "run", "argv": list(argv), "target": target,
                          "tty": {"out": _tty(out), "err": _tty(err)}}, stdout=out, stderr=err)


def info(path: Path, timeout: float | None = None) -> dict[str, Any] | None:
    """What a running machine says about itself; None when it is not running."""
    extra: dict[str, Any] = {}
    try:
        request(path, {"op": "info"}, stdout=sys.stdout, stderr=sys.stderr, extra=extra,
                timeout=timeout)
    except ClientError:
        return None
    return extra.get("info")


def stop(path: Path, op: str = "quit", timeout: float = 30.0) -> bool:
    """Ask a running machine to end (``quit`` leaves its image alone); wait until it has."""
    if not _wait_serving(path):
        return False
    try:
        rc = request(path, {"op": op}, stdout=sys.stdout, stderr=sys.stderr)
    except ClientError:
        rc = None
    deadline = time.monotonic() + timeout
    while is_running(path):
        if time.monotonic() > deadline:
            raise ClientError(f"machine {path} did not stop")
        time.sleep(0.02)
    return rc == 0


class RemoteMachine:
    """A running machine seen from a client: enough of ``Machine`` for ``kmodemu shell``."""

    def __init__(self, path: Path, target: str | None = None):
        from kmodemu.machine.definition import MachineDef

        data = info(path)
        if data is None:
            raise ClientError(f"machine {path} is not running")
        self.path = Path(path)
        self.target = target
        self.definition = MachineDef.from_dict(data["definition"])
        self.journal: list[Entry] = data["journal"]
        root = self.definition.root
        self.root = self.path / (root or "root")

    def run(self, argv: Sequence[str], *, stdout: TextIO | None = None,
            stderr: TextIO | None = None) -> int:
        out = stdout if stdout is not None else sys.stdout
        err = stderr if stderr is not None else sys.stderr
        return request(self.path, {"op": "run", "argv": [str(a) for a in argv],
                                   "target": self.target,
                                   "tty": {"out": _tty(out), "err": _tty(err)}},
                       stdout=out, stderr=err)


def kill(path: Path, sig: int = signal.SIGKILL) -> None:
    """For tests: end a machine process abruptly (as a host crash would)."""
    data = info(path)
    if data is not None:
        os.kill(int(data["pid"]), sig)


__all__ = ["ClientError", "RemoteMachine", "boot_lock", "ensure_running", "info",
           "is_running", "kill", "request", "run_command", "start", "stop"]
