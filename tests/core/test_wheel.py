"""The backends ship: a wheel built from this tree, installed into a fresh venv, has zcache.

The wheel is built from a copy of the sources (the tree is left untouched),
installed with no dependencies and no index into a venv of its own, and
zcache is then found the way a user's install finds it: through the
``kmodemu.modules`` entry point, by the real ``kmodemu`` executable of that
venv. The venv reaches kmodemu's dependencies (pluggy, click, zstandard)
through a path file naming the running interpreter's site-packages, so no
network is needed; kmodemu itself and the plugins come from the wheel only.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from kmodemu.machine.testing import stop_all_under

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("kmodemu", "plugins", "pyproject.toml", "setup.py", "README.md")


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the wheel of this tree (plus a path to the test interpreter's deps)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                  "--no-index", "-w", str(base / "dist"), str(src)])
    assert built.returncode == 0, built.stderr
    wheels = list((base / "dist").glob("kmodemu-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                 "--no-index", str(wheels[0])])
    assert inst.returncode == 0, inst.stderr
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                   .stdout.strip())
    # a plain path line: the directory joins sys.path, its own .pth files (our editable
    # install of kmodemu) are not run
    deps = {sysconfig.get_path("purelib"), *site.getsitepackages()}
    (purelib / "zz_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return env_dir


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["XDG_STATE_HOME"] = str(tmp)
    return env


def test_wheel_holds_kmodemu_and_zcache_and_nothing_of_the_tree(installed, tmp_path):
    py = installed / "bin" / "python"
    res = _run([str(py), "-c",
                "import importlib.metadata as md, kmodemu, kmodemu_plugins.zcache as z\n"
                "print(kmodemu.__file__); print(z.__file__)\n"
                "print([(e.name, e.value) for e in md.entry_points(group='kmodemu.modules')])"],
               cwd=tmp_path, env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    kmod_file, zcache_file, eps = res.stdout.splitlines()
    assert Path(kmod_file).is_relative_to(installed)
    assert Path(zcache_file).is_relative_to(installed)
    assert Path(zcache_file).parent.name == "zcache"
    assert Path(zcache_file).parent.parent.name == "kmodemu_plugins"
    assert eps == "[('xen_tmem', 'kmodemu_plugins.xen_tmem'), ('zcache', 'kmodemu_plugins.zcache')]"


def test_installed_kmodemu_finds_zcache_through_its_entry_point(installed, tmp_path):
    exe = installed / "bin" / "kmodemu"
    try:
        res = _run([str(exe), "modinfo", "zcache"], cwd=tmp_path, env=_env(tmp_path))
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] == ("filename:       /lib/modules/3.10.0-kmodemu/kernel/drivers/staging/"
                            "zcache/zcache.ko")
        assert "description:    In-kernel transcendent memory compressed cache (zcache2)" in lines
        assert "parm:           zpool:allocator: zbud (Linux) or zsmalloc (denser) (charp)" in lines
        ins = _run([str(exe), "insmod", "zcache"], cwd=tmp_path, env=_env(tmp_path))
        assert (ins.returncode, ins.stdout) == (0, ""), ins.stderr
        dm = _run([str(exe), "dmesg", "-t"], cwd=tmp_path, env=_env(tmp_path))
        assert "zcache: using zstd compressor" in dm.stdout.splitlines()
    finally:
        stop_all_under(tmp_path)
