"""Hot reload: `POST /admin/reload`, the file watch, a broken file keeping the old table, and a reload under
load (100 concurrent requests across a good change and a broken file, every one answered)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.server.options import ServeOptions
from tests.conftest import Demo, DemoFactory, edit_routes
from tests.server.helpers import HELLO, client

OLD = ("openrouter", "meta-llama/llama-3.1-8b-instruct")  # the shipped `everything-else` rule's first channel
NEW = ("openai", "openai/gpt-6-luna")
WATCH_LIMIT_S = 5.0


def use_only_luna(routes: Path) -> None:
    """The `everything-else` rule of the default route now uses one model."""

    def edit(doc: Any) -> None:
        rule = doc["routes"]["default"][-1]
        assert rule["name"] == "everything-else"
        rule["use"] = [NEW[1]]

    edit_routes(routes, edit)


def break_with_unknown_model(routes: Path) -> tuple[int, int]:
    """Valid YAML naming an unknown model in `everything-else`; returns where (1-based line and column)."""
    edit_routes(routes, lambda doc: doc["routes"]["default"][-1].__setitem__("use", ["acme/nope", NEW[1]]))
    lines = routes.read_text().splitlines()
    line = next(i for i, s in enumerate(lines, 1) if "acme/nope" in s)
    return line, lines[line - 1].index("acme/nope") + 1


def break_yaml_syntax(routes: Path) -> tuple[int, int]:
    text = routes.read_text()
    routes.write_text(text + "oops: [unclosed\n")
    return len(text.splitlines()) + 2, 1


async def served_by(demo: Demo, **extra: Any) -> tuple[str, str]:
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(model="auto", messages=HELLO, **extra)
    return raw.headers["X-Faregate-Provider"], raw.headers["X-Faregate-Model"]


async def reload(demo: Demo) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(demo.url) as http, http.post("/admin/reload") as resp:
        return resp.status, await resp.json()


async def generation(demo: Demo) -> int:
    async with aiohttp.ClientSession(demo.url) as http, http.get("/healthz") as resp:
        return int((await resp.json())["generation"])


@pytest.fixture
async def unwatched(make_demo: DemoFactory) -> Demo:
    """A demo without the file watch: only `POST /admin/reload` reloads."""
    return await make_demo(options=ServeOptions(watch_interval_s=0))


async def test_post_reload_switches_behaviour(unwatched: Demo) -> None:
    demo = unwatched
    assert await served_by(demo) == OLD
    use_only_luna(demo.routes_path)
    assert await served_by(demo) == OLD  # nothing changes before the reload
    status, body = await reload(demo)
    assert (status, body) == (200, {"reloaded": True, "generation": 1, "warnings": []})
    assert await served_by(demo) == NEW
    assert await generation(demo) == 1


@pytest.mark.parametrize("breakage", [break_with_unknown_model, break_yaml_syntax])
async def test_a_broken_file_is_rejected_with_positions_and_the_old_table_serves(
    unwatched: Demo, breakage: Any
) -> None:
    demo = unwatched
    use_only_luna(demo.routes_path)
    assert (await reload(demo))[0] == 200
    line, col = breakage(demo.routes_path)
    status, body = await reload(demo)
    assert status == 422
    assert body["reloaded"] is False and body["generation"] == 1
    assert body["errors"], body
    first = body["errors"][0]
    assert set(first) == {"file", "line", "column", "message"}
    assert first["file"].endswith("routes.yaml")
    assert (first["line"], first["column"]) == (line, col), first
    assert await served_by(demo) == NEW  # the last good table keeps serving
    assert await generation(demo) == 1


async def test_the_file_watch_reloads_without_a_call(demo: Demo) -> None:
    assert await served_by(demo) == OLD
    use_only_luna(demo.routes_path)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WATCH_LIMIT_S
    while await generation(demo) == 0:
        assert loop.time() < deadline, "the file watch did not pick up the edit"
        await asyncio.sleep(0.05)
    assert await served_by(demo) == NEW


async def test_the_file_watch_keeps_the_old_table_on_a_broken_file(demo: Demo) -> None:
    break_yaml_syntax(demo.routes_path)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WATCH_LIMIT_S
    while not demo.runtime.last_issues:
        assert loop.time() < deadline, "the file watch did not try the edit"
        await asyncio.sleep(0.05)
    assert await generation(demo) == 0
    assert await served_by(demo) == OLD


async def test_reload_under_load(demo: Demo) -> None:
    """100 concurrent requests: half in flight across a good change, half started after it and in flight
    across a broken file and its repair. Every one is answered 200; in-flight requests finish on the table
    they started with, and requests started after the good change use the new rule."""
    for provider in (OLD[0], NEW[0]):
        demo.sim.slow(provider, 0.2)  # keep requests in flight while the file changes
    good = demo.routes_path.read_text()
    async with client(demo) as c:

        async def one() -> tuple[int, str, str]:
            raw = await c.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
            return raw.status_code, raw.headers["X-Faregate-Provider"], raw.headers["X-Faregate-Model"]

        async def in_flight(n: int) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while len(demo.sim.received) < n:
                assert loop.time() < deadline
                await asyncio.sleep(0.005)

        before = [asyncio.create_task(one()) for _ in range(50)]
        after: list[asyncio.Task[tuple[int, str, str]]] = []
        try:
            await in_flight(50)  # every one of them has reached the upstream on the old table
            use_only_luna(demo.routes_path)
            assert (await reload(demo))[0] == 200
            changed = demo.routes_path.read_text()

            after += [asyncio.create_task(one()) for _ in range(50)]
            await in_flight(75)
            break_with_unknown_model(demo.routes_path)
            assert (await reload(demo))[0] == 422
            await in_flight(100)
            demo.routes_path.write_text(changed)
            assert (await reload(demo))[0] == 200

            answers_before = await asyncio.gather(*before)
            answers_after = await asyncio.gather(*after)
        finally:
            for task in before + after:
                task.cancel()
            await asyncio.gather(*before, *after, return_exceptions=True)

    assert good != changed
    assert all(status == 200 for status, _, _ in answers_before + answers_after)
    assert {(p, m) for _, p, m in answers_before} == {OLD}
    assert {(p, m) for _, p, m in answers_after} == {NEW}
    assert await served_by(demo) == NEW
