"""Declarative data: dialect field tables, transaction types, response codes, cert suites."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def load_toml(name: str) -> dict[str, Any]:
    """One data file of this package (works from a wheel as well as a checkout)."""
    return tomllib.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


def demo_estate() -> dict[str, Any]:
    """The demo merchants and terminals (TEST keys) shared by the host and the emulator."""
    return load_toml("demo_estate.toml")
