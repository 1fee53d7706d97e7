"""Fixtures for the issuer simulator tests (helpers live in tools.issuer_sim.testing)."""

from __future__ import annotations

import pytest

from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.testing import Builder


@pytest.fixture
def config(tmp_path) -> SimConfig:
    return SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0", seed=7)


@pytest.fixture
def b() -> Builder:
    return Builder()
