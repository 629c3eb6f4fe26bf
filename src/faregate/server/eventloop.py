"""The event loop `serve` runs on: uvloop where it is installed (a Linux/macOS dependency), else asyncio's."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def uvloop_factory() -> LoopFactory | None:
    """uvloop's loop constructor, or None when uvloop is not installed (Windows, or a bare install)."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def loop_name(factory: LoopFactory | None) -> str:
    return "asyncio" if factory is None else "uvloop"


def run(main: Coroutine[Any, Any, T], factory: LoopFactory | None = None) -> T:
    """`asyncio.run(main)` on the loop `factory` makes; asyncio's default loop when it is None."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
