"""The console: every command a machine understands (kmod tools, pseudo files,
the memory model's tools), shared by the CLI, ``kmodemu shell`` and scenarios."""

from kmodemu.console.commands import (INTERNAL_ERROR, KMOD_TOOLS, READONLY, console, execute,
                                      execute_command, is_readonly)
from kmodemu.console.context import ConsoleMachine, machine_of

__all__ = ["INTERNAL_ERROR", "KMOD_TOOLS", "READONLY", "ConsoleMachine", "console", "execute",
           "execute_command", "is_readonly", "machine_of"]
