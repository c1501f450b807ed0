"""Machines: a kernel plus its disk (module tree, modprobe.d) that persists between commands.

Names load on first use, so the CLI's client side (``client``, ``protocol``)
starts without importing the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.machine.definition import MachineDef
    from kmodemu.machine.machine import Machine, MachineError

__all__ = ["Machine", "MachineDef", "MachineError"]


def __getattr__(name: str) -> Any:
    if name == "MachineDef":
        from kmodemu.machine.definition import MachineDef
        return MachineDef
    if name in ("Machine", "MachineError"):
        from kmodemu.machine import machine
        return getattr(machine, name)
    raise AttributeError(name)
