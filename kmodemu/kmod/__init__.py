"""The kmod side of kmodemu: modprobe, modinfo, depmod, insmod, rmmod, lsmod.

Each tool is ``main(argv, ctx) -> exit status`` and behaves like kmod 30
(byte-exact output and messages), acting on the emulated machine in ``ctx``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .context import ToolContext

ToolMain = Callable[[list[str], ToolContext], int]


def _lazy(module: str) -> ToolMain:
    def run(argv: list[str], ctx: ToolContext) -> int:
        import importlib
        return importlib.import_module(f"{__name__}.{module}").main(argv, ctx)
    run.__name__ = f"{module}_main"
    return run


TOOLS: dict[str, ToolMain] = {
    "modprobe": _lazy("modprobe"),
    "modinfo": _lazy("modinfo"),
    "depmod": _lazy("depmod"),
    "insmod": _lazy("insmod"),
    "rmmod": _lazy("rmmod"),
    "lsmod": _lazy("lsmod"),
}


def attach(kernel: Any, root: Path) -> None:
    """Let the kernel's ``request_module`` run our modprobe on this machine."""
    import io

    def usermodehelper(argv: list[str]) -> int:
        ctx = ToolContext(kernel=kernel, root=Path(root), stdout=io.StringIO(),
                          stderr=io.StringIO(),
                          env={"HOME": "/", "TERM": "linux",
                               "PATH": "/sbin:/usr/sbin:/bin:/usr/bin"})
        return TOOLS["modprobe"](["modprobe", *argv], ctx)

    kernel.usermodehelper_modprobe = usermodehelper


__all__ = ["TOOLS", "ToolContext", "attach"]
