"""Hints our CLI prints on stderr where Linux stays silent.

Linux never says that a boot word was meant for a module that is not built in:
the word quietly goes to init's argv or environment. A person who read the tmem
patchset's cover letter types ``zcache`` or ``tmem`` on the command line and
gets nothing, so the CLI says once what would work. These strings never reach
the emulated kernel's log.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from kmodemu.kernel.cmdline import memparse, tokenize
from kmodemu.kernel.kernel import MIN_MEM
from kmodemu.modules.declaration import BootParam, ModuleDecl


class _Registry(Protocol):
    def get(self, name: str) -> ModuleDecl | None: ...
    def __iter__(self): ...


def _norm(text: str) -> str:
    return text.replace("-", "_")


def _claim(decl: ModuleDecl, name: str, word: str) -> BootParam | None:
    """The handler of ``decl`` that would take this word if built in: an ``early_param`` by exact
    name, else the ``__setup`` with the longest matching prefix (the one whose module parameter
    says what the person meant: ``zcache=lz4`` is about the compressor)."""
    best: BootParam | None = None
    for bp in decl.boot_params:
        if bp.early:
            if _norm(bp.name) == _norm(name):
                return bp
        elif _norm(word).startswith(_norm(bp.name)) and (best is None or len(bp.name) > len(best.name)):
            best = bp
    return best


def _insmod(decl: ModuleDecl, bp: BootParam | None, word: str) -> str:
    args = ""
    if bp is not None and bp.module_param:
        args = " " + bp.module_param.format(rest=word[len(bp.name):])
    return f"'kmodemu insmod {decl.name}{args}'"


def _mem_hint(word: str, value: str) -> list[str]:
    """``mem=`` below the emulation's floor: the kernel takes it silently, so say what happens."""
    try:
        size = memparse(value)
    except ValueError:
        return []   # the kernel's own "Malformed early option" says it
    if 0 < size < MIN_MEM:
        return [f"kmodemu: boot: '{word}' is below the {MIN_MEM >> 20}M a kmodemu kernel needs: "
                f"it boots with {MIN_MEM >> 20}M (a Linux kernel would not get far with so little)."]
    return []


def boot_hints(cmdline: str, builtin: Iterable[str], registry: _Registry | None) -> list[str]:
    """One line per module that a word of ``cmdline`` names but that the kernel will not see."""
    if registry is None:
        return []
    built = {_norm(b) for b in builtin}
    decls = list(registry)
    hinted: set[str] = set()
    out: list[str] = []
    for name, value in tokenize(cmdline):
        word = name if value is None else f"{name}={value}"
        if name == "mem" and value:
            out.extend(_mem_hint(word, value))
            continue
        if "." in name and not name.startswith("."):
            mod = _norm(name.partition(".")[0])
            if mod in built or mod in hinted:
                continue
            if registry.get(mod) is None:
                hinted.add(mod)
                out.append(f"kmodemu: boot: '{word}' sets a parameter of '{mod}', which is neither "
                           "built in nor a module of this machine: nothing will read it.")
            continue  # a loadable module: modprobe applies it from /proc/cmdline at load time
        for decl in decls:
            if decl.name in hinted:
                continue
            bp = _claim(decl, name, word)
            if bp is None and _norm(name) != _norm(decl.name):
                continue
            missing = [m for m in (bp.needs_builtin if bp else ()) if _norm(m) not in built]
            wanted = ",".join([decl.name, *missing])
            if _norm(decl.name) in built:
                if not missing:
                    continue  # the kernel's own business, hint or no hint
                hinted.add(decl.name)
                out.append(
                    f"kmodemu: boot: '{word}' is a boot parameter of {decl.name} that only works with "
                    f"{', '.join(missing)} built in as well; without it no handler takes the word and the "
                    f"kernel passes it to init. Boot with --builtin {wanted}.")
                continue
            hinted.add(decl.name)
            out.append(
                f"kmodemu: boot: '{word}' is a boot parameter of {decl.name}, which is a module "
                "on this kernel, not built in, so the kernel passes the word to init. Boot with "
                f"--builtin {wanted} for the deprecated boot-parameter path, or load it later "
                f"with {_insmod(decl, bp, word)}.")
    return out
