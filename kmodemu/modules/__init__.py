"""Modules: declarations, discovery, loading, symbols."""

from kmodemu.modules.declaration import BootParam, ModuleDecl

__all__ = ["BootParam", "ModuleDecl"]
