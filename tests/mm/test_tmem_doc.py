"""The transcripts in docs/tmem.md are what kmodemu prints.

Every ``console`` block is replayed in order: ``kmodemu boot`` starts a new
machine with the options given, every other ``kmodemu`` line runs through the
same session as ``kmodemu shell`` (pipes to grep included), and its output
must match the lines under it. In-process rather than one process per line:
a persistent machine replays its journal to the same state, so the output is
the same, and this keeps the test fast.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario.session import Session

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "tmem.md"


def steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$ `` line of every console block."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line.rstrip())
    return out


def boot(argv: list[str]) -> tuple[Machine, str]:
    opts = {"profile": "3.10", "builtin": [], "cmdline": "", "module_path": []}
    it = iter(argv)
    for a in it:
        if a in ("--profile", "--cmdline"):
            opts[a[2:]] = next(it)
        elif a in ("--builtin", "--module-path"):
            opts[a[2:].replace("-", "_")].append(next(it) if a == "--builtin" else str(REPO / next(it)))
        else:
            assert a == "--force", a
    m = Machine(MachineDef(**opts))
    return m, f"Booted {m.kernel.release} ({opts['profile']}) in "


def test_tmem_md_transcripts_are_real():
    machines = []
    m = None
    try:
        for command, expected in steps(DOC.read_text()):
            if command.startswith("export "):
                continue
            assert command.startswith("kmodemu "), command
            words = shlex.split(command)
            if words[1] == "boot":
                m, prefix = boot(words[2:])
                machines.append(m)
                assert len(expected) == 1 and expected[0].startswith(prefix), (command, expected)
                continue
            outcome = Session(m).run(command[len("kmodemu "):])
            got = [x.text.rstrip() for x in outcome.lines]
            assert got == expected, f"$ {command}\n" + "\n".join(got)
    finally:
        for machine in machines:
            machine.close()
    assert len(machines) == 5
