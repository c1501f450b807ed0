"""Taint flags: the letters ``/proc/sys/kernel/tainted`` and /proc/modules show."""

from __future__ import annotations

# (bit, letter when set, name) in the kernel's order
TAINT_FLAGS = (
    (0, "P", "PROPRIETARY_MODULE"),
    (1, "F", "FORCED_MODULE"),
    (2, "S", "CPU_OUT_OF_SPEC"),
    (3, "R", "FORCED_RMMOD"),
    (4, "M", "MACHINE_CHECK"),
    (5, "B", "BAD_PAGE"),
    (6, "U", "USER"),
    (7, "D", "DIE"),
    (8, "A", "OVERRIDDEN_ACPI_TABLE"),
    (9, "W", "WARN"),
    (10, "C", "CRAP"),
    (11, "I", "FIRMWARE_WORKAROUND"),
    (12, "O", "OOT_MODULE"),
    (13, "E", "UNSIGNED_MODULE"),
    (14, "L", "SOFTLOCKUP"),
    (15, "K", "LIVEPATCH"),
    (16, "X", "AUX"),
    (17, "T", "RANDSTRUCT"),
)
BIT_OF = {letter: bit for bit, letter, _ in TAINT_FLAGS}


class Taint:
    """A taint mask; module taints are a second Taint on each module."""

    __slots__ = ("mask",)

    def __init__(self, mask: int = 0):
        self.mask = mask

    def add(self, letter: str) -> bool:
        """Set a flag; return True if it was not set before."""
        bit = 1 << BIT_OF[letter]
        new = not self.mask & bit
        self.mask |= bit
        return new

    def __contains__(self, letter: str) -> bool:
        return bool(self.mask & (1 << BIT_OF[letter]))

    def letters(self) -> str:
        """Set letters in kernel order, as in ``(OE)`` after a module name."""
        return "".join(letter for bit, letter, _ in TAINT_FLAGS if self.mask & (1 << bit))

    def banner(self) -> str:
        """The ``Tainted: G        W`` form of oops headers: one column per flag."""
        if not self.mask:
            return "Not tainted"
        cols = []
        for bit, letter, _ in TAINT_FLAGS:
            if bit == 0:
                cols.append("P" if self.mask & 1 else "G")
            else:
                cols.append(letter if self.mask & (1 << bit) else " ")
        return "Tainted: " + "".join(cols)
