"""Nothing lost across SIGTERM under load: every request the gateway answered (with any status) has its row
in the usage log, and the process exits cleanly (DESIGN "Keys, limits, accounting": nothing is lost on a
clean shutdown)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import GatewayProcess, clean_env

pytestmark = pytest.mark.e2e

TOTAL = 200
CONCURRENCY = 20
SIGTERM_AFTER = 80  # answered requests before the signal
SIM_DELAY_S = 0.05  # every upstream answer takes a moment, so requests are in flight at the signal


def body(i: int) -> dict[str, Any]:
    msg = {"role": "user", "content": f"Request {i}: say something short"}
    if i % 5 == 0:  # some streams, whose status is sent before the answer is complete
        return {
            "messages": [msg],
            "max_tokens": 24,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    if i % 7 == 0:  # and some errors: an unknown model is answered 404 and logged too
        return {"model": "nobody/nothing", "messages": [msg]}
    return {"model": "auto", "messages": [msg], "max_tokens": 24}


async def test_nothing_is_lost_across_sigterm_under_load(tmp_path: Path) -> None:
    store = tmp_path / "tmp.db"
    gw = GatewayProcess.demo(tmp_path, store, clean_env())
    answered: list[tuple[int, str | None]] = []  # (status, X-Faregate-Request-Id) of every answered request
    unanswered: list[str] = []
    try:
        url = await gw.ready()
        sim = gw.sim_origin()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.get(f"{sim}/_sim/health") as resp:
                providers = (await resp.json())["providers"]
            for name in providers:
                async with http.post(f"{sim}/_sim/{name}/slow", json={"delay_s": SIM_DELAY_S}) as resp:
                    assert resp.status == 200
            limit = asyncio.Semaphore(CONCURRENCY)
            signalled = asyncio.Event()
            in_flight_at_signal = 0
            in_flight = 0

            async def one(i: int) -> None:
                nonlocal in_flight, in_flight_at_signal
                async with limit:
                    in_flight += 1
                    try:
                        async with http.post(url + "/v1/chat/completions", json=body(i)) as resp:
                            rid = resp.headers.get("X-Faregate-Request-Id")
                            await resp.read()
                            answered.append((resp.status, rid))
                    except (TimeoutError, aiohttp.ClientError) as e:
                        unanswered.append(type(e).__name__)
                    finally:
                        in_flight -= 1
                    if len(answered) >= SIGTERM_AFTER and not signalled.is_set():
                        signalled.set()
                        in_flight_at_signal = in_flight
                        gw.proc.send_signal(signal.SIGTERM)

            started = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(TOTAL)))
        assert signalled.is_set()
        code = await asyncio.to_thread(gw.proc.wait, 30)
        assert time.monotonic() - started < 30
        assert code == 0, gw.output
    finally:
        gw.stop()

    con = sqlite3.connect(store)
    rows = {rid: status for rid, status in con.execute("select id, status from usage")}
    con.close()
    assert len(answered) >= SIGTERM_AFTER and in_flight_at_signal > 0
    assert len(answered) + len(unanswered) == TOTAL
    assert all(rid for _, rid in answered), "every answer carries its request id"
    ok = sum(status == 200 for status, _ in answered)
    assert ok > 0 and len(rows) >= ok
    missing = [(status, rid) for status, rid in answered if rid not in rows]
    assert not missing, f"answered but not in the usage log: {missing[:5]} ({len(missing)} in all)"
    assert all(rows[rid] == status for status, rid in answered if rid)  # the status the client saw
    assert "shutting down" in gw.output
