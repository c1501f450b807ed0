"""What a module's code sees of the kernel: ``THIS_MODULE`` plus the kernel API it may call.

Linux gives a module the exported symbols of vmlinux and of other modules and
nothing else; here the context is that surface, typed. A backend registers
its ops through the exported-symbol table (``cleancache_register_ops`` …),
asks for RAM frames, registers shrinkers, logs, arms timers and delayed work
on the virtual clock, creates debugfs/sysfs files and reaches other modules
through their exported symbols. ``kmodemu.tmem`` re-exports this class as
the backend contract.

Everything a module creates through the context (timers, shrinkers, files)
is undone in reverse order when its init fails or it is unloaded, so a
failed load leaves the kernel as it was.

``kernel`` stays reachable for tools and tests; it is not part of the
contract, and no first-party module uses it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from kmodemu.kernel.clock import Timer
from kmodemu.kernel.printk import KERN_INFO

if TYPE_CHECKING:  # pragma: no cover - types only: the kernel and mm sit beside or above us
    from kmodemu.errors import KernelError
    from kmodemu.kernel.kernel import Kernel
    from kmodemu.mm.cleancache import CleancacheOps
    from kmodemu.mm.frames import Frames
    from kmodemu.mm.frontswap import FrontswapOps
    from kmodemu.mm.memory import Shrinker
    from kmodemu.modules.loader import Module

T = TypeVar("T")

NSEC_PER_MSEC = 1_000_000


class ModuleParams(SimpleNamespace):
    """Attribute access to a module's parameter values (``ctx.params.zcache_comp_name``)."""


class ModuleState(SimpleNamespace):
    """Untyped per-kernel scratch space of a module (examples and tests).

    Typed modules keep their state in an object of their own through
    :meth:`ModuleContext.private` instead.
    """


class DelayedWork:
    """``struct delayed_work``: a function run once on the clock, after a delay.

    ``schedule`` (``schedule_delayed_work``) arms it unless already pending,
    ``mod`` (``mod_delayed_work``) re-arms it, ``cancel``
    (``cancel_delayed_work``) disarms it; the work may re-schedule itself.
    """

    __slots__ = ("_clock", "timer")

    def __init__(self, ctx: "ModuleContext", function: Callable[[], None], name: str):
        self._clock = ctx.kernel.clock
        self.timer = Timer(function, name)

    @property
    def pending(self) -> bool:
        return self.timer.pending

    def schedule(self, delay_ns: int) -> bool:
        """Arm unless pending; False (and no change) if it already was, as Linux returns."""
        if self.timer.pending:
            return False
        self._clock.mod_timer(self.timer, self._clock.ns + delay_ns)
        return True

    def mod(self, delay_ns: int) -> bool:
        """Re-arm for ``delay_ns`` from now; True if it was pending."""
        return self._clock.mod_timer(self.timer, self._clock.ns + delay_ns)

    def cancel(self) -> bool:
        return self._clock.del_timer(self.timer)


