"""KTAP output (Documentation/dev-tools/ktap.rst): what kernel people's tools parse.

One test per scenario; the diff and other details are ``# `` diagnostic lines.
"""

from __future__ import annotations

from typing import TextIO

from kmodemu.scenario.runner import ERROR, FAIL, PASS, SKIP


class KtapWriter:
    """Writes a KTAP version 1 document, one result at a time."""

    def __init__(self, out: TextIO):
        self.out = out
        self.number = 0

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, count: int) -> None:
        self._line("KTAP version 1")
        self._line(f"1..{count}")

    def diagnostic(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self._line("#" + (" " + line if line else ""))

    def subtests(self, steps) -> None:
        """Each command as a nested test (``-v``): KTAP subtests, indented two spaces."""
        self._line("  KTAP version 1")
        self._line(f"  1..{len(steps)}")
        for i, step in enumerate(steps, 1):
            name = f"line {step.lineno}: $ {step.command}".replace("#", "\\#")
            if step.status == "NOT_RUN":
                self._line(f"  ok {i} {name} # SKIP not run")
            else:
                self._line(f"  {'ok' if step.status == PASS else 'not ok'} {i} {name}")

    def result(self, name: str, status: str, *, reason: str | None = None,
               details: str = "") -> None:
        self.number += 1
        if details:
            self.diagnostic(details)
        if status == PASS:
            self._line(f"ok {self.number} {name}")
        elif status == SKIP:
            self._line(f"ok {self.number} {name} # SKIP {reason or ''}".rstrip())
        elif status == ERROR:
            first = (reason or "error").splitlines()[0]
            self._line(f"not ok {self.number} {name} # ERROR {first}")
        else:
            self._line(f"not ok {self.number} {name}")

    def totals(self, counts: dict[str, int]) -> None:
        self._line(f"# Totals: pass:{counts.get(PASS, 0)} fail:{counts.get(FAIL, 0)} "
                   f"skip:{counts.get(SKIP, 0)} error:{counts.get(ERROR, 0)}")


class TextWriter(KtapWriter):
    """A plain summary for people: ``PASS name``, the diff indented on failure."""

    def header(self, count: int) -> None:
        pass

    def subtests(self, steps) -> None:
        for step in steps:
            if step.status != PASS:
                self._line(f"    {step.status:<7} line {step.lineno}: $ {step.command}")

    def diagnostic(self, text: str) -> None:
        for line in text.splitlines():
            self._line("    " + line)

    def result(self, name, status, *, reason=None, details=""):
        self.number += 1
        suffix = f" ({reason.splitlines()[0]})" if reason and status in (SKIP, ERROR) else ""
        self._line(f"{status:<5} {name}{suffix}")
        if details:
            self.diagnostic(details)

    def totals(self, counts):
        self._line(f"{counts.get(PASS, 0)} passed, {counts.get(FAIL, 0)} failed, "
                   f"{counts.get(SKIP, 0)} skipped, {counts.get(ERROR, 0)} errors")
