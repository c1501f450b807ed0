"""depmod and ``modprobe --show-depends`` over a real Debian module tree.

Downloads a Debian ``linux-image`` package into a cache outside the repo
(``~/.cache/kmodemu``), then times our depmod and --show-depends for every
module, and the real kmod on the same tree when it is installed. Prints the
times and the ratio (ours / kmod). Skips politely without apt.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("KMODEMU_CACHE", Path.home() / ".cache" / "kmodemu"))
PACKAGE_PREFIX = "linux-image-"


def find_package() -> str | None:
    try:
        out = subprocess.run(["apt-cache", "search", "--names-only", "^linux-image-[0-9].*-cloud-amd64$"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = sorted(line.split()[0] for line in out.splitlines() if line.strip())
    return names[-1] if names else None


def get_tree() -> tuple[Path, str] | None:
    """(root, release) of an unpacked linux-image package, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for d in sorted(CACHE.glob("tree-*")):
        rels = list((d / "lib" / "modules").glob("*"))
        if rels:
            return d, rels[0].name
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    pkg = find_package()
    if pkg is None:
        return None
    dl = CACHE / "deb"
    dl.mkdir(exist_ok=True)
    r = subprocess.run(["apt-get", "download", pkg], cwd=dl, capture_output=True, timeout=600)
    debs = list(dl.glob(f"{pkg}_*.deb"))
    if r.returncode != 0 or not debs:
        return None
    tree = CACHE / f"tree-{pkg}"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True)
    rel = next((tree / "lib" / "modules").glob("*")).name
    return tree, rel


def ours(argv: list[str], root: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kmodemu.kmod import TOOLS, ToolContext
    out = io.StringIO()
    ctx = ToolContext(kernel=None, root=root, stdout=out, stderr=io.StringIO(), env={})
    TOOLS[argv[0]](argv, ctx)
    return out.getvalue()


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    got = get_tree()
    if got is None:
        print("bench_kmod: skipped (no apt/dpkg or no linux-image package available)")
        return 0
    tree, rel = got
    moddir = tree / "lib" / "modules" / rel
    names = sorted(p.name.split(".", 1)[0].replace("-", "_") for p in moddir.rglob("*.ko*"))
    empty = CACHE / "empty-conf"
    empty.mkdir(exist_ok=True)
    real = shutil.which("depmod") and shutil.which("modprobe")

    t_ours = timed(lambda: ours(["depmod", "-b", str(tree), rel], tree), 3)
    print(f"depmod over {len(names)} modules: kmodemu {t_ours:.3f}s", end="")
    if real:
        t_real = timed(lambda: subprocess.run(["depmod", "-b", str(tree), rel], check=True), 3)
        print(f", kmod {t_real:.3f}s, ratio {t_ours / t_real:.1f}x")
    else:
        print(" (kmod not installed: no ratio)")

    def show_ours() -> None:
        for n in names:
            ours(["modprobe", "-C", str(empty), "-d", str(tree), "-S", rel, "--show-depends", n], tree)

    t_ours = timed(show_ours, 1)
    print(f"modprobe --show-depends x{len(names)}: kmodemu {t_ours:.3f}s", end="")
    if real:
        def show_real() -> None:
            for n in names:
                subprocess.run(["modprobe", "-C", str(empty), "-d", str(tree), "-S", rel,
                                "--show-depends", n], capture_output=True)
        t_real = timed(show_real, 1)
        print(f", kmod {t_real:.3f}s (one process each), ratio {t_ours / t_real:.2f}x")
    else:
        print(" (kmod not installed: no ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
