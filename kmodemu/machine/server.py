"""The running machine: one process per machine directory, its kernel in memory.

``python -m kmodemu.machine.server DIR --ready-fd N`` recovers the machine from
its image (a fresh boot when the journal is empty), reports progress and then
``ready`` on fd N, and serves the line protocol (``protocol.py``) on ``DIR/.sock``
until ``poweroff``. Clients connect concurrently; commands run one at a time on
the main thread, so each is atomic. A command's effect is journaled (and the
image saved) before its reply. An interrupted command (Ctrl-C in the client, or
the client gone) is dropped whole: the machine is rebuilt from its journal, so
none of a half-run command survives, and the client gets exit 130.

The process holds ``DIR/.lock`` for its life: a second process for the same
directory refuses to start, and a socket whose owner died is known stale.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from kmodemu.errors import KernelError
from kmodemu.machine import protocol as proto
from kmodemu.machine.guests import DOM0
from kmodemu.machine.machine import IMAGE_NAME, Machine, MachineError

TICK_S = 0.5
INTERRUPTED = 130


class _Job:
    """One request from one connection, run by the main thread."""

    def __init__(self, conn: socket.socket, request: dict[str, Any]):
        self.conn = conn
        self.request = request
        self.active = False
        self.interrupted = False
        self.done = threading.Event()
        self.gone = False

    def send(self, obj: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            proto.send(self.conn, obj)
        except OSError:
            self.gone = True


class _Stream(io.TextIOBase):
    """A command's stdout or stderr, forwarded line by line to its client."""

    def __init__(self, job: _Job, key: str, tty: bool):
        self.job, self.key, self.tty = job, key, tty

    # typeshed declares TextIOBase.encoding a plain attribute; CPython's is a read-only
    # descriptor, so a property is the way to give it a value.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        # text only: a command's bytes were decoded by execute_command's stream already
        if text:
            self.job.send({self.key: text})
        return len(text)


