"""The catalog pick-up stopping while its thread queries the store: the store closes only after that query
(closing a SQLite connection another thread is querying is undefined behaviour: a crash at shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from faregate.pipeline.runtime import Runtime
from faregate.server import fleet_sync


async def test_a_stop_mid_query_closes_the_store_after_the_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    querying, release = threading.Event(), threading.Event()
    events: list[str] = []

    class Store:
        def close(self) -> None:
            events.append("close")
            release.set()  # a close that does not wait for the query lets it end after: out of order

    def latest_change(db: Any) -> int:
        querying.set()
        release.wait(30)
        events.append("query done")
        return 0

    monkeypatch.setattr(fleet_sync, "open_db", lambda store: Store())
    monkeypatch.setattr(fleet_sync, "latest_change", latest_change)
    task = asyncio.create_task(fleet_sync._poll(cast(Runtime, None), tmp_path / "store.db"))
    assert await asyncio.to_thread(querying.wait, 30)
    task.cancel()
    await asyncio.sleep(0.2)  # room for a close that would not wait (none here: the query is still on)
    assert events == []
    release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert events == ["query done", "close"]
