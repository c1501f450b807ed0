"""A machine that persists between CLI commands.

The image on disk is data only: the machine definition plus a journal of the
state-changing console commands run so far. Resuming boots a fresh kernel from
the definition and replays the journal; because the kernel is deterministic
(virtual clock, seeded randomness) the result is the same state, byte for byte,
without pickling live objects. The machine's disk (``root/``: the module tree
and modprobe.d) is a real directory beside the image.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Sequence

from kmodemu.errors import KernelError
from kmodemu.kernel.kernel import Kernel
from kmodemu.machine.definition import MachineDef
from kmodemu.modules.discovery import ModuleRegistry
from kmodemu.trust import HostPolicy

IMAGE_FORMAT = "kmodemu-machine"
IMAGE_VERSION = 1
IMAGE_NAME = "machine.json"


class MachineError(Exception):
    """A machine image that cannot be used: missing, damaged, foreign or locked."""


def default_machine_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kmodemu" / "default"


class Machine:
    """A booted kernel, its disk and (when persistent) its image directory."""

    def __init__(self, definition: MachineDef, path: Path | None = None):
        self.definition = definition.validate()
        self.path = Path(path) if path else None
        self.journal: list[list[str]] = []
        self.powered_off = False
        self._tmp: tempfile.TemporaryDirectory | None = None
        if definition.root:
            self.root = Path(definition.root)
        elif self.path is not None:
            self.root = self.path / "root"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="kmodemu-root-")
            self.root = Path(self._tmp.name)
        self.registry = ModuleRegistry([Path(p) for p in definition.module_path])
        #: the host reach the person running granted (run-time only, never saved in the image)
        self.policy = HostPolicy()
        self.kernel = self._new_kernel()
        self._prepare_disk()
        self.kernel.boot()

    def _new_kernel(self) -> Kernel:
        d = self.definition
        kernel = Kernel(cmdline=d.cmdline, profile=d.profile, release=d.release, mem=d.mem_bytes,
                        registry=self.registry, builtin=d.builtin, seed=d.seed)
        kernel.host_policy = self.policy
        return kernel

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
        path = Path(path)
        image = path / IMAGE_NAME
        entries = [p for p in path.iterdir() if p.name != ".lock"] if path.exists() else []
        if entries:
            if not force:
                raise MachineError(f"{path}: a machine already exists (use --force to replace it)")
            if not image.exists():
                raise MachineError(f"{path}: not a kmodemu machine directory; not replacing it")
            cls._read_image(image)  # refuse to wipe something that is not ours
            for p in entries:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        path.mkdir(parents=True, exist_ok=True)
        machine = cls(definition, path)
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
        if data.get("version") != IMAGE_VERSION:
            raise MachineError(f"{image}: machine image version {data.get('version')!r} is not "
                               f"supported (this kmodemu reads version {IMAGE_VERSION})")
        if not isinstance(data.get("journal"), list) or not isinstance(data.get("definition"), dict):
            raise MachineError(f"{image}: damaged machine image (missing definition or journal)")
        return data

    @classmethod
    def open(cls, path: Path) -> "Machine":
        """Resume a machine: boot its definition and replay its journal silently."""
        path = Path(path)
        data = cls._read_image(path / IMAGE_NAME)
        try:
            definition = MachineDef.from_dict(data["definition"])
        except (TypeError, ValueError) as e:
            raise MachineError(f"{path / IMAGE_NAME}: damaged machine image ({e})") from None
        machine = cls(definition, path)
        machine.powered_off = bool(data.get("powered_off", False))
        if machine.powered_off:
            return machine
        for entry in data["journal"]:
            machine._replay(entry)
        return machine

    def save(self) -> None:
        """Write the image atomically (a crash leaves the old image intact)."""
        if self.path is None:
            return
        data = {"format": IMAGE_FORMAT, "version": IMAGE_VERSION,
                "definition": self.definition.to_dict(), "journal": self.journal,
                "powered_off": self.powered_off}
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".machine.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path / IMAGE_NAME)

    def reboot(self, *, cmdline: str | None = None) -> None:
        """A fresh kernel from the definition (optionally a new command line); the disk stays."""
        if cmdline is not None:
            self.definition.cmdline = cmdline
        self.journal = []
        self.powered_off = False
        self.kernel = self._new_kernel()
        self._prepare_disk()
        self.save()
        self.kernel.boot()

    def poweroff(self) -> None:
        """Forget the running kernel; the image remembers the machine is off."""
        self.journal = []
        self.powered_off = True
        self.save()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- commands ---------------------------------------------------------------
    def run(self, argv: Sequence[str], *, stdout: IO[str] | None = None,
            stderr: IO[str] | None = None, journal: bool = True, save: bool = True) -> int:
        """Run one console command; return its exit status.

        State-changing commands are journaled (failed ones too: a failed
        command leaves the kernel as it was, but its log lines stay, as in
        Linux) and the image is saved.
        """
        from kmodemu.console import INTERNAL_ERROR, execute, is_readonly

        argv = [str(a) for a in argv]
        out = stdout if stdout is not None else sys.stdout
        err = stderr if stderr is not None else sys.stderr
        by_effect = argv[:1] == ["modprobe"] and not is_readonly(argv)
        loader = self.kernel.modules
        loader.oplog = [] if by_effect else None
        try:
            rc = execute(self, argv, out, err)
        finally:
            ops, loader.oplog = loader.oplog, None
        if journal and argv and rc != INTERNAL_ERROR and not is_readonly(argv):
            # modprobe depends on config files the user may edit later: keep what it did
            self.journal.append({"argv": argv, "ops": ops} if by_effect else argv)
            if save:
                self.save()
        return rc

    def _replay(self, entry) -> None:
        """Redo one journal entry, output discarded."""
        if isinstance(entry, dict):
            for op in entry["ops"]:
                self.kernel.modules.replay(op)
            self.kernel.clock.advance_us(10_000)  # what the console charges a command
            self.journal.append(entry)
            return
        sink = io.StringIO()
        self.run(entry, stdout=sink, stderr=sink, journal=True, save=False)

    def capture(self, argv: Sequence[str]) -> tuple[int, str, str]:
        """Run a command and return (status, stdout, stderr) — for tests and scenarios."""
        out, err = io.StringIO(), io.StringIO()
        rc = self.run(argv, stdout=out, stderr=err)
        return rc, out.getvalue(), err.getvalue()

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def kernel_error_text(e: KernelError) -> str:
    return e.message or os.strerror(e.errno or errno.EIO)
