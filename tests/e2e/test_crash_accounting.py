"""Crash-safe accounting: `faregate serve` killed with SIGKILL under load loses no usage row of a request
whose answer was sent, and no pattern of kills lets a key spend past its budget (README "Crash-safe
accounting"). Real subprocesses, as in test_shutdown.py; the kill comes at a moment chosen by answers
received, never by a timer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.accounting.keys import KeyStore
from faregate.db import open_db
from tests.processes import GatewayProcess, clean_env
from tests.server.accounting_fixtures import PINNED

pytestmark = pytest.mark.e2e

SIM_DELAY_S = 0.05  # every upstream answer takes a moment, so requests are in flight at the kill


def body(i: int) -> dict[str, Any]:
    msg = {"role": "user", "content": f"Request {i}: say something short"}
    if i % 3 == 0:  # streams: their closing events are the answer's last bytes
        return {"model": PINNED, "messages": [msg], "max_tokens": 16, "stream": True}
    if i % 11 == 0:  # errors are answers too
        return {"model": "nobody/nothing", "messages": [msg]}
    return {"model": PINNED, "messages": [msg], "max_tokens": 16}


def usage_rows(store: Path) -> dict[str, tuple[int, Decimal, str | None]]:
    con = sqlite3.connect(store)
    try:
        return {
            rid: (status, Decimal(cost or "0"), key_id)
            for rid, status, cost, key_id in con.execute("select id, status, cost_usd, key_id from usage")
        }
    finally:
        con.close()


async def slow_simulator(gw: GatewayProcess, http: aiohttp.ClientSession) -> None:
    sim = gw.sim_origin()
    async with http.get(f"{sim}/_sim/health") as resp:
        providers = (await resp.json())["providers"]
    for name in providers:
        async with http.post(f"{sim}/_sim/{name}/slow", json={"delay_s": SIM_DELAY_S}) as resp:
            assert resp.status == 200


class Burst:
    """`total` requests, `concurrency` at a time; SIGKILL once `kill_after` answers have been read
    (`ok_only`: 200s, or as soon as a 402 says the budget is spent)."""

    def __init__(
        self, gw: GatewayProcess, headers: dict[str, str], kill_after: int, *, ok_only: bool = False
    ) -> None:
        self.gw, self.headers, self.kill_after, self.ok_only = gw, headers, kill_after, ok_only
        self.answered: list[tuple[int, str, Decimal]] = []  # status, request id, cost the client was told
        self.unanswered = 0
        self.killed = asyncio.Event()

    async def one(self, http: aiohttp.ClientSession, url: str, i: int, limit: asyncio.Semaphore) -> None:
        async with limit:
            if self.killed.is_set():
                return
            try:
                async with http.post(
                    url + "/v1/chat/completions", json=body(i), headers=self.headers
                ) as resp:
                    raw = await resp.read()  # the whole answer: a stream to its end
                    rid = resp.headers["X-Faregate-Request-Id"]
                    cost = Decimal(resp.headers.get("X-Faregate-Cost", "0"))
                    if b"x-faregate" in raw and resp.content_type == "text/event-stream":
                        cost = stream_cost(raw)
                    self.answered.append((resp.status, rid, cost))
            except (TimeoutError, aiohttp.ClientError):
                self.unanswered += 1
            statuses = [s for s, _, _ in self.answered]
            counted = statuses.count(200) if self.ok_only else len(statuses)
            refused = self.ok_only and 402 in statuses  # the budget is spent: kill with the rest in flight
            if (counted >= self.kill_after or refused) and not self.killed.is_set():
                self.killed.set()
                self.gw.proc.send_signal(signal.SIGKILL)

    async def run(self, url: str, total: int, concurrency: int) -> None:
        limit = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(*(self.one(http, url, i, limit) for i in range(total)))
        if self.killed.is_set():
            await asyncio.to_thread(self.gw.proc.wait, 30)


def stream_cost(raw: bytes) -> Decimal:
    """The cost the final chunk of a chat stream reports (`usage.cost`)."""
    for line in raw.decode().splitlines():
        if line.startswith("data: {") and '"x-faregate"' in line:
            usage = json.loads(line[6:]).get("usage") or {}
            return Decimal(str(usage.get("cost", 0)))
    return Decimal(0)


async def start(tmp_path: Path, store: Path, run: int, **env: str) -> tuple[GatewayProcess, str]:
    cwd = tmp_path / f"run{run}"
    cwd.mkdir()
    gw = GatewayProcess.demo(cwd, store, clean_env(**env))
    return gw, await gw.ready()


async def test_a_sigkill_under_load_loses_no_row_of_an_answered_request(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    answered: list[tuple[int, str, Decimal]] = []
    for run in range(2):
        gw, url = await start(tmp_path, store, run)
        try:
            async with aiohttp.ClientSession() as http:
                await slow_simulator(gw, http)
            burst = Burst(gw, {}, kill_after=60)
            await burst.run(url, total=200, concurrency=24)
            assert burst.killed.is_set() and gw.proc.returncode == -signal.SIGKILL
            answered += burst.answered
        finally:
            gw.stop()
    gw, _ = await start(tmp_path, store, 2)  # the start after the last kill replays its journal
    gw.stop()
    rows = usage_rows(store)
    assert len(answered) >= 120
    missing = [(status, rid) for status, rid, _ in answered if rid not in rows]
    assert not missing, (
        f"answered but not in the usage log: {missing[:5]} ({len(missing)} of {len(answered)})"
    )
    assert [rows[rid][0] for _, rid, _ in answered] == [s for s, _, _ in answered], (
        "the status the client saw"
    )
    assert not list((tmp_path / "store.db.journal").glob("*.jsonl")), "replayed journals are deleted"


async def test_repeated_kills_never_let_a_key_spend_past_its_budget(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    budget = Decimal("0.00012")  # about ten requests at PINNED's prices: each reserves its worst case
    secret, key = KeyStore(open_db(store)).create("crash", budget_usd=budget)
    headers = {"Authorization": f"Bearer {secret}"}
    told = Decimal(0)
    answered_ok = 0
    for run in range(4):
        gw, url = await start(tmp_path, store, run, FAREGATE_AUTH="keys")
        try:
            async with aiohttp.ClientSession() as http:
                await slow_simulator(gw, http)
            # killed after a few answers, or at the first 402, with more requests in flight every time
            burst = Burst(gw, headers, kill_after=6, ok_only=True)
            await burst.run(url, total=30, concurrency=4)
            told += sum((c for s, _, c in burst.answered if s == 200), Decimal(0))
            answered_ok += sum(s == 200 for s, _, _ in burst.answered)
        finally:
            gw.stop()
    gw, _ = await start(tmp_path, store, 9, FAREGATE_AUTH="keys")
    gw.stop()
    rows = usage_rows(store)
    spent = sum((cost for _, cost, kid in rows.values() if kid == key.id), Decimal(0))
    assert answered_ok >= 6, "the first run served answers before its kill"
    assert told <= budget, f"clients were served ${told} on a ${budget} budget"
    assert spent <= budget, f"the usage log charged ${spent} on a ${budget} budget"
