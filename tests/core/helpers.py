"""Small module declarations for exercising the loader without plugins."""

from __future__ import annotations

from kmodemu.kernel.kernel import Kernel
from kmodemu.kernel.params import ParamSpec
from kmodemu.modules.declaration import BootParam, ModuleDecl


def booted(cmdline: str = "", **kw) -> Kernel:
    k = Kernel(cmdline=cmdline, **kw)
    k.boot()
    return k


def decl(name: str, **kw) -> ModuleDecl:
    kw.setdefault("init", lambda ctx: 0)
    kw.setdefault("exit", lambda ctx: None)
    return ModuleDecl(name=name, **kw)


class StaticRegistry:
    """A registry stand-in: name -> declaration."""

    def __init__(self, *decls: ModuleDecl):
        self._d = {d.name: d for d in decls}

    def get(self, name):
        return self._d.get(name.replace("-", "_"))

    def __iter__(self):
        return iter(self._d.values())


__all__ = ["booted", "decl", "StaticRegistry", "ParamSpec", "BootParam", "ModuleDecl", "Kernel"]
