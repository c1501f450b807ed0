"""``kmodemu shell``: type console commands at a prompt; ``--record FILE`` keeps the
session as a scenario that replays it.

Command lines run through the same ``Session`` as scenarios (pipes to grep/head,
``echo … > /sys/…``, ``cat > FILE <<EOF``), so a recorded session replays
exactly. Lines starting with ``#`` are kept in the recording as comments.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Protocol, Sequence, TextIO

from kmodemu.machine import Machine, MachineDef
from kmodemu.machine.journal import Entry
from kmodemu.scenario.format import _HEREDOC, render
from kmodemu.scenario.lines import ERR, render_block
from kmodemu.scenario.session import Session

PROMPT, CONTINUE = "kmodemu# ", "> "
HISTORY_FILE = ".history"


def _load_history(machine: "ShellMachine") -> None:
    """Line editing, and a history kept beside the machine's image (like ~/.bash_history)."""
    try:
        import atexit
        import readline
    except ImportError:  # pragma: no cover
        return
    if machine.path is None:
        return
    hist = Path(machine.path) / HISTORY_FILE
    try:
        readline.read_history_file(hist)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(lambda: _save_history(readline, hist))


def _complete_with_readline(machine) -> None:
    """TAB completes as in bash (kmodemu.completion), asking the machine's directory and process."""
    if machine.path is None:
        return
    from kmodemu.completion import MachineFacts, install_readline
    from kmodemu.console import console
    install_readline(MachineFacts(Path(machine.path), getattr(machine, "target", None)),
                     [*console.commands, "exit"])


def _save_history(readline, hist: Path) -> None:
    try:
        readline.write_history_file(hist)
    except OSError:  # pragma: no cover
        pass


class ShellMachine(Protocol):
    """What the shell needs of a machine: an in-process ``Machine`` or a running one's
    ``RemoteMachine`` (the console's ``root`` and ``run``, the image's definition and journal)."""

    @property
    def path(self) -> Path | None: ...

    @property
    def root(self) -> Path: ...

    @property
    def definition(self) -> MachineDef: ...

    @property
    def journal(self) -> list[Entry]: ...

    def run(self, argv: Sequence[str], *, stdout: TextIO | None = None,
            stderr: TextIO | None = None) -> int:
        ...


def run_shell(machine: ShellMachine, record: Path | None = None, *, stdin: TextIO | None = None,
              stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Read command lines until EOF or ``exit``; return the last command's status."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if record is not None and Path(record).exists():
        stderr.write(f"kmodemu: {record}: file exists; not overwriting it\n")
        return 1
    interactive = stdin.isatty() and stdout.isatty()
    if interactive:
        _load_history(machine)
        _complete_with_readline(machine)
    prior = list(machine.journal)
    session = Session(machine)
    steps: list[tuple[str | None, str | None, list[str]]] = []
    rc = 0

    def read(prompt: str) -> str | None:
        if interactive:
            try:
                return input(prompt)
            except EOFError:
                stdout.write("\n")
                return None
        line = stdin.readline()
        return line.rstrip("\n") if line else None

    try:
        while True:
            try:
                line = read(PROMPT)
            except KeyboardInterrupt:
                stdout.write("^C\n")
                continue
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                steps.append((None, line[1:].strip(), []))
                continue
            if line in ("exit", "quit", "logout"):
                break
            body = None
            m = _HEREDOC.search(line)
            if m:
                lines = []
                while (more := read(CONTINUE)) is not None and more != m.group(2):
                    lines.append(more)
                body = "".join(x + "\n" for x in lines)
            try:
                outcome = session.run(line, stdin=body)
            except Exception as e:  # an emulator bug: report it, keep the shell alive
                stderr.write(f"kmodemu: internal error: {type(e).__name__}: {e}\n")
                steps.append((None, f"(not recorded: '{line}' raised {type(e).__name__})", []))
                rc = 1
                continue
            for out in outcome.lines:
                (stderr if out.stream == ERR else stdout).write(out.text + ("\n" if out.eol else ""))
            stdout.flush()
            rc = outcome.rc
            steps.append((line, body, render_block(outcome.transcript())))
    except KeyboardInterrupt:
        rc = 130
    if record is not None:
        _write_recording(Path(record), machine, prior, steps, stderr)
    return rc


def _write_recording(path: Path, machine: ShellMachine, prior: list[Entry],
                     steps: list, stderr: TextIO) -> None:
    comments = ["Recorded with 'kmodemu shell --record'."]
    before: list = []
    if prior:
        before = [(None, "commands this machine ran before the session:", [])]
        before += _replay(machine.definition, prior)
        before.append((None, "the session:", []))
    text = render(machine.definition, before + steps, comments=comments,
                  base=path.parent.resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        stderr.write(f"kmodemu: {path}: file appeared meanwhile; not overwriting it\n")
        return
    _check(path, stderr)


def _replay(definition: MachineDef, journal: list[Entry]) -> list:
    """The earlier commands with their output, from a fresh boot (the kernel is deterministic).

    A journal entry kept as data (a ``modprobe``'s effect, a command that took host files)
    is recorded as its command line, which the scenario runs again; wall-clock entries of a
    ``--clock real`` machine have no command and are left out."""
    fresh = Machine(definition)
    try:
        session = Session(fresh)
        steps = []
        for entry in journal:
            argv = entry if isinstance(entry, list) else entry.get("argv")
            if argv is None:
                continue
            line = shlex.join(argv)
            steps.append((line, None, render_block(session.run(line).transcript())))
        return steps
    finally:
        fresh.close()


def _check(path: Path, stderr: TextIO) -> None:
    """Warn when the recording does not replay (e.g. files changed on the host meanwhile)."""
    from kmodemu.scenario import PASS, load, run_scenario

    result = run_scenario(load(path))
    if result.status != PASS:
        stderr.write(f"kmodemu: warning: {path} does not replay as recorded "
                     f"({result.reason}); check it with 'kmodemu run {path}'\n")
