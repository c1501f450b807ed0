"""Fault injection in the shape of Linux's lib/fault-inject.c.

Each ``FaultAttr`` is one fault point with the debugfs knobs of
Documentation/fault-injection: ``probability`` (percent), ``interval``,
``times`` (-1: no limit), ``space`` and ``verbose``, decided by
``should_fail(size)`` in the kernel's order. Randomness comes from a
generator seeded from the kernel's seed, so a run with faults is as
reproducible as one without.

Fault points (``kernel.faults``):

Linux builds the debugfs knobs with CONFIG_FAULT_INJECTION_DEBUG_FS; kmodemu's
kernel shows a point's directory only when its boot parameter names it
(``fail_page_alloc=1,0,0,-1`` shows the knobs, armed with nothing), so the
default /sys/kernel/debug is that of a kernel built without fault injection.

- ``fail_page_alloc``: the RAM frame allocator tmem backends take storage
  from (``kernel.mm.frames.alloc``). Wired.
- ``fail_module_init``: a module's init that fails after it ran (a kmodemu
  point, like Linux's fail_function on ``do_one_initcall``): the loader unwinds
  what the module registered through its context and the load fails with
  ``retval`` (default -ENOMEM). Wired.
- ``fail_compress``: zcache's compressor returning an error on a put (the put
  is refused: a failed frontswap store goes to the swap device, a cleancache
  put is a later miss). Wired, through ``ModuleContext.fault_point``.
- ``fail_peer``: a ramster peer dying with a message in flight: an r2net send
  on a valid link returns -EHOSTDOWN (what a sender waiting for its reply gets
  when the link dies, R2NET_ERR_DIED), the message never reaches the peer and
  the link stays up. Wired, through ``ModuleContext.fault_point`` (zcache hands
  it to RAMster at ramster_init).
- ``fail_hypervisor``: the Xen hypervisor out of memory for this kernel's
  domain: tmem's frame and sub-page allocations for the domain's puts fail
  (-ENOMEM, Pf/Af, or a duplicate put's -ENOSPC), so the shim falls back — a
  frontswap store goes to swap, a cleancache put is dropped. Wired, by
  ``kmodemu.xen.platform.attach`` into ``Domain.fail_hypervisor``.
"""

from __future__ import annotations

import errno
import random
from typing import TYPE_CHECKING

from kmodemu.errors import KernelError
from kmodemu.kernel.printk import KERN_NOTICE

if TYPE_CHECKING:
    from kmodemu.kernel.kernel import Kernel

WIRED = ("fail_page_alloc", "fail_module_init", "fail_compress", "fail_peer",
         "fail_hypervisor")
NOT_WIRED: tuple[str, ...] = ()


class FaultAttr:
    """``struct fault_attr``: DECLARE_FAULT_ATTR's defaults (never fails until probability is set)."""

    def __init__(self, name: str, kernel: "Kernel", rng: random.Random):
        self.name = name
        self.kernel = kernel
        self.rng = rng
        self.probability = 0
        self.interval = 1
        self.times = 1
        self.space = 0
        self.verbose = 2
        self.count = 0
        self.injected = 0  # kmodemu: how many failures were forced (debugfs "injected")
        self.retval = -errno.ENOMEM

    def should_fail(self, size: int = 1) -> bool:
        """lib/fault-inject.c ``should_fail``: an idle point (probability 0) returns at once,
        counting nothing; then times, space, interval and the probability draw."""
        if not self.probability or self.times == 0:
            return False
        if self.space > size:
            self.space -= size
            return False
        if self.interval > 1:
            self.count += 1
            if self.count % self.interval:
                return False
        if self.probability <= self.rng.getrandbits(32) % 100:
            return False
        if self.verbose > 0:
            self.kernel.printk("FAULT_INJECTION: forcing a failure", KERN_NOTICE)
        if self.times != -1:
            self.times -= 1
        self.injected += 1
        return True

    # -- debugfs ----------------------------------------------------------------
    def _knob(self, attr: str, lo: int, hi: int):
        def read() -> str:
            return f"{getattr(self, attr)}\n"

        def write(text: str) -> None:
            try:
                value = int(text.strip(), 0)
            except ValueError:
                raise KernelError(errno.EINVAL) from None
            if not lo <= value <= hi:
                raise KernelError(errno.EINVAL)
            setattr(self, attr, value)
        return read, write

    def register(self, fs) -> None:
        base = f"/sys/kernel/debug/{self.name}"
        knobs = {"probability": (0, 100), "interval": (1, 1 << 62), "times": (-1, 1 << 31),
                 "space": (0, 1 << 62), "verbose": (0, 2)}
        if self.name == "fail_module_init":
            knobs["retval"] = (-4095, -1)
        for attr, (lo, hi) in knobs.items():
            r, w = self._knob(attr, lo, hi)
            fs.add_file(f"{base}/{attr}", r, w, 0o600)
        fs.add_file(f"{base}/injected", lambda: f"{self.injected}\n")


class FaultInjection:
    """The kernel's fault points, each under /sys/kernel/debug/NAME/."""

    def __init__(self, kernel: "Kernel", seed: int):
        # its own stream: switching faults on must not change the kernel's other randomness
        rng = random.Random(f"fault-inject:{seed}")
        self.kernel = kernel
        self.points = {n: FaultAttr(n, kernel, rng) for n in WIRED + NOT_WIRED}

    def boot_params(self):
        """``NAME=interval,probability,space,times`` (setup_fault_attr); the point's debugfs
        directory appears only for points named on the command line (see module doc)."""
        def handler(point: FaultAttr):
            def setup(value: str | None) -> int:
                parts = (value or "").split(",")
                try:
                    interval, probability, space, times = (int(x) for x in parts)
                except ValueError:
                    self.kernel.printk("FAULT_INJECTION: failed to parse arguments", KERN_NOTICE)
                    return 0
                point.interval, point.probability = max(interval, 1), min(max(probability, 0), 100)
                point.space, point.times = space, times
                point.register(self.kernel.vfs)
                return 0
            return setup
        return {name: handler(p) for name, p in self.points.items()}

    def __getattr__(self, name: str) -> FaultAttr:
        points = self.__dict__.get("points", {})
        if name in points:
            return points[name]
        raise AttributeError(name)

    def should_fail(self, name: str, size: int = 1) -> bool:
        return self.points[name].should_fail(size)
