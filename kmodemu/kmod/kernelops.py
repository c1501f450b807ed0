"""The two syscalls the tools make: ``finit_module`` and ``delete_module``.

They read the module file (so a broken file fails with ENOEXEC like the
kernel's ELF checks) and hand the declaration to the emulated loader. They
return ``-errno`` like libkmod does.
"""

from __future__ import annotations

import errno

from kmodemu.errors import KernelError
from kmodemu.modules.elf import read_module

from .context import ToolContext


def insert_file(tool: ToolContext, host_path: str, args: str) -> int:
    """Load a module file with an argument string; 0 or -errno."""
    try:
        decl = read_module(host_path)
    except KernelError as e:
        return -e.errno
    except OSError as e:
        return -(e.errno or errno.EIO)
    if tool.kernel is None:
        return -errno.ENOSYS
    try:
        tool.kernel.modules.load(decl, args)
    except KernelError as e:
        return -e.errno
    return 0


def delete_module(tool: ToolContext, name: str, force: bool = False) -> int:
    """Unload a module by name; 0 or -errno."""
    if tool.kernel is None:
        return -errno.ENOSYS
    try:
        tool.kernel.modules.unload(name, force=force)
    except KernelError as e:
        return -e.errno
    return 0