class MachineServer:
    def __init__(self, path: Path, machine: Machine):
        self.path = path
        self.machine = machine
        self.jobs: "queue.Queue[_Job]" = queue.Queue()
        self.lock = threading.Lock()
        self.current: _Job | None = None
        self.armed = False
        self.running = True
        self.started_wall = time.time()
        self._wall_mark = time.monotonic_ns()
        self._main = threading.get_ident()
        self._listener: socket.socket | None = None

    # -- signals: Ctrl-C forwarded by a client interrupts only the command it sent ------
    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.armed:
            raise KeyboardInterrupt

    def interrupt(self, job: _Job) -> None:
        with self.lock:
            if job.active and not job.interrupted:
                job.interrupted = True
                signal.pthread_kill(self._main, signal.SIGINT)

    # -- connections ----------------------------------------------------------------
    def listen(self) -> None:
        sock_path = self.path / proto.SOCKET_NAME
        if os.path.lexists(sock_path):
            os.unlink(sock_path)  # we hold the lock: whoever made it is dead
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(proto.SOCKET_NAME)  # relative: cwd is the machine directory
        finally:
            os.umask(old)
        os.chmod(proto.SOCKET_NAME, 0o600)
        s.listen(128)
        self._listener = s
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while self.running:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            if proto.peer_uid(conn) != os.getuid():
                conn.close()
                return
            proto.send(conn, {"kmodemu": proto.PROTOCOL, "version": proto.version(),
                              "pid": os.getpid()})
            reader = proto.LineReader(conn)
            request = reader.read()
            if request is None:
                return
            job = _Job(conn, request)
            self.jobs.put(job)
            while not job.done.is_set():
                msg = reader.read()
                if msg is None:  # the client is gone: drop its command if still running
                    job.gone = True
                    self.interrupt(job)
                    break
                if msg.get("interrupt"):
                    self.interrupt(job)
            job.done.wait()
        except (OSError, proto.ProtocolError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # -- the main loop ----------------------------------------------------------------
    def serve(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, lambda *_: self._stop())
        while self.running:
            try:
                job = self.jobs.get(timeout=TICK_S)
            except queue.Empty:
                self._tick()
                continue
            try:
                self._run_job(job)
            except KeyboardInterrupt:  # landed between commands: nothing was running
                pass
            finally:
                job.done.set()
        self._close()

    def _stop(self) -> None:
        self.running = False

    def _tick(self) -> None:
        if not (self.path / IMAGE_NAME).exists():  # the directory was removed: power off
            self.running = False
            return
        if self.machine.definition.clock == "real" and self.machine.kernel.clock.pending_timers():
            self._follow_wall_clock()

    def _follow_wall_clock(self) -> None:
        if self.machine.definition.clock != "real":
            return
        now = time.monotonic_ns()
        passed, self._wall_mark = now - self._wall_mark, now
        self.machine.pass_wall_time(passed)

    def _run_job(self, job: _Job) -> None:
        req = job.request
        op = req.get("op")
        if req.get("kmodemu") != proto.PROTOCOL or req.get("version") != proto.version():
            job.send({"err": f"kmodemu: machine {self.path} runs kmodemu {proto.version()} "
                             f"(protocol {proto.PROTOCOL}); this client is "
                             f"{req.get('version')!r} (protocol {req.get('kmodemu')!r}): "
                             "power it off with the same version, or use that version\n"})
            job.send({"exit": 1})
            return
        if op == "run":
            self._run_command(job)
        elif op == "info":
            job.send({"info": self.info()})
            job.send({"exit": 0})
        elif op == "poweroff":
            self.machine.poweroff()
            self.running = False
            job.send({"exit": 0})
        elif op == "quit":  # replaced by a new boot: leave the image alone
            self.running = False
            job.send({"exit": 0})
        elif op == "reboot":
            cmdline = req.get("cmdline")
            try:
                self.machine.reboot(cmdline=cmdline if isinstance(cmdline, str) else None)
                rc = 0
            except KernelError as e:
                job.send({"err": f"kmodemu: the kernel did not boot: {e}\n"})
                rc = 1
            except MachineError as e:
                job.send({"err": f"kmodemu: {e}\n"})
                rc = 1
            job.send({"exit": rc})
        else:
            job.send({"err": f"kmodemu: unknown request {op!r}\n"})
            job.send({"exit": 1})

    def _target(self, name: object) -> Any:
        if name in (None, "", DOM0):
            return self.machine
        if isinstance(name, str):
            return self.machine.guests.get(name)
        return None

    def _run_command(self, job: _Job) -> None:
        req = job.request
        argv = req.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            job.send({"err": "kmodemu: malformed request\n"})
            job.send({"exit": 2})
            return
        target = self._target(req.get("target"))
        if target is None:
            job.send({"err": f"kmodemu: {self.path.name}/{req.get('target')}: no such domain\n"})
            job.send({"exit": 1})
            return
        asked = req.get("tty")
        tty = asked if isinstance(asked, dict) else {}
        out = _Stream(job, "out", bool(tty.get("out")))
        err = _Stream(job, "err", bool(tty.get("err")))
        self._follow_wall_clock()
        rc: int | None = None
        rebuild = False
        with self.lock:
            job.active = True
        try:
            try:
                self.armed = True
                rc = target.run(argv, stdout=out, stderr=err)
            finally:
                self.armed = False
        except KeyboardInterrupt:
            rc = None
        except MachineError as e:  # the image could not be saved: the effect is not kept
            err.write(f"kmodemu: {e}; the command was undone\n")
            rc, rebuild = 1, True
        except Exception as e:  # a bug outside the console's own guard: keep serving
            err.write(f"kmodemu: {argv[0] if argv else ''}: internal error: "
                      f"{type(e).__name__}: {e}\n")
            rc, rebuild = 70, True
        with self.lock:
            job.active = False
            interrupted = job.interrupted
        if interrupted or rc is None:
            rebuild, rc = True, INTERRUPTED
        if rebuild:
            self._rebuild()
        job.send({"exit": rc})

    def _rebuild(self) -> None:
        """Back to exactly what the journal says (an interrupted command leaves no trace)."""
        guests = self.machine.guests
        self.machine.close()
        self.machine = Machine.open(self.path)
        if self.machine.xen is None:  # a Xen host's replay re-created its own guests
            self.machine.guests = guests

    def info(self) -> dict[str, Any]:
        m = self.machine
        journal = [e if isinstance(e, list) else e["argv"] for e in m.journal
                   if isinstance(e, list) or "argv" in e]
        return {"pid": os.getpid(), "release": m.kernel.release, "profile": m.definition.profile,
                "definition": m.definition.to_dict(), "journal": journal,
                "uptime_virtual": m.kernel.clock.ns / 1e9,
                "uptime_wall": time.time() - self.started_wall,
                "clock": m.definition.clock, "guests": m.guests.names()}

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        try:
            os.unlink(self.path / proto.SOCKET_NAME)
        except OSError:
            pass


def _report(fd: int | None, obj: dict[str, Any]) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kmodemu-machine")
    ap.add_argument("path")
    ap.add_argument("--ready-fd", type=int, default=None)
    args = ap.parse_args(argv)
    path = Path(args.path).absolute()
    fd = args.ready_fd
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until serving: the client's Ctrl-C is not ours
    try:
        proto.check_private(path, is_dir=True)
        os.chdir(path)
        lock = open(path / proto.LOCK_NAME, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _report(fd, {"error": f"machine {path} is already running"})
            return 1
        t0 = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == total:
                last[0] = now
                _report(fd, {"progress": [done, total]})

        machine = Machine.open(path, progress=progress)
        replayed = len(machine.journal)
        note = None
        if machine.powered_off:
            machine.reboot()
            note = "powered-off"
        server = MachineServer(path, machine)
        server.listen()
    except (MachineError, proto.ProtocolError) as e:
        _report(fd, {"error": str(e)})
        return 1
    except KernelError as e:
        _report(fd, {"error": f"the kernel did not boot: {e}"})
        return 1
    except OSError as e:
        _report(fd, {"error": f"{path}: {e.strerror}"})
        return 1
    _report(fd, {"ready": os.getpid(), "replayed": replayed, "note": note,
                 "seconds": time.monotonic() - t0})
    if fd is not None:
        os.close(fd)
    server.serve()
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
