"""Fixtures for the security tests: scenario files in a tmp tree, kmodemu in-process."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner


@pytest.fixture
def scn(tmp_path):
    """``scn("dir/name", text)`` writes ``tmp_path/dir/name.scn`` and returns its path."""
    def write(name: str, text: str):
        path = tmp_path / f"{name}.scn"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path
    return write


@pytest.fixture
def cli():
    from kmodemu.cli import main

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return invoke
