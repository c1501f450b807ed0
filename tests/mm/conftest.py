"""Fixtures for the memory-model tests: booted kernels and a fake tmem backend."""

from __future__ import annotations

import pytest

from .fakes import FakeBackend, boot


@pytest.fixture
def kernel():
    return boot("3.10")


@pytest.fixture
def kernel39():
    return boot("3.9")


@pytest.fixture
def backend():
    return FakeBackend()
