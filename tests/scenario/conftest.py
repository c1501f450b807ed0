"""Helpers for the runner's tests: scenario files are written into tmp_path, never
into the test tree (the kmodemu pytest plugin would collect them)."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner


@pytest.fixture
def scn(tmp_path):
    """``scn("name", text)`` writes ``tmp_path/name.scn`` (text dedented) and returns its path."""
    def write(name: str, text: str):
        path = tmp_path / f"{name}.scn"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path
    return write


@pytest.fixture
def cli():
    """Invoke ``kmodemu`` in-process; stdout and stderr stay apart (click >= 8.2)."""
    from kmodemu.cli import main

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return invoke
