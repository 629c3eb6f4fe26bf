"""The serve event loop: uvloop when importable, asyncio's loop as the fallback."""

from __future__ import annotations

import asyncio
import sys

import pytest

from faregate.server import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_is_used_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    factory = eventloop.uvloop_factory()
    assert factory is uvloop.new_event_loop
    assert eventloop.loop_name(factory) == "uvloop"
    assert eventloop.run(_loop_module(), factory).startswith("uvloop")


def test_asyncio_loop_is_the_fallback_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # a None entry makes `import uvloop` fail
    factory = eventloop.uvloop_factory()
    assert factory is None
    assert eventloop.loop_name(factory) == "asyncio"
    assert eventloop.run(_loop_module(), factory).startswith("asyncio")
