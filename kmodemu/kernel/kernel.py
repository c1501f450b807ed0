"""The emulated kernel: one object per machine, never a global.

It owns the virtual clock, the log, taint, the pseudo filesystems, the module
loader and (through ``kmodemu.mm``) memory and the tmem frontends. ``boot()``
runs the same phases Linux's ``start_kernel`` does for what we model: early
parameters, the "Booting kernel" parameter pass, initcalls of built-in
modules by level, then user space.
"""

from __future__ import annotations

import errno
import random
from typing import TYPE_CHECKING, Any, Callable, Iterable

import pluggy

from kmodemu import hookspecs
from kmodemu.errors import KernelError
from kmodemu.kernel.bkl import BigKernelLock
from kmodemu.kernel.clock import VirtualClock
from kmodemu.kernel.configfs import ConfigFS
from kmodemu.kernel.fault_inject import FaultInjection
from kmodemu.kernel.init_main import parse_boot_cmdline
from kmodemu.kernel.params import Param, ParamSpec
from kmodemu.kernel.printk import KERN_EMERG, KERN_ERR, KERN_INFO, KERN_NOTICE, KERN_WARNING, LogBuffer
from kmodemu.kernel.cmdline import memparse
from kmodemu.kernel.profiles import DEFAULT_PROFILE, get_profile
from kmodemu.kernel.taint import Taint
from kmodemu.kernel.vfs import PseudoFS
from kmodemu.trust import HostPolicy
from kmodemu.mm import attach as attach_mm
from kmodemu.modules.context import ModuleContext
from kmodemu.modules.declaration import ModuleDecl
from kmodemu.modules.loader import Module, ModuleLoader, module_name

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.cleancache import Cleancache
    from kmodemu.mm.frontswap import Frontswap
    from kmodemu.mm.memory import MemoryManager
    from kmodemu.modules.discovery import ModuleRegistry

INITCALL_LEVELS = ("early", "core", "postcore", "arch", "subsys", "fs", "device", "late")
DEFAULT_MEM = 256 << 20
MIN_MEM = 16 << 20
COMMAND_LINE_SIZE = 2048
#: x86-64 in 3.10 addresses 2^46 bytes of physical memory (MAX_PHYSMEM_BITS): 64 TiB
MAX_MEM = 1 << 46
MODULE_NAME_LEN = 56


