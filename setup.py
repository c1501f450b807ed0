"""Packaging beyond what pyproject.toml can say: the first-party backends ship in the wheel.

Each backend under ``plugins/`` installs as ``kmodemu_plugins.<name>`` (the
name plugin directories are imported under too, so a checkout and an install
give the same module) and is declared in the ``kmodemu.modules`` entry-point
group in pyproject.toml, exactly as a third-party backend would be. A new
backend (ramster, xen_tmem) is one more entry in ``BACKENDS`` and one more
entry point.
"""

from setuptools import find_packages, setup

BACKENDS = ("zcache", "xen_tmem", "ramster")  # ramster: importable, linked into zcache, no entry point


def _backend_packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    dirs: dict[str, str] = {}
    for name in BACKENDS:
        top = f"kmodemu_plugins.{name}"
        packages.append(top)
        dirs[top] = f"plugins/{name}"
        for sub in find_packages(f"plugins/{name}"):
            packages.append(f"{top}.{sub}")
            dirs[f"{top}.{sub}"] = f"plugins/{name}/{sub.replace('.', '/')}"
    return packages, dirs


_pkgs, _dirs = _backend_packages()
setup(packages=find_packages(include=["kmodemu", "kmodemu.*"]) + _pkgs, package_dir=_dirs)
