"""Hints our CLI prints on stderr where Linux stays silent.

Linux never says that a boot word was meant for a module that is not built in:
the word quietly goes to init's argv or environment. A person who read the tmem
patchset's cover letter types ``zcache`` or ``tmem`` on the command line and
gets nothing, so the CLI says once what would work. These strings never reach
the emulated kernel's log.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from kmodemu.kernel.cmdline import tokenize
from kmodemu.modules.declaration import ModuleDecl


class _Registry(Protocol):
    def get(self, name: str) -> ModuleDecl | None: ...
    def __iter__(self): ...


def _norm(text: str) -> str:
    return text.replace("-", "_")


def _claims(decl: ModuleDecl, name: str, word: str) -> bool:
    """Would one of ``decl``'s ``__setup``/``early_param`` handlers take this word if built in?"""
    for bp in decl.boot_params:
        if bp.early:
            if _norm(bp.name) == _norm(name):
                return True
        elif _norm(word).startswith(_norm(bp.name)):
            return True
    return False


def boot_hints(cmdline: str, builtin: Iterable[str], registry: _Registry | None) -> list[str]:
    """One line per module that a word of ``cmdline`` names but that the kernel will not see."""
    if registry is None:
        return []
    built = {_norm(b) for b in builtin}
    decls = [d for d in registry if _norm(d.name) not in built]
    hinted: set[str] = set()
    out: list[str] = []
    for name, value in tokenize(cmdline):
        word = name if value is None else f"{name}={value}"
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
            if _claims(decl, name, word) or _norm(name) == _norm(decl.name):
                hinted.add(decl.name)
                out.append(
                    f"kmodemu: boot: '{word}' is a boot parameter of {decl.name}, which is a module "
                    "on this kernel, not built in, so the kernel passes the word to init. Boot with "
                    f"--builtin {decl.name} for the deprecated boot-parameter path, or load it later "
                    f"with 'kmodemu insmod {decl.name}'.")
    return out
