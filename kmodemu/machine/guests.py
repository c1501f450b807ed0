"""Sub-machines a running machine owns: the hook a Xen host fills with its guests.

A Xen host is one machine process holding several guest kernels. The CLI
addresses one as ``--machine HOST/GUEST``; the machine process routes that
command to ``machine.guests.get(GUEST)``. Whoever creates a guest (an
``xl create`` console command, which reaches the host machine through
``machine_of(ctx)``) registers an object with a ``run(argv, stdout=, stderr=)``
method returning the exit status (a ``Machine`` is one) and unregisters it when
the guest is destroyed. ``Domain-0`` is the host itself and is never registered.
What a guest's commands change is the registrant's to journal (a host's journal
replays its own commands, ``xl create`` included, which re-creates the guests).
"""

from __future__ import annotations

from typing import IO, Protocol, Sequence

DOM0 = "Domain-0"


class Guest(Protocol):
    def run(self, argv: Sequence[str], *, stdout: IO[str] | None = None,
            stderr: IO[str] | None = None) -> int: ...


class GuestRegistry:
    """Named guests of one host machine (no global state: each machine has its own)."""

    def __init__(self) -> None:
        self._guests: dict[str, Guest] = {}

    def register(self, name: str, guest: Guest) -> None:
        if not name or "/" in name or name == DOM0:
            raise ValueError(f"invalid guest name {name!r}")
        if name in self._guests:
            raise ValueError(f"guest {name!r} exists")
        self._guests[name] = guest

    def unregister(self, name: str) -> None:
        self._guests.pop(name, None)

    def get(self, name: str) -> Guest | None:
        return self._guests.get(name)

    def names(self) -> list[str]:
        return sorted(self._guests)
