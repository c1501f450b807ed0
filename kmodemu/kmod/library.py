"""A libkmod context: one module directory, its indexes, the config, and
module objects with kmod's lookup rules.

Tools build one ``Library`` per invocation (kmod has no global state either).
Module objects are cached by name (and by ``name\\alias`` for modules reached
through an alias), because libkmod's probe marks visited modules on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import config as _config
from .context import ToolContext
from .fnmatch import fnmatch
from .index import Index
from .names import alias_normalize, modname_from_path

INDEX_DEP = "modules.dep.bin"
INDEX_ALIAS = "modules.alias.bin"
INDEX_SYMBOL = "modules.symbols.bin"
INDEX_BUILTIN = "modules.builtin.bin"
INDEX_BUILTIN_ALIAS = "modules.builtin.alias.bin"


@dataclass(eq=False)
class KModule:
    """libkmod's ``struct kmod_module``: a name, maybe an alias, a path, deps."""

    lib: "Library"
    name: str
    alias: str | None = None
    path: str | None = None          # as printed (machine or -d path)
    builtin: bool = False
    _dep_done: bool = False
    _deps: list["KModule"] = field(default_factory=list)
    visited: bool = False
    required: bool = False
    ignorecmd: bool = False

    # -- from modules.dep ----------------------------------------------------
    def _parse_dep(self) -> None:
        if self._dep_done:
            return
        self._dep_done = True
        line = self.lib.search_moddep(self.name)
        if line is None:
            return
        head, _, rest = line.partition(":")
        if self.path is None:
            self.path = self.lib.abspath(head)
        deps = []
        for p in rest.split():
            deps.append(self.lib.module_from_path(self.lib.abspath(p)))
        deps.reverse()  # libkmod prepends: the last dependency comes first
        self._deps = deps

    def get_path(self) -> str | None:
        if self.path is None:
            self._parse_dep()
        return self.path

    def dependencies(self) -> list["KModule"]:
        self._parse_dep()
        return list(self._deps)

    def host_path(self) -> str | None:
        p = self.get_path()
        return None if p is None else self.lib.host_of(p)

    # -- from the configuration ---------------------------------------------
    def options(self) -> str | None:
        opts = [o for m, o in self.lib.config.options
                if (m == self.name or (self.alias is not None and m == self.alias)) and o]
        return " ".join(opts) if opts else None

    def install_command(self) -> str | None:
        for pat, cmd in self.lib.config.install:
            if fnmatch(pat, self.name):
                return cmd
        return None

    def remove_command(self) -> str | None:
        for pat, cmd in self.lib.config.remove:
            if fnmatch(pat, self.name):
                return cmd
        return None

    def softdeps(self) -> tuple[list["KModule"], list["KModule"]]:
        for sd in self.lib.config.softdeps:
            if fnmatch(sd.name, self.name):
                return self.lib.lookup_softdep(sd.pre), self.lib.lookup_softdep(sd.post)
        return [], []

    def is_blacklisted(self) -> bool:
        return self.name in self.lib.config.blacklist

    # -- from the running kernel ----------------------------------------------
    def initstate(self) -> str | None:
        """"builtin", "live", "coming", "going" or None (not in the kernel)."""
        if self.builtin:
            return "builtin"
        return self.lib.kernel_state(self.name)

    def is_inkernel(self) -> bool:
        return self.initstate() in ("builtin", "live", "coming")

    def refcnt(self) -> int | None:
        return self.lib.kernel_refcnt(self.name)

    def holders(self) -> list["KModule"]:
        return [self.lib.module_from_name(h) for h in self.lib.kernel_holders(self.name)]


