"""Replay a scenario on a fresh machine and compare every command's output.

Each run boots its own ``Machine`` from the scenario's header (its own virtual
clock and seeded randomness), so a scenario gives byte-identical output however
many times, in whatever order and in whichever process it runs.
"""

from __future__ import annotations

import contextlib
import difflib
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from kmodemu.scenario.format import Scenario, ScenarioSyntaxError, load
from kmodemu.scenario.match import align
from kmodemu.scenario.session import Session
from kmodemu.scenario.timeout import DEFAULT_TIMEOUT, ScenarioTimeout, time_limit
from kmodemu.trust import UntrustedPath, confine

PASS, FAIL, SKIP, ERROR = "PASS", "FAIL", "SKIP", "ERROR"


@dataclass
class StepResult:
    command: str
    lineno: int
    status: str                 # PASS, FAIL or "NOT_RUN"
    exit_code: int | None = None


@dataclass
class ScenarioResult:
    """The outcome of one run of one scenario."""

    name: str
    path: Path | None
    status: str
    reason: str | None = None       # why it was skipped, or what went wrong
    diff: str = ""                  # unified diff: the file against its actual transcript
    actual: str | None = None       # the file as --record would write it
    steps: list[StepResult] = field(default_factory=list)
    virtual_time_ns: int = 0
    seed: int = 0

    @property
    def ok(self) -> bool:
        return self.status in (PASS, SKIP)


def available_commands() -> set[str]:
    from kmodemu.console import console

    return set(console.commands) | {"echo"}


def missing_commands(scn: Scenario) -> list[str]:
    """The commands a scenario ``requires:`` that this build does not have."""
    if not scn.requires:
        return []
    have = available_commands()
    return [c for c in scn.requires if c not in have]


def load_or_error(path: Path) -> Scenario | ScenarioResult:
    """Parse a file; a syntax error becomes an ERROR result for that file."""
    try:
        return load(path)
    except (ScenarioSyntaxError, OSError) as e:
        return ScenarioResult(path.stem, path, ERROR, reason=str(e))


def trusted_tree(scn: Scenario, trust_root: Path | None = None) -> Path:
    """The host tree a scenario may reach: the one the person running chose, else its own directory."""
    if trust_root is not None:
        return Path(trust_root).resolve()
    return scn.path.resolve().parent if scn.path is not None else Path.cwd().resolve()


def run_scenario(scn: Scenario, *, seed: int | None = None, trust_root: Path | None = None,
                 host_shell: bool = False, timeout: float | None = DEFAULT_TIMEOUT) -> ScenarioResult:
    """Boot a fresh machine, run every step, and judge the transcript.

    The machine is confined to ``trusted_tree`` (module paths, ``host:`` content,
    host paths of the kmod tools); ``host_shell`` lets modprobe.d lines reach
    the host's /bin/sh. A run longer than ``timeout`` seconds is a failure.
    """
    result = ScenarioResult(scn.name, scn.path, PASS, seed=scn.seed if seed is None else seed)
    if scn.skip is not None:
        result.status, result.reason = SKIP, scn.skip
        return result
    missing = missing_commands(scn)
    if missing:
        result.status = SKIP
        result.reason = f"requires command(s) not available here: {', '.join(missing)}"
        return result
    tree = trusted_tree(scn, trust_root)
    for mp in scn.module_path:
        try:
            confine(mp, tree)
        except UntrustedPath:
            result.status = ERROR
            result.reason = (f"module-path {mp}: outside the trusted tree {tree} "
                             "(kmodemu run --trust-root DIR chooses another)")
            return result
    try:
        with time_limit(timeout):
            return _run_steps(scn, seed, result, tree, host_shell)
    except ScenarioTimeout:
        result.status = FAIL
        result.reason = f"timed out after {timeout:g} s (kmodemu run --timeout)"
        return result


def _run_steps(scn: Scenario, seed: int | None, result: ScenarioResult, tree: Path,
               host_shell: bool) -> ScenarioResult:
    from kmodemu.errors import KernelError
    from kmodemu.machine import Machine, MachineError

    names: list[str | None] = list(scn.machines) or [None]
    machines: dict[str | None, Machine] = {}
    try:
        for name in names:  # every machine boots from the same header
            machines[name] = Machine(scn.machine_def(seed))
    except (KernelError, MachineError, ValueError, FileNotFoundError) as e:
        for m in machines.values():
            m.close()
        result.status, result.reason = ERROR, f"boot failed: {e}"
        return result
    except Exception as e:  # an emulator bug while booting
        for m in machines.values():
            m.close()
        result.status, result.reason = ERROR, f"boot failed: {_internal(e)}"
        return result
    for m in machines.values():
        m.policy.host_root = tree
        m.policy.host_shell = host_shell
    blocks: dict[int, list[str]] = {}
    with contextlib.ExitStack() as stack:
        sessions = {}
        for name, m in machines.items():
            stack.enter_context(m)
            sessions[name] = Session(m)
        for index, step in enumerate(scn.steps):
            sr = StepResult(step.command, step.lineno, "NOT_RUN")
            result.steps.append(sr)
            if result.status == ERROR:
                continue
            name, command = scn.machine_for(step.command)
            session = sessions.get(name)
            if session is None:
                result.status = ERROR
                result.reason = (f"line {step.lineno}: no machine named {name!r} "
                                 f"(machines: {', '.join(scn.machines)})" if scn.machines else
                                 f"line {step.lineno}: '@{name}' needs a 'machines:' header")
                continue
            try:
                outcome = session.run(command, stdin=step.stdin)
            except ScenarioTimeout:
                raise
            except Exception as e:  # an emulator bug: report it, keep the file as it is
                result.status = ERROR
                result.reason = f"line {step.lineno}: '{step.command}' raised {_internal(e)}"
                continue
            sr.exit_code = outcome.rc
            matched, block = align(step.patterns, outcome.transcript())
            sr.status = PASS if matched else FAIL
            if not matched:
                blocks[index] = block
                if result.status == PASS:
                    result.status = FAIL
        result.virtual_time_ns = max(m.kernel.clock.ns for m in machines.values())
    if blocks:
        result.actual = scn.rebuild(blocks)
        fname = str(scn.path) if scn.path else scn.name
        result.diff = "".join(difflib.unified_diff(
            scn.text.splitlines(keepends=True), result.actual.splitlines(keepends=True),
            fromfile=fname, tofile=f"{fname} (actual)"))
        failed = sum(1 for s in result.steps if s.status == FAIL)
        result.reason = result.reason or f"{failed} of {len(scn.steps)} commands differ"
    return result


def _internal(e: BaseException) -> str:
    """An unexpected exception, with the end of its traceback (where the bug is)."""
    tb = "".join(traceback.format_exception(e)[-7:-1]).rstrip()
    return f"{type(e).__name__}: {e}\n{tb}"


def record(scn: Scenario, result: ScenarioResult) -> bool:
    """Write the actual transcript into the scenario file; True if it changed."""
    if result.actual is None or scn.path is None or result.status != FAIL:
        return False
    tmp = scn.path.with_name(f".{scn.path.name}.tmp")
    tmp.write_text(result.actual, encoding="utf-8")
    tmp.replace(scn.path)
    return True
