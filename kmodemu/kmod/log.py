"""The tools' message formats (kmod 30's tools/log.c).

Tool messages are ``<prog>: <LEVEL>: <text>``; libkmod's own messages, once a
tool has installed its logger, also carry libkmod's source position (Debian
builds kmod 30 with that enabled): ``<prog>: ERROR: <file>:<line> <fn>() <text>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)
PREFIX = {CRIT: "FATAL", ERR: "ERROR", WARNING: "WARNING", NOTICE: "NOTICE",
          INFO: "INFO", DEBUG: "DEBUG", EMERG: "EMERGENCY", ALERT: "ALERT"}

#: libkmod source positions of the messages we reproduce (kmod 30, Debian 12)
SRC_INSERT_NO_PATH = ("../libkmod/libkmod-module.c", 895, "kmod_module_insert_module")
SRC_INSERT_FAILED = ("../libkmod/libkmod-module.c", 905, "kmod_module_insert_module")
SRC_REMOVE = ("../libkmod/libkmod-module.c", 856, "kmod_module_remove_module")
SRC_COMMAND = ("../libkmod/libkmod-module.c", 1047, "command_do")
SRC_HOLDERS = ("../libkmod/libkmod-module.c", 1998, "kmod_module_get_holders")
SRC_SOFTDEP = ("../libkmod/libkmod-module.c", 1202, "lookup_softdep")


@dataclass
class Log:
    """One tool's logger: a threshold and the stream."""

    prog: str
    err: TextIO
    threshold: int = INFO

    def log(self, prio: int, text: str) -> None:
        if prio <= self.threshold:
            self.err.write(f"{self.prog}: {PREFIX[prio]}: {text}")

    def lib(self, prio: int, src: tuple[str, int, str], text: str) -> None:
        """A libkmod message through the tool's logger."""
        if prio <= self.threshold:
            f, line, fn = src
            self.err.write(f"{self.prog}: {PREFIX[prio]}: {f}:{line} {fn}() {text}")

    def error(self, text: str) -> None:
        self.log(ERR, text)

    def warning(self, text: str) -> None:
        self.log(WARNING, text)
