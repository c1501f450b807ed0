"""A machine that persists between CLI commands.

The image on disk is data only: the machine definition plus a journal of the
state-changing console commands run so far (see ``journal.py``). Resuming boots a
fresh kernel from the definition and replays the journal; because the kernel is
deterministic (virtual clock, seeded randomness) the result is the same state,
byte for byte, without pickling live objects. The machine's disk (``root/``: the
module tree and modprobe.d) is a real directory beside the image; what commands
took from the host lives in ``host/`` and plugin directories given at boot in
``plugins/``, so an image never names a path outside its directory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from kmodemu.console import INTERNAL_ERROR, execute_command, is_readonly
from kmodemu.errors import KernelError
from kmodemu.kernel.kernel import Kernel
from kmodemu.machine import journal as jn
from kmodemu.machine import protocol as proto
from kmodemu.machine.definition import MachineDef
from kmodemu.machine.guests import GuestRegistry
from kmodemu.modules.discovery import ModuleRegistry
from kmodemu.trust import HostPolicy

IMAGE_FORMAT = "kmodemu-machine"
IMAGE_VERSION = 1
IMAGE_NAME = proto.IMAGE_NAME
#: what a persistent machine keeps beside its image
PLUGINS_DIR, HOST_DIR, ROOT_DIR = "plugins", "host", "root"

class MachineError(Exception):
    """A machine image that cannot be used: missing, damaged, foreign or locked."""


def default_machine_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kmodemu" / "default"


class Machine:
    """A booted kernel, its disk and (when persistent) its image directory."""

    def __init__(self, definition: MachineDef, path: Path | None = None, *,
                 platform: Callable[[Kernel], None] | None = None):
        self.definition = definition.validate()
        #: a guest's platform hook (its hypervisor's symbols), run on each new kernel before boot
        self._platform = platform
        #: the hypervisor and guests when this machine is a Xen host (``boot --xen``)
        self.xen: Any = None
        self.path = Path(path) if path else None
        self.journal: list[jn.Entry] = []
        self.powered_off = False
        self._tmp: tempfile.TemporaryDirectory | None = None
        #: host files the running command took (word or path -> blob), and during replay the copies
        self._taken: dict[str, str] = {}
        self._replay_files: dict[str, str] | None = None
        #: guest kernels this machine hosts (Xen), addressed as HOST/GUEST
        self.guests = GuestRegistry()
        if definition.root:
            self.root = self._local(definition.root)
        elif self.path is not None:
            self.root = self.path / ROOT_DIR
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="kmodemu-root-")
            self.root = Path(self._tmp.name)
        self.registry = ModuleRegistry([self._local(p) for p in definition.module_path])
        #: the host reach the person running granted (run-time only, never saved in the image)
        self.policy = HostPolicy()
        self.kernel = self._new_kernel()
        self._prepare_disk()
        _boot(self.kernel)

    def _new_kernel(self) -> Kernel:
        d = self.definition
        mem = d.mem_bytes
        if d.xen:  # the definition's mem is the host's; the kernel is dom0 with its share
            from kmodemu.xen.host import XenHost
            self.xen = XenHost(mem, d.xen_cmdline, make_guest=self._make_guest,
                               registry=self.guests, host_run=self.run, seed=d.seed)
            mem = self.xen.hv.dom0.tot_pages << 12
        kernel = Kernel(cmdline=d.cmdline, profile=d.profile, release=d.release, mem=mem,
                        registry=self.registry, builtin=d.builtin, seed=d.seed)
        kernel.host_policy = self.policy
        if self.xen is not None:
            self.xen.attach_dom0(kernel)
        if self._platform is not None:
            self._platform(kernel)
        return kernel

    def _make_guest(self, fields: dict[str, Any], platform: Callable[[Kernel], None]) -> "Machine":
        """A Xen guest: an in-memory machine with this host's modules, on ``platform``."""
        fields = dict(fields, module_path=[str(self._local(p)) for p in self.definition.module_path])
        return Machine(MachineDef(**fields), platform=platform)

    def _local(self, p: str) -> Path:
        """A path of the definition: relative ones are inside the machine directory."""
        return Path(p) if self.path is None or os.path.isabs(p) else self.path / p

    # -- disk -------------------------------------------------------------------
    def _prepare_disk(self) -> None:
        try:
            import kmodemu.kmod as kmod
        except ImportError:  # the kmod tools are optional for a bare kernel
            return
        if not hasattr(kmod, "attach"):
            return
        moddir = self.root / "lib" / "modules" / self.kernel.release
        if not moddir.exists():
            from kmodemu.kmod import tree
            tree.populate(self.root, self.kernel.release, list(self.registry),
                          self.definition.builtin)
            sink = io.StringIO()
            kmod.TOOLS["depmod"](["depmod", "-b", str(self.root), self.kernel.release],
                                 kmod.context.ToolContext(kernel=None, root=self.root, stdout=sink,
                                                          stderr=sink, env=dict(os.environ)))
        kmod.attach(self.kernel, self.root)

    # -- persistence ------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, definition: MachineDef, *, force: bool = False) -> "Machine":
        """Make a machine directory and boot it.

        The new definition boots in memory first: a kernel that panics (or a
        definition that cannot boot) leaves an existing machine untouched.
        Plugin directories are copied in, so the image names no host path.
        """
        path = Path(path)
        image = path / IMAGE_NAME
        keep = {".lock", ".boot.lock", ".sock", ".history"}
        entries = [p for p in path.iterdir() if p.name not in keep] if path.exists() else []
        if entries:
            if not force:
                raise MachineError(f"{path}: a machine already exists (use --force to replace it)")
            if not image.exists():
                raise MachineError(f"{path}: not a kmodemu machine directory; not replacing it")
            cls._read_image(image)  # refuse to wipe something that is not ours
        if definition.root and not jn.inside(definition.root, path):
            raise MachineError(f"{path}: a persistent machine keeps its disk in its directory "
                               f"(root {definition.root!r} is outside it)")
        cls(definition).close()  # boots or raises: nothing on disk changed yet
        for p in entries:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        own = MachineDef.from_dict(definition.to_dict())
        own.module_path = []
        for i, src in enumerate(definition.module_path):
            if not os.path.isabs(src) and jn.inside(path / src, path):
                own.module_path.append(src)
                continue
            rel = f"{PLUGINS_DIR}/{i}"
            shutil.copytree(src, path / rel, ignore=shutil.ignore_patterns("__pycache__"),
                            dirs_exist_ok=True)
            own.module_path.append(rel)
        machine = cls(own, path)
        machine.save()
        return machine

    @staticmethod
    def _read_image(image: Path) -> dict:
        try:
            data = json.loads(image.read_text())
        except FileNotFoundError:
            raise MachineError(f"{image.parent}: no machine here (create one with 'kmodemu boot')") from None
        except (OSError, ValueError) as e:
            raise MachineError(f"{image}: damaged machine image ({e})") from None
        if not isinstance(data, dict) or data.get("format") != IMAGE_FORMAT:
            raise MachineError(f"{image}: not a kmodemu machine image")
        version = data.get("version")
        if type(version) is not int or version != IMAGE_VERSION:  # JSON true is not 1
            raise MachineError(f"{image}: machine image version {json.dumps(version)} is not "
                               f"supported (this kmodemu reads version {IMAGE_VERSION})")
        if not isinstance(data.get("journal"), list) or not isinstance(data.get("definition"), dict):
            raise MachineError(f"{image}: damaged machine image (missing definition or journal)")
        if not isinstance(data.get("powered_off", False), bool):
            raise MachineError(f"{image}: damaged machine image (powered_off is not true or false)")
        try:
            data["journal"] = jn.check_journal(data["journal"])
        except jn.JournalError as e:
            raise MachineError(f"{image}: damaged machine image ({e})") from None
        return data

    @staticmethod
    def _check_paths(definition: MachineDef, path: Path, image: Path) -> None:
        """An image names paths inside its directory only: anything else is not trusted."""
        for p in [*definition.module_path, *([definition.root] if definition.root else [])]:
            if os.path.isabs(p) or not jn.inside(path / p, path):
                raise MachineError(f"{image}: untrusted machine image (path {p!r} is outside "
                                   "the machine directory)")

    @classmethod
    def open(cls, path: Path, progress: Callable[[int, int], None] | None = None) -> "Machine":
        """Resume a machine: boot its definition and replay its journal silently.

        ``progress(done, total)`` is called after each replayed entry.
        """
        path = Path(path)
        image = path / IMAGE_NAME
        data = cls._read_image(image)
        try:
            definition = MachineDef.from_dict(data["definition"])
        except (TypeError, ValueError) as e:
            raise MachineError(f"{image}: damaged machine image ({e})") from None
        cls._check_paths(definition, path, image)
        machine = cls(definition, path)
        machine.powered_off = bool(data.get("powered_off", False))
        if machine.powered_off:
            return machine
        total = len(data["journal"])
        for i, entry in enumerate(data["journal"]):
            machine._replay(entry)
            if progress is not None:
                progress(i + 1, total)
        return machine

    def save(self) -> None:
        """Write the image atomically (a crash or a full disk leaves the old image intact)."""
        if self.path is None:
            return
        data = {"format": IMAGE_FORMAT, "version": IMAGE_VERSION,
                "definition": self.definition.to_dict(), "journal": self.journal,
                "powered_off": self.powered_off}
        text = json.dumps(data, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".machine.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path / IMAGE_NAME)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise MachineError(f"{self.path / IMAGE_NAME}: cannot save the machine: "
                               f"{os.strerror(e.errno or errno.EIO)}") from None

    def reboot(self, *, cmdline: str | None = None) -> None:
        """A fresh kernel from the definition (optionally a new command line); the disk stays.

        The new kernel boots before anything is saved: one that does not boot
        leaves the machine as it was (its old kernel still running).
        """
        definition = MachineDef.from_dict(self.definition.to_dict())
        if cmdline is not None:
            definition.cmdline = cmdline
        old = (self.definition, self.kernel, self.xen, self.guests)
        self.definition = definition
        if self.xen is not None:  # a host's reboot ends its guests
            self.guests = GuestRegistry()
        try:
            kernel = self._new_kernel()
            self.kernel = kernel
            self._prepare_disk()
            _boot(kernel)
        except BaseException:
            self.definition, self.kernel, self.xen, self.guests = old
            raise
        if old[2] is not None:
            old[2].close()
        old[1].shutdown()  # the old kernel's drivers close their sockets, stop their threads
        self.journal = []
        self.powered_off = False
        self.save()

    @classmethod
    def mark_powered_off(cls, path: Path) -> None:
        """Power off a machine whose process is not running (no replay: the image says so)."""
        path = Path(path)
        data = cls._read_image(path / IMAGE_NAME)
        definition = MachineDef.from_dict(data["definition"])
        cls._check_paths(definition, path, path / IMAGE_NAME)
        m = cls.__new__(cls)
        m.path, m.definition, m.journal, m.powered_off = path, definition, [], True
        m.save()

    def poweroff(self) -> None:
        """Forget the running kernel; the image remembers the machine is off."""
        self.journal = []
        self.powered_off = True
        self.save()

    def close(self) -> None:
        if self.xen is not None:
            self.xen.close()
        self.kernel.shutdown()  # sockets and threads of drivers (ramster's r2net) go away
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- commands ---------------------------------------------------------------
    def run(self, argv: Sequence[str], *, stdout: IO[str] | None = None,
            stderr: IO[str] | None = None, journal: bool = True, save: bool = True) -> int:
        """Run one console command; return its exit status.

        State-changing commands are journaled and the image is saved before
        this returns. A failed command leaves the kernel as it was, but its
        log lines and the time it took stay, as in Linux: such a failure is
        journaled; one that left no trace is not. Usage errors, ``--help``,
        reads and internal errors change nothing and are not journaled. Host files the command took are copied into the
        machine directory and the journal points at the copies.
        """
        argv = [str(a) for a in argv]
        out = stdout if stdout is not None else sys.stdout
        err = stderr if stderr is not None else sys.stderr
        readonly = is_readonly(argv)
        by_effect = argv[:1] == ["modprobe"] and not readonly
        loader = self.kernel.modules
        loader.oplog = [] if by_effect else None
        self._taken = {}
        if journal and not readonly:
            self._take_insmod_file(argv)
        try:
            rc, changed = execute_command(self, argv, out, err)
        finally:
            ops, loader.oplog = loader.oplog, None
        taken, self._taken = self._taken, {}
        if (journal and argv and changed and rc != INTERNAL_ERROR
                and not (self.path is not None and jn.writes_outside(argv, self.path))):
            entry: jn.Entry = argv
            if by_effect:
                entry = {"argv": argv, "ops": [self._own_op(op) for op in ops or []]}
            elif taken:
                entry = {"argv": argv, "files": taken}
            self.journal.append(entry)
            if save:
                try:
                    self.save()
                except MachineError:
                    self.journal.pop()
                    raise
        return rc

    # -- what commands take from the host -------------------------------------------
    def read_host(self, path: str, limit: int) -> bytes:
        """A host file's first ``limit`` bytes; persistent machines keep a copy for replay."""
        if self._replay_files is not None:
            blob = self._replay_files.get(path)
            if blob is None or self.path is None:
                raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            with open(self.path / blob, "rb") as f:
                return f.read(limit)
        with open(path, "rb") as f:
            data = f.read(limit)
        if self.path is not None:
            self._taken[path] = jn.store_blob(self.path, path, data)
        return data

    def _take_insmod_file(self, argv: list[str]) -> None:
        if argv[0] != "insmod" or self.path is None or self._replay_files is not None:
            return
        i = jn.insmod_file_index(argv)
        if i is None or not os.path.isfile(argv[i]) or jn.inside(argv[i], self.path):
            return
        try:
            with open(argv[i], "rb") as f:
                data = f.read()
        except OSError:
            return  # insmod itself reports it
        self._taken[argv[i]] = jn.store_blob(self.path, argv[i], data)

    def _own_op(self, op: list) -> list:
        """A modprobe load names its file relative to the machine (a copy if it was the host's)."""
        if op[0] != "load" or "path" not in op[1] or self.path is None:
            return op
        src = op[1]["path"]
        if jn.inside(src, self.path):
            rel = os.path.relpath(os.path.realpath(src), os.path.realpath(self.path))
        else:
            try:
                with open(src, "rb") as f:
                    rel = jn.store_blob(self.path, src, f.read())
            except OSError:
                return op
        return [op[0], {"path": rel}, op[2]]

    def pass_wall_time(self, ns: int) -> None:
        """Let wall time that passed reach the virtual clock (``--clock real``), journaled."""
        if ns <= 0:
            return
        with self.kernel.bkl:  # timers run as a command would: not beside a driver's threads
            self.kernel.clock.advance(ns)
        self.journal.append({"clock": ns})
        self.save()

    def _replay(self, entry: jn.Entry) -> None:
        """Redo one journal entry, output discarded."""
        if isinstance(entry, dict) and "clock" in entry:
            self.kernel.clock.advance(entry["clock"])
            self.journal.append(entry)
            return
        if isinstance(entry, dict) and "ops" in entry:
            for op in entry["ops"]:
                if op[0] == "load" and "path" in op[1] and self.path is not None:
                    p = op[1]["path"]
                    full = p if os.path.isabs(p) else str(self.path / p)
                    if not jn.inside(full, self.path):
                        raise MachineError(f"{self.path / IMAGE_NAME}: untrusted machine image "
                                           f"(module {p!r} is outside the machine directory)")
                    op = [op[0], {"path": full}, op[2]]
                self.kernel.modules.replay(op)
            self.kernel.clock.advance_us(10_000)  # what the console charges a command
            self.journal.append(entry)
            return
        sink = io.StringIO()
        if isinstance(entry, dict):
            argv, files = list(entry["argv"]), dict(entry.get("files", {}))
            if argv[0] == "insmod" and self.path is not None:
                argv = [str(self.path / files[w]) if w in files else w for w in argv]
            self._replay_files = files
            try:
                self.run(argv, stdout=sink, stderr=sink, journal=False)
            finally:
                self._replay_files = None
            self.journal.append(entry)
            return
        if self.path is not None and jn.writes_outside(entry, self.path):
            return  # an old image's depmod -b HOSTDIR: replay never writes outside
        self._replay_files = {}
        try:
            self.run(entry, stdout=sink, stderr=sink, journal=True, save=False)
        finally:
            self._replay_files = None

    def capture(self, argv: Sequence[str]) -> tuple[int, str, str]:
        """Run a command and return (status, stdout, stderr) — for tests and scenarios."""
        out, err = io.StringIO(), io.StringIO()
        rc = self.run(argv, stdout=out, stderr=err)
        return rc, out.getvalue(), err.getvalue()

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _boot(kernel: Kernel) -> None:
    """Boot, turning a host out of memory (an absurd ``mem=``) into the kernel's ENOMEM."""
    try:
        kernel.boot()
    except MemoryError:
        raise KernelError(errno.ENOMEM, f"out of memory: the host cannot emulate "
                                        f"{kernel.mem_bytes} bytes of RAM") from None


def kernel_error_text(e: KernelError) -> str:
    return e.message or os.strerror(e.errno or errno.EIO)
