"""A live host + issuer simulator (in a background thread) for the emulator CLI tests."""

from __future__ import annotations

import pytest

from tools.certify.stack import ThreadedStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with ThreadedStack(tmp_path_factory.mktemp("stack")) as running:
        yield running
