"""Machines: a kernel plus its disk (module tree, modprobe.d) that persists between commands."""

from kmodemu.machine.definition import MachineDef
from kmodemu.machine.machine import Machine, MachineError

__all__ = ["Machine", "MachineDef", "MachineError"]
