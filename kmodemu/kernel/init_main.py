"""init/main.c: what start_kernel does with the boot command line.

``parse_boot_cmdline`` runs the early pass, the "Booting kernel" pass with
``unknown_bootoption`` and ``obsolete_checksetup``, the unknown-options
notice and the init args after ``--``. The words come from lib/cmdline.c
(``kmodemu.kernel.cmdline``) through kernel/params.c's ``parse_args``.
See docs/params-and-cmdline.md for the mapping and the differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from kmodemu.kernel.params import Param, parameq, parameqn, parse_args

# CONFIG_INIT_ENV_ARG_LIMIT (default 32).
MAX_INIT_ARGS = 32
MAX_INIT_ENVS = 32

# init/main.c drops words naming the boot loader (strstarts on "name=value").
BOOTLOADER_PREFIXES = ("BOOT_IMAGE=", "kexec")

EarlyHandler = Callable[[str | None], int]
SetupHandler = Callable[[str], int]


@dataclass
class BootArgs:
    """What start_kernel leaves for user space and the log after parsing the line."""

    argv: list[str] = field(default_factory=lambda: ["init"])
    envp: list[str] = field(default_factory=lambda: ["HOME=/", "TERM=linux"])
    init: str | None = None
    rdinit: str | None = None
    unknown_notice: str | None = None
    panic: str | None = None
    messages: list[str] = field(default_factory=list)
    tainted: bool = False


class _InitVectors:
    """argv_init/envp_init as the fixed C arrays (limit + 2 slots, NULL-ended).

    Modelled slot by slot because init= clears only slots 1..limit-1, and
    the panic check counts occupied slots, not list length.
    """

    def __init__(self) -> None:
        self.argv: list[str | None] = ["init"] + [None] * (MAX_INIT_ARGS + 1)
        self.envp: list[str | None] = ["HOME=/", "TERM=linux"] + [None] * MAX_INIT_ENVS
        self.panic_later: str | None = None
        self.panic_param: str | None = None

    @staticmethod
    def listed(vec: list[str | None], start: int = 0) -> list[str]:
        out = []
        for v in vec[start:]:
            if v is None:
                break
            out.append(v)
        return out

    def add_env(self, text: str, name_len: int) -> None:
        i = 0
        while (slot := self.envp[i]) is not None:
            if i == MAX_INIT_ENVS:
                self.panic_later, self.panic_param = "env", text
            if slot[:name_len + 1] == text[:name_len + 1]:
                break
            i += 1
        self.envp[i] = text

    def add_arg(self, text: str, *, stop_on_limit: bool = False) -> None:
        i = 0
        while self.argv[i] is not None:
            if i == MAX_INIT_ARGS:
                self.panic_later, self.panic_param = "init", text
                if stop_on_limit:
                    return
            i += 1
        self.argv[i] = text

    def clear_args(self) -> None:
        for i in range(1, MAX_INIT_ARGS):
            self.argv[i] = None


def _rejoin(name: str, value: str | None) -> str:
    """repair_env_string: undo the NUL at '=' so the word reads name=value again."""
    return name if value is None else f"{name}={value}"


def parse_boot_cmdline(
    cmdline: str,
    *,
    early: Mapping[str, EarlyHandler],
    setup: Sequence[tuple[str, SetupHandler | None]],
    params: Callable[[str], Param | None],
    taint: Callable[[], None] | None = None,
) -> BootArgs:
    """Run start_kernel's command-line phases over ``cmdline``.

    ``early`` maps early_param names to handlers (called with the value or
    None; non-zero means malformed). ``setup`` lists __setup strings in
    link order with handlers called on the text after the string (return 1
    = consumed) or None for obsolete entries. ``params`` looks up built-in
    parameters by their ``modname.param`` name. ``init=``/``rdinit=`` are
    handled here, ahead of ``setup`` (init/main.c links first).
    """
    out = BootArgs()
    log = out.messages.append
    vec = _InitVectors()

    def mark_taint() -> None:
        out.tainted = True
        if taint is not None:
            taint()

    # Step 3: parse_early_param over its own copy of the line.
    def do_early_param(name: str, value: str | None) -> int:
        for key, handler in early.items():
            if parameq(name, key) or (name == "console" and key == "earlycon"):
                if handler(value) != 0:
                    log(f"Malformed early option '{name}'")
        return 0

    parse_args("early options", cmdline, {}, unknown=do_early_param, printk=log,
               level_filter=(0, 0))

    def init_setup(rest: str) -> int:
        out.init = rest
        vec.clear_args()
        return 1

    def rdinit_setup(rest: str) -> int:
        out.rdinit = rest
        vec.clear_args()
        return 1

    table: list[tuple[str, SetupHandler | None]] = [("init=", init_setup), ("rdinit=", rdinit_setup)]
    table.extend(setup)

    def obsolete_checksetup(line: str) -> bool:
        had_early = False
        for key in early:
            n = len(key)
            if parameqn(line, key, n) and line[n:n + 1] in ("", "="):
                had_early = True
        for key, handler in table:
            if not parameqn(line, key, len(key)):
                continue
            if handler is None:
                log(f"Parameter {key} is obsolete, ignored")
                return True
            if handler(line[len(key):]):
                return True
        return had_early

    # Step 5: unknown_bootoption.
    def unknown_bootoption(name: str, value: str | None) -> int:
        line = _rejoin(name, value)
        if line.startswith(BOOTLOADER_PREFIXES):
            return 0
        if obsolete_checksetup(line):
            return 0
        if "." in name:
            return 0
        if vec.panic_later:
            return 0
        if value is not None:
            vec.add_env(line, len(name))
        else:
            vec.add_arg(line)
        return 0

    err, after_dashes = parse_args("Booting kernel", cmdline, params,
                                   unknown=unknown_bootoption, printk=log,
                                   level_filter=(-1, -1), taint=mark_taint)

    # Step 6: print_unknown_bootoptions.
    extra = vec.listed(vec.argv, 1) + vec.listed(vec.envp, 2)
    if not vec.panic_later and extra:
        out.unknown_notice = ("Unknown kernel command line parameters \"" + " ".join(extra)
                              + "\", will be passed to user space.")
        log(out.unknown_notice)

    # Step 7: everything after "--" (only when the booting pass had no error).
    if err == 0 and after_dashes is not None:
        def set_init_arg(name: str, value: str | None) -> int:
            if vec.panic_later:
                return 0
            vec.add_arg(_rejoin(name, value), stop_on_limit=True)
            return 0

        parse_args("Setting init args", after_dashes, {}, unknown=set_init_arg, printk=log)

    out.argv = vec.listed(vec.argv)
    out.envp = vec.listed(vec.envp)
    if vec.panic_later:
        out.panic = f"Too many boot {vec.panic_later} vars at `{vec.panic_param}'"
    return out
