"""Scenario files: parse a transcript into a ``Scenario``, and rebuild it with new output.

The format is specified in docs/scenarios.md. In short::

    # a comment
    cmdline: zcache
    builtin: zcache

    $ cat /sys/kernel/debug/cleancache/succ_gets
    0
    $ rmmod zcache
    2> rmmod: ERROR: Module zcache is builtin.
    [1]

A header of ``key: value`` lines defines the machine; each ``$ `` line is a
console command, and the lines after it are its expected output, up to the
next command, comment or the end of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kmodemu.scenario.lines import Pattern, PatternError

SUFFIX = ".scn"
#: header keys and whether they may repeat
HEADER_KEYS = {"name": False, "description": False, "profile": False, "cmdline": False,
               "mem": False, "builtin": True, "module-path": True, "seed": False,
               "release": False, "skip": False, "requires": True, "xen": False,
               "machines": False}
#: a command for one of several machines: ``$ @NAME command…``
MACHINE_PREFIX = re.compile(r"@([A-Za-z][A-Za-z0-9_-]*)\s+(.*)$")
_HEADER = re.compile(r"([A-Za-z][A-Za-z0-9_-]*):(?:\s+(.*))?$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


class ScenarioSyntaxError(ValueError):
    """A scenario file that cannot be read; names the file and line."""

    def __init__(self, path: Path | str | None, lineno: int, message: str):
        self.path, self.lineno, self.message = path, lineno, message
        where = f"{path}:{lineno}" if path else f"line {lineno}"
        super().__init__(f"{where}: {message}")


def is_command(line: str) -> bool:
    return line == "$" or line.startswith("$ ")


@dataclass
class Step:
    """One command and the output expected of it.

    ``start``/``end`` delimit the expected lines in ``Scenario.lines`` (end is
    exclusive and excludes trailing blank lines, which only separate steps).
    """

    command: str
    lineno: int                      # 1-based line of the "$ " line
    stdin: str | None                # here-document body
    start: int
    end: int
    patterns: list[Pattern] = field(default_factory=list)

    @property
    def expected(self) -> list[str]:
        return [p.raw for p in self.patterns]


@dataclass
class Scenario:
    """A parsed scenario file: machine definition, commands, and the file's own lines."""

    name: str
    path: Path | None
    lines: list[str]
    steps: list[Step]
    profile: str = "3.10"
    cmdline: str = ""
    mem: str = "256M"
    builtin: list[str] = field(default_factory=list)
    module_path: list[str] = field(default_factory=list)
    seed: int = 0
    release: str | None = None
    description: str = ""
    skip: str | None = None
    requires: list[str] = field(default_factory=list)
    #: a Xen host (header ``xen: OPTIONS``, the hypervisor's boot options, possibly empty)
    xen: str | None = None
    #: names of the machines (header ``machines:``); one machine when empty
    machines: list[str] = field(default_factory=list)

    def machine_for(self, command: str) -> tuple[str | None, str]:
        """(machine name, command) for a step: ``@NAME cmd`` picks a machine, else the first."""
        m = MACHINE_PREFIX.match(command)
        if m is None:
            return (self.machines[0] if self.machines else None), command
        return m.group(1), m.group(2)

    def machine_def(self, seed: int | None = None):
        """The ``MachineDef`` a fresh machine for this scenario boots from."""
        from kmodemu.machine import MachineDef

        return MachineDef(cmdline=self.cmdline, profile=self.profile, mem=self.mem,
                          builtin=list(self.builtin), module_path=list(self.module_path),
                          release=self.release, seed=self.seed if seed is None else seed,
                          xen=self.xen is not None, xen_cmdline=self.xen or "")

    def rebuild(self, blocks: dict[int, list[str]]) -> str:
        """The file's text with the expected output of some steps replaced.

        ``blocks`` maps a step's index to its new expected lines.
        """
        lines = list(self.lines)
        for index in sorted(blocks, reverse=True):
            step = self.steps[index]
            lines[step.start:step.end] = blocks[index]
        return "".join(line + "\n" for line in lines)

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def load(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioSyntaxError(path, 1, f"not UTF-8 text ({e.reason})") from None
    return parse(text, path=path)


def parse(text: str, *, path: Path | None = None, name: str | None = None) -> Scenario:
    """Parse scenario text. The name defaults to the file's stem."""
    path = Path(path) if path is not None else None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header: dict[str, list[str]] = {}
    header_line: dict[str, int] = {}
    steps: list[Step] = []
    i, n = 0, len(lines)
    comment_at = 0
    while i < n:
        line = lines[i]
        if is_command(line):
            step, i = _parse_step(lines, i, path)
            steps.append(step)
            continue
        if not line.strip() or line.startswith("#"):
            if line.startswith("#"):
                comment_at = i + 1
            i += 1
            continue
        if steps:
            after = f" (after the comment on line {comment_at})" if comment_at > steps[-1].lineno else ""
            raise ScenarioSyntaxError(path, i + 1, f"output line outside a command's block{after}; "
                                                   "prefix prose with '#'")
        m = _HEADER.match(line)
        if not m:
            raise ScenarioSyntaxError(path, i + 1, f"expected 'key: value' or a '$ ' command, got {line!r}")
        key, value = m.group(1).lower(), (m.group(2) or "").strip()
        if key not in HEADER_KEYS:
            raise ScenarioSyntaxError(path, i + 1, f"unknown header key {key!r} "
                                                   f"(known: {', '.join(HEADER_KEYS)})")
        if key in header and not HEADER_KEYS[key]:
            raise ScenarioSyntaxError(path, i + 1, f"header key {key!r} given twice")
        header.setdefault(key, []).append(value)
        header_line.setdefault(key, i + 1)
        i += 1
    return _build(header, header_line, steps, lines, path, name)


def _parse_step(lines: list[str], i: int, path: Path | None) -> tuple[Step, int]:
    command = lines[i][2:].strip() if lines[i] != "$" else ""
    lineno = i + 1
    if not command:
        raise ScenarioSyntaxError(path, lineno, "empty command")
    i += 1
    stdin = None
    m = _HEREDOC.search(command)
    if m:
        word, body = m.group(2), []
        while i < len(lines) and lines[i] != word:
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ScenarioSyntaxError(path, lineno, f"here-document not terminated by {word!r}")
        stdin = "".join(b + "\n" for b in body)
        i += 1
    start = i
    while i < len(lines) and not is_command(lines[i]) and not lines[i].startswith("#"):
        i += 1
    end = i
    while end > start and lines[end - 1] == "":
        end -= 1
    patterns = []
    for k in range(start, end):
        try:
            patterns.append(Pattern.parse(lines[k]))
        except PatternError as e:
            raise ScenarioSyntaxError(path, k + 1, str(e)) from None
    return Step(command, lineno, stdin, start, end, patterns), i


def _build(header: dict[str, list[str]], header_line: dict[str, int], steps: list[Step], lines: list[str], path: Path | None,
           name: str | None) -> Scenario:
    def one(key: str, default=None):
        return header[key][0] if key in header else default

    def words(key: str) -> list[str]:
        return [w for v in header.get(key, []) for w in re.split(r"[\s,]+", v) if w]

    scn_name = one("name") or name or (path.stem if path else "scenario")
    if "#" in scn_name or not scn_name.strip():
        raise ScenarioSyntaxError(path, header_line.get("name", 1), f"bad scenario name {scn_name!r} (no '#', not empty)")
    seed_text = one("seed", "0")
    try:
        seed = int(seed_text, 0)
    except ValueError:
        raise ScenarioSyntaxError(path, header_line["seed"], f"seed must be an integer, not {seed_text!r}") from None
    base = path.parent if path else Path.cwd()
    module_path = [str((base / p).resolve()) for v in header.get("module-path", []) for p in v.split()]
    skip = one("skip")
    return Scenario(name=scn_name, path=path, lines=lines, steps=steps,
                    profile=one("profile", "3.10"), cmdline=one("cmdline", ""),
                    mem=one("mem", "256M"), builtin=words("builtin"), module_path=module_path,
                    seed=seed, release=one("release"), description=one("description", ""),
                    skip=(skip or "skipped") if "skip" in header else None,
                    requires=words("requires"),
                    xen=(one("xen") or "") if "xen" in header else None,
                    machines=_machines(path, header_line, words))


def _machines(path, header_line, words) -> list[str]:
    names = words("machines")
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", n):
            raise ScenarioSyntaxError(path, header_line.get("machines", 1),
                                      f"bad machine name {n!r}")
    if len(set(names)) != len(names):
        raise ScenarioSyntaxError(path, header_line.get("machines", 1), "a machine named twice")
    return names


def render(definition, steps: list[tuple[str, str | None, list[str]]], *,
           comments: Sequence[str] = (), base: Path | None = None) -> str:
    """Write a scenario: a header from a ``MachineDef``, then ``(command, stdin, block)`` steps.

    A step whose command is ``None`` is a comment line (its ``stdin`` is the text).
    Module paths are written relative to ``base`` (the scenario's directory) when possible.
    """
    import os

    out = [f"# {c}" if c else "#" for c in comments]
    out.append(f"profile: {definition.profile}")
    out.append(f"cmdline: {definition.cmdline}".rstrip())
    out.append(f"mem: {definition.mem}")
    if definition.builtin:
        out.append(f"builtin: {' '.join(definition.builtin)}")
    for p in definition.module_path:
        rel = os.path.relpath(p, base) if base is not None else p
        out.append(f"module-path: {rel}")
    if definition.release:
        out.append(f"release: {definition.release}")
    out.append(f"seed: {definition.seed}")
    if getattr(definition, "xen", False):
        out.append(f"xen: {definition.xen_cmdline}".rstrip())
    out.append("")
    for command, stdin, block in steps:
        if command is None:
            out.append(f"# {stdin}" if stdin else "#")
            continue
        out.append(f"$ {command}")
        if stdin is not None:
            m = _HEREDOC.search(command)
            out.extend(stdin.split("\n")[:-1] if stdin.endswith("\n") else stdin.split("\n"))
            out.append(m.group(2) if m else "EOF")
        out.extend(block)
    return "".join(line + "\n" for line in out)
