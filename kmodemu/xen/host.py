"""A Xen host as one machine: the hypervisor, dom0 (the machine's own kernel) and the guests.

``XenHost`` is what ``kmodemu boot --xen`` adds to a machine. It boots the
hypervisor with the host's memory, makes the machine's kernel dom0, and is
xl's ``GuestBuilder``: ``xl create`` builds the domain in the hypervisor and
here a guest *machine* (its own kernel, disk and memory model, booted from
the domain's config the way ``kmodemu boot`` boots one) attached to it.

A guest's commands reach it through the host (``xen-guest NAME ARGV…``, which
``--machine HOST/GUEST`` sends), so the host's journal holds everything:
replaying it re-creates the guests with ``xl create`` and redoes their
commands in order. Nothing here imports the machine package (the machine
imports us): guests are built by the ``make_guest`` callable the machine gives.
"""

from __future__ import annotations

from typing import IO, Any, Callable, Sequence

from ..errors import KernelError
from . import platform
from .domain import Domain
from .hypervisor import Hypervisor, default_dom0_bytes
from .xl import DomainConfig

#: makes a guest machine: (definition fields, platform hook) -> an object with run()/close()/kernel
MakeGuest = Callable[[dict[str, Any], Callable[[Any], None]], Any]


class GuestProxy:
    """What ``machine.guests`` holds for a guest: its commands go through the host's journal."""

    def __init__(self, host_run: Callable[..., int], name: str):
        self._host_run = host_run
        self.name = name

    def run(self, argv: Sequence[str], *, stdout: IO[str] | None = None,
            stderr: IO[str] | None = None) -> int:
        return self._host_run(["xen-guest", self.name, *argv], stdout=stdout, stderr=stderr)


class XenHost:
    """The hypervisor and the guest machines of one host machine."""

    def __init__(self, mem_bytes: int, cmdline: str, *, make_guest: MakeGuest,
                 registry: Any, host_run: Callable[..., int], seed: int = 0,
                 hostname: str = "xenhost"):
        self.hv = Hypervisor(mem_bytes, cmdline, hostname=hostname)
        self.make_guest = make_guest
        self.registry = registry         # the host machine's GuestRegistry
        self.host_run = host_run
        self.seed = seed
        self.machines: dict[str, Any] = {}

    @staticmethod
    def dom0_bytes(mem_bytes: int, cmdline: str) -> int:
        """dom0's RAM: ``dom0_mem`` or the hypervisor's default for this host size."""
        from .cmdline import parse_cmdline
        return parse_cmdline(cmdline).dom0_mem or default_dom0_bytes(mem_bytes)

    def attach_dom0(self, kernel: Any) -> None:
        platform.attach(kernel, self.hv, self.hv.dom0)
        self.hv.clock = kernel.clock

    # -- xl's GuestBuilder ---------------------------------------------------------
    def build(self, dom: Domain, cfg: DomainConfig) -> None:
        """Boot the guest kernel of ``dom``; a kernel that does not boot is a KernelError."""
        seed = cfg.raw.get("seed", self.seed)   # a guest's seed: its config's, else the host's
        try:
            seed = int(seed, 0) if isinstance(seed, str) else self.seed
        except ValueError:
            raise KernelError(22, f"seed {seed!r} is not a number") from None
        fields = {"cmdline": cfg.extra, "mem": f"{dom.tot_pages * 4}K",
                  "builtin": list(cfg.builtin), "seed": seed}
        if cfg.profile:
            fields["profile"] = cfg.profile
        try:
            def on_xen(kernel: Any) -> None:
                platform.attach(kernel, self.hv, dom)
            machine = self.make_guest(fields, on_xen)
        except KernelError:
            raise
        except ValueError as e:   # a definition that cannot boot (bad profile, unknown builtin)
            raise KernelError(22, str(e)) from None
        self.machines[dom.name] = machine
        self.registry.register(dom.name, GuestProxy(self.host_run, dom.name))

    def destroy(self, dom: Domain) -> None:
        machine = self.machines.pop(dom.name, None)
        self.registry.unregister(dom.name)
        if machine is not None:
            machine.close()

    def guest(self, name: str) -> Any:
        return self.machines.get(name)

    def close(self) -> None:
        for name in list(self.machines):
            self.machines.pop(name).close()