class Library:
    """kmod_ctx: module directory, config and the module cache."""

    def __init__(self, tool: ToolContext, dirname: str | None, dirname_is_host: bool,
                 config_paths: list[str] | None, *, use_config: bool = True,
                 read_kcmdline: bool = True):
        self.tool = tool
        release = tool.release()
        self.dirname = dirname if dirname is not None else f"/lib/modules/{release}"
        self._dir_host = self.dirname if dirname_is_host else tool.machine_path(self.dirname)
        self._indexes: dict[str, Index | None] = {}
        self._cache: dict[str, KModule] = {}
        self._config: _config.Config | None = None
        self._config_paths = config_paths
        self._use_config = use_config
        self._read_kcmdline = read_kcmdline

    # -- paths ------------------------------------------------------------------
    def abspath(self, rel: str) -> str:
        return rel if rel.startswith("/") else f"{self.dirname}/{rel}"

    def host_of(self, shown: str) -> str:
        """Host file for a path under the module dir (or any machine path)."""
        if shown.startswith(self.dirname + "/"):
            return self._dir_host + shown[len(self.dirname):]
        return self.tool.user_path(shown)

    def dir_host(self) -> str:
        return self._dir_host

    # -- configuration ----------------------------------------------------------
    @property
    def config(self) -> _config.Config:
        if self._config is None:
            if not self._use_config:
                self._config = _config.Config()
            else:
                if self._config_paths is None:
                    paths = list(_config.DEFAULT_DIRS)
                    host = self.tool.machine_path
                else:
                    paths = list(self._config_paths)
                    host = self._user_or_dir
                cmdline = self.tool.read_proc("/proc/cmdline") if self._read_kcmdline else None
                self._config = _config.load_config(paths, host, self.dirname, cmdline)
        return self._config

    def _user_or_dir(self, path: str) -> str:
        if path.startswith(self.dirname + "/"):
            return self.host_of(path)
        return self.tool.user_path(path)

    # -- indexes ----------------------------------------------------------------
    def index(self, name: str) -> Index | None:
        if name not in self._indexes:
            self._indexes[name] = Index.open(os.path.join(self._dir_host, name))
        return self._indexes[name]

    def search_moddep(self, name: str) -> str | None:
        idx = self.index(INDEX_DEP)
        if idx is None:
            return None
        vals = idx.search(name)
        return vals[0][1] if vals else None

    # -- module objects ---------------------------------------------------------
    def module_from_name(self, name: str) -> KModule:
        m = self._cache.get(name)
        if m is None:
            m = KModule(self, name)
            self._cache[name] = m
        return m

    def module_from_alias(self, alias: str, name: str) -> KModule:
        key = f"{name}\\{alias}"
        m = self._cache.get(key)
        if m is None:
            m = KModule(self, name, alias=alias)
            self._cache[key] = m
        return m

    def module_from_path(self, path: str) -> KModule:
        name = modname_from_path(path)
        m = self._cache.get(name)
        if m is None:
            m = KModule(self, name, path=path)
            self._cache[name] = m
        elif m.path is None:
            m.path = path
        return m

    def reset_probe_marks(self) -> None:
        for m in self._cache.values():
            m.visited = False
            m.required = False

    # -- lookup (kmod_module_new_from_lookup) ----------------------------------
    def lookup(self, given: str) -> list[KModule] | None:
        """Every module a name stands for, or None when the name is malformed."""
        alias = alias_normalize(given)
        if alias is None:
            return None
        for step in (self._from_config, self._from_moddep, self._from_symbols,
                     self._from_commands, self._from_aliases, self._from_builtin,
                     self._from_builtin_alias):
            found = step(alias)
            if found:
                return found
        return []

    def lookup_softdep(self, names: tuple[str, ...]) -> list[KModule]:
        out: list[KModule] = []
        for n in names:
            found = self.lookup(n)
            if found:
                out.extend(found)
        return out

    def _from_config(self, alias: str) -> list[KModule]:
        return [self.module_from_alias(alias, mod) for pat, mod in self.config.aliases
                if fnmatch(pat, alias)]

    def _from_moddep(self, name: str) -> list[KModule]:
        if self.search_moddep(name) is None:
            return []
        m = self.module_from_name(name)
        m._parse_dep()
        return [m]

    def _alias_bin(self, index: str, name: str) -> list[KModule]:
        idx = self.index(index)
        if idx is None:
            return []
        return [self.module_from_alias(name, v) for _, v in idx.search_wild(name)]

    def _from_symbols(self, name: str) -> list[KModule]:
        if not name.startswith("symbol:"):
            return []
        return self._alias_bin(INDEX_SYMBOL, name)

    def _from_commands(self, name: str) -> list[KModule]:
        cfg = self.config
        for pat, cmd in cfg.install:
            if pat == name:
                return [self.module_from_name(name)]
        for pat, cmd in cfg.remove:
            if pat == name:
                return [self.module_from_name(name)]
        return []

    def _from_aliases(self, name: str) -> list[KModule]:
        return self._alias_bin(INDEX_ALIAS, name)

    def _from_builtin(self, name: str) -> list[KModule]:
        idx = self.index(INDEX_BUILTIN)
        if idx is None or not idx.search(name):
            return []
        m = self.module_from_name(name)
        m.builtin = True
        return [m]

    def _from_builtin_alias(self, name: str) -> list[KModule]:
        found = self._alias_bin(INDEX_BUILTIN_ALIAS, name)
        for m in found:
            m.builtin = True
        return found

    def lookup_name(self, name: str) -> KModule | None:
        """modinfo -m: a module name only (modules.dep, then built-ins)."""
        n = alias_normalize(name)
        if n is None:
            return None
        found = self._from_moddep(n) or self._from_builtin(n)
        return found[0] if found else None

    # -- the running kernel ------------------------------------------------------
    def _kmod(self, name: str) -> Any:
        k = self.tool.kernel
        return None if k is None else k.modules.get(name)

    def kernel_state(self, name: str) -> str | None:
        mod = self._kmod(name)
        if mod is not None:
            return mod.state
        k = self.tool.kernel
        if k is not None:
            vfs = getattr(k, "vfs", None)
            if vfs is not None and vfs.is_dir(f"/sys/module/{name}"):
                return "builtin"
        return None

    def kernel_refcnt(self, name: str) -> int | None:
        mod = self._kmod(name)
        return None if mod is None else mod.refcnt

    def kernel_holders(self, name: str) -> list[str]:
        k = self.tool.kernel
        if k is None:
            return []
        vfs = getattr(k, "vfs", None)
        if vfs is not None:
            try:
                return list(vfs.listdir(f"/sys/module/{name}/holders"))
            except Exception:
                return []
        mod = k.modules.get(name)
        return list(mod.holders) if mod is not None else []

    # -- the builtin modinfo ----------------------------------------------------
    def builtin_modinfo(self, name: str) -> list[tuple[str, str]] | None:
        """modules.builtin.modinfo entries of a built-in, None without the file."""
        try:
            with open(os.path.join(self._dir_host, "modules.builtin.modinfo"), "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        out = []
        prefix = name + "."
        for raw in data.split(b"\0"):
            entry = raw.decode("utf-8", "surrogateescape")
            if not entry.startswith(prefix):
                continue
            key, sep, value = entry[len(prefix):].partition("=")
            if sep:
                out.append((key, value))
        return out
