"""Fixtures for the server tests (the `demo` ones live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Demo, DemoFactory, edit_routes, set_server

READ_TIMEOUT_S = 0.5
RESPONSES_MODEL = "openai/gpt-6-luna"


@pytest.fixture
async def slow_reads(routes_copy: Path, make_demo: DemoFactory) -> Demo:
    """A demo whose upstream read timeout (`server.read_timeout_s`) is short, so a stalled provider fails fast."""
    set_server(routes_copy, read_timeout_s=READ_TIMEOUT_S)
    return await make_demo()


@pytest.fixture
async def small_context(routes_copy: Path, make_demo: DemoFactory) -> Demo:
    """openai's gpt-4o-mini offering with a 3000-token context; openrouter's keeps the catalog's (the
    middle-out and `truncation: auto` tests)."""
    edit_routes(
        routes_copy,
        lambda doc: doc["models"]["openai/gpt-4o-mini"]["offerings"]["openai"].update(context=3000),
    )
    return await make_demo()


@pytest.fixture
async def responses_demo(routes_copy: Path, make_demo: DemoFactory) -> Demo:
    """The demo with one offering, openai's gpt-6-luna (a reasoning model), on `api: openai-responses`."""

    def edit(doc: Any) -> None:
        offerings = doc.setdefault("models", {}).setdefault(RESPONSES_MODEL, {}).setdefault("offerings", {})
        offerings["openai"] = {"api": "openai-responses"}

    edit_routes(routes_copy, edit)
    return await make_demo()
