"""The one plugin loader: entry points, module directories, single files, and failures reported."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

import pytest

from kmodemu.modules import discovery
from kmodemu.modules.discovery import (
    ENTRY_POINT_GROUP,
    ModuleRegistry,
    import_plugin_dir,
    import_plugin_file,
    plugin_package,
)

REPO = Path(__file__).resolve().parents[2]


def test_zcache_is_found_through_its_entry_point():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert eps["zcache"] == "kmodemu_plugins.zcache"
    pkg = plugin_package("zcache")
    assert pkg.__name__ == "kmodemu_plugins.zcache"
    reg = ModuleRegistry()
    assert reg.errors == []
    assert reg.get("zcache").description == \
        "In-kernel transcendent memory compressed cache (zcache2)"
    assert ModuleRegistry(entry_points=False).get("zcache") is None


def test_unknown_entry_point_is_a_lookup_error():
    with pytest.raises(LookupError, match="no kmodemu.modules entry point named 'nope'"):
        plugin_package("nope")


def test_a_broken_entry_point_is_reported_and_the_others_still_load(monkeypatch):
    real = list(discovery._entry_points())
    broken = importlib.metadata.EntryPoint("aaa_broken", "kmodemu_no_such_backend",
                                           ENTRY_POINT_GROUP)
    monkeypatch.setattr(discovery, "_entry_points", lambda: iter([broken, *real]))
    reg = ModuleRegistry()
    assert reg.errors == ["entry point aaa_broken (kmodemu_no_such_backend): "
                          "ModuleNotFoundError: No module named 'kmodemu_no_such_backend'"]
    assert reg.get("zcache") is not None
    with pytest.raises(ModuleNotFoundError):  # plugin_package never substitutes a stand-in
        monkeypatch.setattr(discovery, "_entry_points", lambda: iter([broken]))
        plugin_package("aaa_broken")


def test_a_checkout_directory_overrides_the_installed_package(tmp_path):
    """A copy of plugins/zcache on --module-path: its own module, its declaration wins."""
    dev = tmp_path / "zcache"
    shutil.copytree(REPO / "plugins" / "zcache", dev, ignore=shutil.ignore_patterns("__pycache__"))
    main = dev / "main.py"
    main.write_text(main.read_text().replace(
        'description="In-kernel transcendent memory compressed cache (zcache2)"',
        'description="zcache under development"'))
    mod = import_plugin_dir(dev)
    assert mod is not plugin_package("zcache")
    assert mod.__name__.startswith("kmodemu_plugins._dir") and mod.__name__.endswith("_zcache")
    assert import_plugin_dir(dev) is mod                      # the same directory: one module
    reg = ModuleRegistry([tmp_path])
    assert reg.errors == []
    assert reg.get("zcache").description == "zcache under development"
    # the installed package is untouched
    assert ModuleRegistry().get("zcache").description.startswith("In-kernel")


def test_the_installed_directory_is_the_installed_module():
    assert import_plugin_dir(REPO / "plugins" / "zcache") is plugin_package("zcache")


def test_single_file_plugins_and_their_failures(tmp_path):
    good = tmp_path / "onefile.py"
    good.write_text("from kmodemu.tmem import ModuleDecl, hookimpl\n"
                    "@hookimpl\n"
                    "def kmodemu_modules():\n"
                    "    return [ModuleDecl(name='onefile')]\n")
    mod = import_plugin_file(good)
    assert [d.name for d in mod.kmodemu_modules()] == ["onefile"]
    assert import_plugin_file(good) is mod
    bad = tmp_path / "badfile.py"
    bad.write_text("raise RuntimeError('init of badfile')\n")
    with pytest.raises(RuntimeError, match="init of badfile"):
        import_plugin_file(bad)
    assert "kmodemu_test_plugins.badfile" not in sys.modules  # a failed import leaves nothing


def test_a_broken_directory_plugin_is_reported(tmp_path):
    pkg = tmp_path / "halfdone"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import kmodemu_no_such_dependency\n")
    reg = ModuleRegistry([tmp_path])
    assert len(reg.errors) == 1 and reg.errors[0].startswith(f"{pkg}: ModuleNotFoundError")
    assert reg.get("zcache") is not None
