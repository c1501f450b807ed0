"""glibc ``getopt_long`` for the tools: same permutation, abbreviations and
error messages, so bad command lines fail exactly like the real tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

NO, REQUIRED = 0, 1


@dataclass(frozen=True)
class LongOpt:
    name: str
    has_arg: int
    val: str


class GetoptError(Exception):
    """A bad option; the message has already been printed."""


def getopt_long(prog: str, argv: list[str], shortopts: str, longopts: list[LongOpt],
                err: TextIO) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Parse ``argv`` (without argv[0]): (options as (val, arg), operands).

    Non-options are moved after the options (GNU permutation) unless the
    option string starts with ``+``; ``--`` ends option parsing.
    """
    posix = shortopts.startswith("+")
    if posix:
        shortopts = shortopts[1:]
    shorts: dict[str, int] = {}
    i = 0
    while i < len(shortopts):
        ch = shortopts[i]
        has = NO
        if i + 1 < len(shortopts) and shortopts[i + 1] == ":":
            has = REQUIRED
            i += 1
            if i + 1 < len(shortopts) and shortopts[i + 1] == ":":
                has = 2  # optional
                i += 1
        shorts[ch] = has
        i += 1

    opts: list[tuple[str, str | None]] = []
    operands: list[str] = []
    i = 0
    n = len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--":
            operands.extend(argv[i + 1:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            name, eq, value = body.partition("=")
            exact = [o for o in longopts if o.name == name]
            cands = exact or [o for o in longopts if o.name.startswith(name)]
            if not cands:
                err.write(f"{prog}: unrecognized option '--{name}'\n")
                raise GetoptError(arg)
            if len(cands) > 1 and len({(c.has_arg, c.val) for c in cands}) > 1:
                names = " ".join(f"'--{c.name}'" for c in cands)
                err.write(f"{prog}: option '--{name}' is ambiguous; possibilities: {names}\n")
                raise GetoptError(arg)
            opt = cands[0]
            if opt.has_arg == NO:
                if eq:
                    err.write(f"{prog}: option '--{opt.name}' doesn't allow an argument\n")
                    raise GetoptError(arg)
                opts.append((opt.val, None))
            elif opt.has_arg == REQUIRED:
                if eq:
                    opts.append((opt.val, value))
                elif i + 1 < n:
                    i += 1
                    opts.append((opt.val, argv[i]))
                else:
                    err.write(f"{prog}: option '--{opt.name}' requires an argument\n")
                    raise GetoptError(arg)
            else:
                opts.append((opt.val, value if eq else None))
            i += 1
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                ch = arg[j]
                if ch not in shorts or ch == ":":
                    err.write(f"{prog}: invalid option -- '{ch}'\n")
                    raise GetoptError(arg)
                has = shorts[ch]
                if has == NO:
                    opts.append((ch, None))
                    j += 1
                    continue
                rest = arg[j + 1:]
                if rest:
                    opts.append((ch, rest))
                elif has == REQUIRED:
                    if i + 1 < n:
                        i += 1
                        opts.append((ch, argv[i]))
                    else:
                        err.write(f"{prog}: option requires an argument -- '{ch}'\n")
                        raise GetoptError(arg)
                else:
                    opts.append((ch, None))
                break
            i += 1
            continue
        if posix:
            operands.extend(argv[i:])
            break
        operands.append(arg)
        i += 1
    return opts, operands