class ModuleContext:
    """One module's view of one kernel (``THIS_MODULE`` and the API), never a global."""

    def __init__(self, kernel: "Kernel", module: "Module"):
        self.kernel = kernel
        self.module = module
        self.name = module.name
        self.builtin = module.builtin
        self.params = ModuleParams(**{n: p.value for n, p in module.params.items()})
        self.state = ModuleState()
        self._private: dict[type, Any] = {}
        self._cleanups: list[Callable[[], object]] = []

    # -- THIS_MODULE ------------------------------------------------------------------
    def private(self, cls: type[T]) -> T:
        """This module's typed state on this kernel (Linux's file-static variables).

        The first call with a class creates the object (``cls()``, so every
        field needs a default); later calls with the same class return it.
        """
        obj = self._private.get(cls)
        if obj is None:
            obj = self._private[cls] = cls()
        return obj  # type: ignore[no-any-return]

    def on_cleanup(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` when init fails or the module is unloaded (newest first; its result is ignored)."""
        self._cleanups.append(fn)

    def run_cleanups(self) -> None:
        while self._cleanups:
            self._cleanups.pop()()

    # -- printk -----------------------------------------------------------------------
    def printk(self, text: str, level: int = KERN_INFO) -> None:
        self.kernel.printk(text, level)

    # -- symbols: how one module reaches another (and vmlinux) -------------------------
    def export(self, symbol: str, value: Any) -> None:
        """Bind the value of a symbol the declaration exports (``EXPORT_SYMBOL``)."""
        if symbol not in self.module.decl.exports:
            raise ValueError(f"{self.name}: {symbol} is not in the declaration's exports")
        self.module.symbols[symbol] = value

    def symbol_value(self, symbol: str) -> Any:
        """The value of a symbol resolved at load (a ``requires`` entry), or None."""
        return self.kernel.modules.symbol_value(symbol)

    def symbol_get(self, symbol: str) -> Any:
        """``symbol_get``: the value and a reference on its owner, or None."""
        return self.kernel.modules.symbol_get(symbol)

    def symbol_put(self, symbol: str) -> None:
        self.kernel.modules.symbol_put(symbol)

    def request_module(self, name: str) -> int:
        """``request_module``: modprobe's exit status (0), or a negative errno."""
        return self.kernel.request_module(name)

    # -- the tmem frontends, through the symbols vmlinux exports ------------------------
    def _frontend_symbol(self, symbol: str) -> Callable[..., Any]:
        fn = self.symbol_value(symbol)
        if fn is None:
            raise LookupError(f"{self.name}: kernel does not export {symbol}")
        return fn  # type: ignore[no-any-return]

    def cleancache_register_ops(self, ops: "CleancacheOps") -> "CleancacheOps | None":
        """``cleancache_register_ops``: replays lazy init (3.10); returns the ops replaced."""
        return self._frontend_symbol("cleancache_register_ops")(ops)  # type: ignore[no-any-return]

    def frontswap_register_ops(self, ops: "FrontswapOps") -> "FrontswapOps | KernelError | None":
        """``frontswap_register_ops``: the ops replaced, None, or a ``KernelError`` (ERR_PTR)."""
        return self._frontend_symbol("frontswap_register_ops")(ops)  # type: ignore[no-any-return]

    def cleancache_unregister_ops(self, ops: "CleancacheOps") -> int:
        """``cleancache_unregister_ops`` (profile 3.10-unload only): 0 or -EINVAL."""
        return self._frontend_symbol("cleancache_unregister_ops")(ops)  # type: ignore[no-any-return]

    def frontswap_unregister_ops(self, ops: "FrontswapOps") -> int:
        """``frontswap_unregister_ops`` (profile 3.10-unload only): persistent pages are
        written back to their swap slots first; 0, -EBUSY (nothing changed) or -EIO."""
        return self._frontend_symbol("frontswap_unregister_ops")(ops)  # type: ignore[no-any-return]

    def frontswap_tmem_exclusive_gets(self, enable: bool) -> None:
        self._frontend_symbol("frontswap_tmem_exclusive_gets")(enable)

    def frontswap_writethrough(self, enable: bool) -> None:
        self._frontend_symbol("frontswap_writethrough")(enable)

    @property
    def cleancache_has_lazy_init(self) -> bool:
        """``CLEANCACHE_HAS_LAZY_INIT``: defined by the patchset (3.10), absent before."""
        return self.kernel.cleancache.CLEANCACHE_HAS_LAZY_INIT

    @property
    def frontswap_has_lazy_init(self) -> bool:
        """``FRONTSWAP_HAS_LAZY_INIT``."""
        return self.kernel.frontswap.FRONTSWAP_HAS_LAZY_INIT

    @property
    def kernel_has_ramster(self) -> bool:
        """Is ramster configured built in (``CONFIG_RAMSTER=y``)?"""
        return "ramster" in self.kernel.builtin_names

    def module_available(self, name: str) -> bool:
        """Does the machine's module tree know ``name`` (something modprobe could load)?"""
        reg = self.kernel.registry
        return reg is not None and reg.get(name) is not None

    def module_live(self, name: str) -> bool:
        """Is module ``name`` loaded (or built in)?"""
        return (self.kernel.modules.get(name) is not None
                or self.kernel.modules.is_builtin(name))

    # -- fault injection ---------------------------------------------------------------
    def fault_point(self, name: str) -> Callable[[int], bool]:
        """``should_fail`` of a fault point (lib/fault-inject.c): a backend asks it where
        Linux's would fail (a compressor's error, a peer's, the hypervisor's)."""
        return self.kernel.faults.points[name].should_fail

    # -- memory ------------------------------------------------------------------------
    @property
    def frames(self) -> "Frames":
        """RAM frames: ``alloc() -> pfn | None`` (no reclaim, no retry) and ``free(pfn)``."""
        return self.kernel.mm.frames

    def register_shrinker(self, shrinker: "Shrinker") -> None:
        """``register_shrinker``: reclaim calls ``shrinker(n)``; unregistered at cleanup."""
        mm = self.kernel.mm
        mm.register_shrinker(shrinker)
        self.on_cleanup(lambda: mm.unregister_shrinker(shrinker))

    def lru_sizes(self) -> tuple[int, int, int, int]:
        """(active file, inactive file, active anon, inactive anon) pages now."""
        return self.kernel.mm.lru_sizes()

    # -- time: the kernel's virtual clock ----------------------------------------------
    @property
    def now_ns(self) -> int:
        """Nanoseconds since boot on the virtual clock."""
        return self.kernel.clock.ns

    def add_timer(self, function: Callable[[], None], delay_ns: int, name: str = "") -> Timer:
        """A one-shot timer ``delay_ns`` from now; deleted at cleanup if still pending."""
        clock = self.kernel.clock
        timer = clock.add_timer(function, delay_ns, name or f"{self.name}:timer")
        self.on_cleanup(lambda: clock.del_timer(timer))
        return timer

    def mod_timer(self, timer: Timer, expires_ns: int) -> bool:
        """Re-arm ``timer`` for absolute time ``expires_ns``; True if it was pending."""
        return self.kernel.clock.mod_timer(timer, expires_ns)

    def del_timer(self, timer: Timer) -> bool:
        return self.kernel.clock.del_timer(timer)

    def delayed_work(self, function: Callable[[], None], name: str = "") -> DelayedWork:
        """``INIT_DELAYED_WORK``: cancelled at cleanup."""
        work = DelayedWork(self, function, name or f"{self.name}:work")
        self.on_cleanup(work.cancel)
        return work

    # -- pseudo files ------------------------------------------------------------------
    def debugfs(self, directory: str, counters: Callable[[], Any]) -> None:
        """Publish ``counters().items()`` as read-only files under /sys/kernel/debug/<dir>/."""
        self.kernel.debugfs_counters(directory, counters)
        self.on_cleanup(lambda: self.kernel.vfs.remove(f"/sys/kernel/debug/{directory}"))

    def debugfs_create_file(self, path: str, read: Callable[[], str] | None,
                            write: Callable[[str], None] | None = None,
                            mode: int | None = None) -> None:
        """One file under /sys/kernel/debug/ (``path`` relative to it); removed at cleanup."""
        self._create_file(f"/sys/kernel/debug/{path.lstrip('/')}", read, write, mode)

    def sysfs_create_file(self, path: str, read: Callable[[], str] | None,
                          write: Callable[[str], None] | None = None,
                          mode: int | None = None) -> None:
        """One file under /sys/ (``path`` relative to it, e.g. ``kernel/mm/ramster/x``)."""
        self._create_file(f"/sys/{path.lstrip('/')}", read, write, mode)

    def _create_file(self, full: str, read: Callable[[], str] | None,
                     write: Callable[[str], None] | None, mode: int | None) -> None:
        vfs = self.kernel.vfs
        vfs.add_file(full, read, write, mode)
        self.on_cleanup(lambda: vfs.remove(full))
