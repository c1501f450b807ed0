"""A machine driven through its console, as a user drives it, for the unloading tests."""

from __future__ import annotations

import io

from kmodemu.machine import Machine


class Console:
    """``con("rmmod", "zcache", rc=1)`` runs one command and checks its exit status."""

    def __init__(self, m: Machine):
        self.m = m
        self.err = ""

    def __call__(self, *argv: str, rc: int = 0) -> str:
        out, err = io.StringIO(), io.StringIO()
        got = self.m.run(list(argv), stdout=out, stderr=err, save=False)
        self.err = err.getvalue()
        assert got == rc, (argv, got, out.getvalue(), self.err)
        return out.getvalue()

    def log(self) -> list[str]:
        """dmesg without timestamps."""
        return [line.split("] ", 1)[1] for line in self("dmesg").splitlines()]

    def num(self, path: str) -> int:
        return int(self("cat", path))


def sha(con: Console, name: str) -> str:
    """The sha256 of a process's pages, read back through the swap path (``touch-anon``)."""
    out = con("touch-anon", name, "--sha256")
    return out.splitlines()[-1].split()[0]


def swapping_into(con: Console, module: str, seed: int, *, size: str = "80M") -> str:
    """A swap device, ``module`` loaded, and a process bigger than RAM: its sha256."""
    con("mkswap", "/dev/sdb", "128M")
    con("swapon", "/dev/sdb")
    con("insmod", module)
    con("alloc", "p", size, "--content", "mixed", "--seed", str(seed))
    return sha(con, "p")
