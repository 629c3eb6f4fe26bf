"""Fixtures for the server tests (the `demo` ones live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Demo, DemoFactory, set_server

READ_TIMEOUT_S = 0.5


@pytest.fixture
async def slow_reads(routes_copy: Path, make_demo: DemoFactory) -> Demo:
    """A demo whose upstream read timeout (`server.read_timeout_s`) is short, so a stalled provider fails fast."""
    set_server(routes_copy, read_timeout_s=READ_TIMEOUT_S)
    return await make_demo()
