"""Load plugins/ramster as ``kmodemu_plugins.ramster`` (the name zcache links it by)."""

from __future__ import annotations

from pathlib import Path

from kmodemu.modules.discovery import import_plugin_dir

import_plugin_dir(Path(__file__).resolve().parents[2] / "plugins" / "ramster")