class Kernel:
    """An emulated Linux kernel.

    ``builtin`` names the modules configured ``=y``: they are linked in, take
    boot parameters and run their initcalls during ``boot()``. All other
    modules of the registry are loadable.
    """

    def __init__(self, *, cmdline: str = "", profile: str = DEFAULT_PROFILE,
                 release: str | None = None, mem: int | None = None,
                 registry: "ModuleRegistry | None" = None, builtin: Iterable[str] = (),
                 seed: int = 0):
        self.profile = get_profile(profile)
        self.release = release or self.profile.release
        # strlcpy into boot_command_line[COMMAND_LINE_SIZE] (2048 on x86)
        self.saved_command_line = cmdline.encode("utf-8", "surrogateescape")[:COMMAND_LINE_SIZE - 1].decode(
            "utf-8", "surrogateescape")
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        self.log = LogBuffer(self.clock)
        self.taint = Taint()
        self.vfs = PseudoFS()
        self.faults = FaultInjection(self, seed)
        #: held by whoever runs on this kernel (a console command, an r2net receive thread)
        self.bkl = BigKernelLock()
        self.configfs = ConfigFS(self.vfs)
        #: init scripts a driver brings along (``kmodemu service NAME ACTION``)
        self.services: dict[str, Callable[..., Any]] = {}
        #: run once when the machine stops running this kernel (close, reboot)
        self.shutdown_hooks: list[Callable[[], None]] = []
        #: run at the start of every console command (drivers take in what arrived meanwhile)
        self.entry_hooks: list[Callable[[], None]] = []
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hook = self.pm.hook
        self.registry = registry
        self.modules = ModuleLoader(self)
        self.builtin_names = [module_name(n) for n in builtin]
        self.mem_bytes = mem or DEFAULT_MEM
        self.init_args: Any = None
        self.booted = False
        self.panic_message: str | None = None
        self.loglevel = 7
        #: kernel.randomize_va_space (mm/memory.c): 2 by default, 0 after ``norandmaps``
        self.randomize_va_space = 2
        #: core_param(panic, panic_timeout, int, 0644) (kernel/panic.c): seconds before a
        #: panicked kernel reboots; /sys/module/kernel/parameters/panic and /proc/sys/kernel/panic
        self.core_params = {"panic": Param(ParamSpec("panic", "int", 0o644, default=0))}
        self.modprobe_path = "/sbin/modprobe"
        #: set by ``kmodemu.kmod.attach``: runs modprobe for ``request_module``
        self.usermodehelper_modprobe: Callable[[list[str]], int] | None = None
        #: what this machine may take from the host (set by the machine; see kmodemu.trust)
        self.host_policy = HostPolicy()
        # set by ``kmodemu.mm.attach`` during boot, after ``mem=`` is known
        self.mm: "MemoryManager"
        self.cleancache: "Cleancache"
        self.frontswap: "Frontswap"
        self._core_files()

    # -- logging ----------------------------------------------------------------
    @property
    def lazy_init(self) -> bool:
        return self.profile.lazy_init

    def printk(self, text: str, level: int = KERN_INFO) -> None:
        self.log.printk(text, level)

    def dmesg(self) -> str:
        return self.log.text()

    # -- pseudo files -----------------------------------------------------------
    def read(self, path: str) -> str:
        return self.vfs.read(path)

    def write(self, path: str, text: str) -> None:
        self.vfs.write(path, text)

    def debugfs_counters(self, directory: str, counters: Callable[[], Any]) -> None:
        """One read-only debugfs file per counter, reading the live value."""
        base = f"/sys/kernel/debug/{directory}"
        self.vfs.mkdir(base)
        for name, _ in counters().items():
            self.vfs.add_file(f"{base}/{name}", _counter_reader(counters, name), mode=0o444)

    def _core_files(self) -> None:
        v = self.vfs
        v.add_file("/proc/cmdline", lambda: self.saved_command_line + "\n")
        v.add_file("/proc/uptime", self._proc_uptime)
        v.add_file("/proc/version", lambda: f"Linux version {self.release} (kmodemu) #1 SMP\n")
        v.add_file("/proc/modules", self.modules.proc_modules)
        v.add_file("/proc/sys/kernel/tainted", lambda: f"{self.taint.mask}\n")
        v.add_file("/proc/sys/kernel/randomize_va_space", lambda: f"{self.randomize_va_space}\n",
                   self._set_randomize_va_space, 0o644)
        panic = self.core_params["panic"]
        v.add_file("/proc/sys/kernel/panic", lambda: f"{panic.value}\n", self._set_panic, 0o644)
        v.add_file("/sys/module/kernel/parameters/panic", panic.get, self._write_core_param(panic),
                   0o644)
        v.add_file("/proc/sys/kernel/modprobe", lambda: self.modprobe_path + "\n",
                   self._set_modprobe_path, 0o644)
        v.add_file("/proc/1/cmdline", lambda: "".join(a + "\0" for a in self._init_argv()))
        v.add_file("/proc/1/environ", lambda: "".join(e + "\0" for e in self._init_envp()))
        v.mkdir("/sys/kernel/debug")
        v.mkdir("/sys/module")

    def _proc_uptime(self) -> str:
        """Uptime and idle time in seconds with two decimals, as fs/proc/uptime.c prints them."""
        cs = self.clock.ns // 10_000_000
        return f"{cs // 100}.{cs % 100:02d} {cs // 100}.{cs % 100:02d}\n"

    def _set_randomize_va_space(self, text: str) -> None:
        # proc_dointvec: an optionally signed decimal, no range check in 3.10
        word = text.strip()
        body = word[1:] if word[:1] in "+-" else word
        if not body.isdigit() or not body.isascii():
            raise KernelError(errno.EINVAL)
        self.randomize_va_space = int(word)

    def _set_panic(self, text: str) -> None:
        word = text.strip()  # proc_dointvec, as randomize_va_space
        body = word[1:] if word[:1] in "+-" else word
        if not body.isdigit() or not body.isascii() or not -2**31 <= int(word) < 2**31:
            raise KernelError(errno.EINVAL)
        self.core_params["panic"].value = int(word)

    def _write_core_param(self, param: Param) -> Callable[[str], None]:
        def write(text: str) -> None:
            param.write_sysfs(text, lambda m: self.printk(m, KERN_ERR), self._taint_unsafe)
        return write

    def _taint_unsafe(self) -> None:
        self.taint.add("U")

    def _set_modprobe_path(self, text: str) -> None:
        self.modprobe_path = text.rstrip("\n")

    def _init_argv(self) -> list[str]:
        if self.init_args is None:
            return []
        prog = self.init_args.init or "/sbin/init"
        return [prog, *self.init_args.argv[1:]]

    def _init_envp(self) -> list[str]:
        return list(self.init_args.envp) if self.init_args else []

    # -- boot -------------------------------------------------------------------
    def _core_early(self) -> dict[str, Callable[[str | None], int]]:
        def mem(value: str | None) -> int:
            if not value:
                return -errno.EINVAL
            try:
                size = memparse(value)
            except ValueError:
                return -errno.EINVAL
            if size == 0 or size > MAX_MEM:  # parse_memopt: 0 is -EINVAL; past the physmem limit too
                return -errno.EINVAL
            self.mem_bytes = max(size, MIN_MEM)
            return 0

        def loglevel(value: str | None) -> int:
            if value is None or not value.isdigit():
                return -errno.EINVAL
            self.loglevel = int(value)
            return 0

        def quiet(_v: str | None) -> int:
            self.loglevel = 4
            return 0

        def debug(_v: str | None) -> int:
            self.loglevel = 10
            return 0

        def accept(_v: str | None) -> int:
            return 0

        return {"mem": mem, "loglevel": loglevel, "quiet": quiet, "debug": debug,
                "earlyprintk": accept, "ignore_loglevel": accept, "log_buf_len": accept,
                "nokaslr": accept}

    def _core_setup(self) -> list[tuple[str, Callable[[str], int] | None]]:
        def flag(rest: str) -> int:  # "ro", "rw", "rootwait": a bare word only
            return 0 if rest else 1

        def value(rest: str) -> int:
            return 1

        def module_blacklist(rest: str) -> int:
            self.modules.blacklist.update(module_name(x) for x in rest.split(",") if x)
            return 1

        def disable_randmaps(rest: str) -> int:
            # mm/memory.c: __setup("norandmaps", ...) ignores what follows, so by
            # obsolete_checksetup's prefix match "norandmapsXYZ" is consumed too
            self.randomize_va_space = 0
            return 1

        def nomodule(rest: str) -> int:
            if rest:
                return 0
            self.modules.modules_disabled = True
            return 1

        return [("console=", value), ("root=", value), ("rootfstype=", value),
                ("rootwait", flag), ("ro", flag), ("rw", flag),
                ("norandmaps", disable_randmaps), ("module_blacklist=", module_blacklist),
                ("nomodule", nomodule)]

    def boot(self) -> None:
        """Run start_kernel's phases. Raises ``KernelError`` if the kernel panics."""
        if self.booted:
            raise RuntimeError("kernel already booted")
        self.printk(f"Linux version {self.release} (kmodemu) #1 SMP", KERN_NOTICE)
        self.printk(f"Kernel command line: {self.saved_command_line}", KERN_NOTICE)

        builtins: list = []
        for name in self.builtin_names:
            decl = self.registry.get(name) if self.registry else None
            if decl is None:
                raise ValueError(f"built-in module {name!r} is not a known module")
            builtins.append(self.modules.add_builtin(decl))

        setup = list(self._core_setup())
        early = dict(self._core_early())
        early.update(self.faults.boot_params())
        for mod in builtins:
            for bp in mod.decl.boot_params:
                if bp.handler is None:
                    if not bp.early:
                        setup.append((bp.name, None))
                elif bp.early:
                    early[bp.name] = _bind_handler(bp.handler, mod.ctx)
                else:
                    setup.append((bp.name, _bind_handler(bp.handler, mod.ctx)))

        def lookup(pname: str):
            if "." not in pname:  # a core_param: no module prefix (kernel/params.c)
                return next((p for key, p in self.core_params.items()
                             if key.replace("-", "_") == pname.replace("-", "_")), None)
            mname, _, param = pname.partition(".")
            mod = self.modules.builtin.get(module_name(mname))
            if mod is None:
                return None
            for key, p in mod.params.items():
                if key.replace("-", "_") == param.replace("-", "_"):
                    return p
            return None

        args = parse_boot_cmdline(self.saved_command_line, early=early, setup=setup, params=lookup)
        self.init_args = args
        for line in args.messages:
            self.printk(line, KERN_WARNING if "invalid" in line or "Unknown" in line else KERN_NOTICE)
        for mod in builtins:  # module_param values set at boot
            if mod.ctx is not None:
                for pname, p in mod.params.items():
                    setattr(mod.ctx.params, pname, p.value)

        self.printk(f"Memory: {self.mem_bytes >> 10}K available", KERN_INFO)
        self._attach_mm()
        if args.panic:
            self.panic_message = args.panic
            self.printk(f"Kernel panic - not syncing: {args.panic}", KERN_EMERG)
            timeout = self.core_params["panic"].value
            if timeout > 0:  # panic(): the reboot that panic_timeout asks for
                self.printk(f"Rebooting in {timeout} seconds..", KERN_EMERG)
            raise KernelError(errno.EINVAL, f"Kernel panic - not syncing: {args.panic}")

        for level in INITCALL_LEVELS:
            for mod in builtins:
                if mod.decl.initcall != level or mod.decl.init is None:
                    continue
                self.clock.advance_us(1000)
                try:
                    ret = mod.decl.init(mod.ctx) or 0
                except Exception as e:
                    ret = self.modules.oops(mod.name, "initcall", e)
                if ret < 0:
                    self.printk(f"initcall {mod.name}_init returned {ret}", KERN_WARNING)
                self.hook.kmodemu_module_loaded(kernel=self, module=mod)
        self.clock.advance_us(250_000)
        prog = args.init or args.rdinit or "/sbin/init"
        self.printk(f"Run {prog} as init process", KERN_INFO)
        self.booted = True
        self.hook.kmodemu_boot_done(kernel=self)

    def _attach_mm(self) -> None:
        attach_mm(self)

    def shutdown(self) -> None:
        """The machine stops running this kernel: drivers close sockets, stop threads."""
        hooks, self.shutdown_hooks = self.shutdown_hooks, []
        for hook in reversed(hooks):
            hook()

    # -- services to modules ----------------------------------------------------
    def request_module(self, name: str) -> int:
        """``request_module``: run modprobe for a name; the result is modprobe's status."""
        if len(name) >= MODULE_NAME_LEN:
            return -errno.ENAMETOOLONG
        if not self.modprobe_path or self.usermodehelper_modprobe is None:
            return -errno.ENOENT
        return self.usermodehelper_modprobe(["-q", "--", name])

    def load_module(self, decl: ModuleDecl, args: str = "") -> Module:
        return self.modules.load(decl, args)

    def module_context(self, name: str) -> ModuleContext | None:
        mod = self.modules.get(name) or self.modules.builtin.get(module_name(name))
        return mod.ctx if mod else None


def _counter_reader(counters: Callable[[], Any], name: str) -> Callable[[], str]:
    """A debugfs read of one counter: the live value each time the file is read."""
    return lambda: f"{dict(counters().items())[name]}\n"


def _bind_handler(handler: Callable[[Any, Any], int], ctx: Any) -> Callable[[Any], int]:
    """A built-in's boot-parameter handler called with its module's context, as the
    command-line parser calls a ``__setup``/``early_param`` function."""
    return lambda value: handler(value, ctx)
