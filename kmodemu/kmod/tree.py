"""Laying out a machine's module tree (``/lib/modules/<release>``) from plugins.

Loadable plugin modules become ``.ko`` files (see ``elfwriter``); built-in
ones are listed in ``modules.builtin`` and ``modules.builtin.modinfo``, as a
kernel build would leave them. depmod then indexes the tree.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

from kmodemu.modules.declaration import ModuleDecl

from .elfwriter import write_module
from .names import underscores

SKIP_BUILTIN_KEYS = {"name", "depends", "intree", "vermagic", "retpoline"}


def module_relpath(decl: ModuleDecl) -> str:
    """Where a plugin's file lives under the module directory."""
    path = decl.extra.get("path") if decl.extra else None
    if path:
        return str(path).lstrip("/")
    return f"kernel/drivers/staging/{decl.name}/{decl.name}.ko"


def populate(root: Path, release: str, decls: Iterable[ModuleDecl], builtin: Iterable[str],
             *, run_depmod: bool = True) -> None:
    """Create ``root/lib/modules/<release>`` for these declarations."""
    root = Path(root)
    moddir = root / "lib" / "modules" / release
    moddir.mkdir(parents=True, exist_ok=True)
    for d in ("etc/modprobe.d", "lib/modprobe.d", "run/modprobe.d"):
        (root / d).mkdir(parents=True, exist_ok=True)
    builtin_names = {underscores(b) for b in builtin}
    order: list[str] = []
    builtins: list[str] = []
    builtin_info = bytearray()
    for decl in decls:
        rel = module_relpath(decl)
        if underscores(decl.name) in builtin_names:
            builtins.append(rel)
            for key, value in decl.modinfo_entries():
                if key not in SKIP_BUILTIN_KEYS:
                    builtin_info += f"{underscores(decl.name)}.{key}={value}".encode() + b"\0"
            continue
        write_module(decl, moddir / rel)
        order.append(rel)
    (moddir / "modules.order").write_text("".join(r + "\n" for r in order))
    (moddir / "modules.builtin").write_text("".join(r + "\n" for r in builtins))
    (moddir / "modules.builtin.modinfo").write_bytes(bytes(builtin_info))
    if run_depmod:
        from . import TOOLS
        from .context import ToolContext
        ctx = ToolContext(kernel=None, root=root, stdout=io.StringIO(), stderr=io.StringIO())
        TOOLS["depmod"](["depmod", "-b", str(root), release], ctx)
