"""Running kmod conformance cases against kmodemu (shared by the tests)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
from pathlib import Path

from kmodemu.kmod import TOOLS, ToolContext
from kmodemu.modules.elf import read_module

#: the kmod 30 conformance data (cases and module trees), kept in the repository: see data/README.md
CONFORMANCE = Path(__file__).resolve().parent / "data"
CASES_FILE = CONFORMANCE / "kmod-cases-public.json"
RELEASE = "6.0.0-emu"
_SRCPOS = re.compile(r"\.\./libkmod/[\w.-]+:\d+ ")


def load_cases() -> dict:
    return json.loads(CASES_FILE.read_text())


def make_tree(tmp: Path, tree: str) -> Path:
    """A writable copy of a conformance tree, indexed by our depmod."""
    dst = tmp / tree
    shutil.copytree(CONFORMANCE / "kmod-tree" / tree, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.chmod(0o755)
    return dst


def run_tool(argv: list[str], *, kernel=None, root: Path, env: dict | None = None):
    out, err = io.StringIO(), io.StringIO()
    ctx = ToolContext(kernel=kernel, root=root, stdout=out, stderr=err, env=dict(env or {}))
    rc = TOOLS[argv[0]](argv, ctx)
    return rc, out.getvalue(), err.getvalue()


def boot_kernel(cmdline: str, tree_root: Path, loaded: list[dict]):
    """A kernel with the case's /proc/cmdline and loaded modules."""
    from kmodemu.kernel.kernel import Kernel
    kernel = Kernel(cmdline=cmdline, release=RELEASE)
    moddir = tree_root / "lib" / "modules" / RELEASE
    paths = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        rel = line.split(":", 1)[0]
        paths[Path(rel).name.split(".", 1)[0].replace("-", "_")] = moddir / rel
    for rec in reversed(loaded):
        decl = read_module(paths[rec["name"]])
        permanent = "[permanent]" in rec.get("proc_modules_line", "")
        decl = dataclasses.replace(decl, size=rec["coresize"],
                                   init=(lambda ctx: None) if permanent else decl.init,
                                   exit=None if permanent else decl.exit)
        mod = kernel.modules.load(decl, "")
        extra = rec["refcnt"] - len(rec["holders"])
        if extra > 0:
            mod.refs += extra
    return kernel


def run_case(case: dict, tmp: Path, trees: dict[str, Path]) -> tuple[int, str, str]:
    tree_root = trees[case["tree"]]
    machine_root = tmp / "machine"
    for d in ("etc/modprobe.d", "lib/modprobe.d", "run/modprobe.d"):
        (machine_root / d).mkdir(parents=True, exist_ok=True)
    subst = {"@ROOT@": str(tree_root), "@WORK@": str(tmp / "work")}
    (tmp / "work").mkdir(exist_ok=True)
    for cd in case.get("config_dirs", []):
        d = tmp / f"conf-{cd['label']}"
        d.mkdir()
        for name, text in cd["files"].items():
            (d / name).write_text(text)
        subst[f"@CONF:{cd['label']}@"] = str(d)
    for where, files in (case.get("system_config") or {}).items():
        d = machine_root / where.strip("/")
        d.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (d / name).write_text(text)
    argv = []
    for a in case["argv"]:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    kernel = boot_kernel(case.get("kernel_cmdline", ""), tree_root, case.get("loaded", []))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/root"}
    env.update(case.get("env") or {})
    rc, out, err = run_tool(argv, kernel=kernel, root=machine_root, env=env)
    for k, v in sorted(subst.items(), key=lambda kv: -len(kv[1])):
        out = out.replace(v, k)
        err = err.replace(v, k)
    return rc, out, err




def normalise(text: str) -> str:
    """Drop libkmod's own source positions (a build artefact)."""
    return _SRCPOS.sub("", text)
