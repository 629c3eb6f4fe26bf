"""Two gateway instances (separate processes, separate ports) on one Redis and one store: a budget, an rpm
limit and a channel's cooldown hold for the pair as they hold for one (issue 14, "Must show")."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.accounting.keys import KeyStore
from faregate.db import open_db
from faregate.paths import default_routes
from tests.scale.fleet import Fleet, get, post
from tests.server.accounting_fixtures import ADMIN_KEY, PINNED, chat_body

pytestmark = pytest.mark.e2e


@pytest.fixture
async def pair(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Fleet, list[str]]]:
    store = tmp_path / "store.db"
    KeyStore(open_db(store))  # the tables exist before two processes race to make them
    fleet = Fleet(tmp_path, str(store), redis_url)
    try:
        urls = await fleet.start(2)
        yield fleet, urls
    finally:
        fleet.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


def spent_in_log(store: str, key_id: str) -> tuple[int, Decimal]:
    with sqlite3.connect(store) as db:
        rows = db.execute("select cost_usd from usage where key_id = ?", [key_id]).fetchall()
    return len(rows), sum((Decimal(r[0]) for r in rows), Decimal(0))


async def test_budget_rpm_and_cooldowns_hold_across_two_instances(
    pair: tuple[Fleet, list[str]], http: aiohttp.ClientSession
) -> None:
    fleet, (a, b) = pair
    keys = KeyStore(open_db(fleet.store))
    budget = Decimal("0.00005")
    budget_secret, budgeted = keys.create("budget", budget_usd=budget)
    rpm_secret, limited = keys.create("rpm", rpm=5)

    # 50 concurrent requests spread over both: together they spend no more than the budget.
    body = chat_body("Tell me a story about a lighthouse keeper", max_tokens=32)
    results = await asyncio.gather(*(post(http, (a, b)[i % 2], budget_secret, body) for i in range(50)))
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 402}, statuses
    assert 0 < statuses.count(200) < 50
    shown = [await get(http, url, budget_secret, "/v1/key") for url in (a, b)]
    assert shown[0]["data"]["usage"] == shown[1]["data"]["usage"] <= float(budget)

    # rpm 5: exactly 5 of 12 get through across both, the rest 429 with Retry-After.
    started = time.monotonic()
    limited_results = [
        await post(http, (a, b)[i % 2], rpm_secret, chat_body(max_tokens=8)) for i in range(12)
    ]
    assert time.monotonic() - started < 55, "the minute ran out: the count would not mean anything"
    assert [s for s, _, _ in limited_results].count(200) == 5
    assert all(int(h["Retry-After"]) >= 1 for s, h, _ in limited_results if s == 429)

    # A channel that fails on instance A is cooled down on instance B.
    open_secret, _ = keys.create("open")
    status, headers, _ = await post(http, b, open_secret, chat_body(model=PINNED))
    assert status == 200
    channel = headers["X-Faregate-Channel"]
    sim_a = fleet.members[0].sim_origin()
    async with http.post(f"{sim_a}/_sim/openai/fail", json={"status": 500}) as resp:
        assert resp.status == 200
    status, _, body_a = await post(http, a, open_secret, chat_body(model=PINNED))
    assert status in (502, 503), body_a
    deadline = time.monotonic() + 30
    while True:
        health = (await get(http, b, ADMIN_KEY, "/admin/routes"))["health"]
        if (health.get(channel) or {}).get("cooldown_s", 0) > 0:
            break
        assert time.monotonic() < deadline, f"{channel} never cooled on B: {health}"
        await asyncio.sleep(0.1)
    routes_b = await get(http, b, ADMIN_KEY, "/admin/routes")
    assert routes_b["state"]["kind"] == "redis" and routes_b["state"]["up"] is True
    status, _, _ = await post(http, b, open_secret, chat_body(model=PINNED))
    assert status == 503  # B's own simulator is healthy: only the shared cooldown keeps B off it

    # After a graceful stop, the usage log holds every request and agrees with the budget.
    await fleet.stop()
    rows, spent = spent_in_log(fleet.store, budgeted.id)
    assert rows == 50
    assert spent <= budget
    assert Decimal(str(shown[0]["data"]["usage"])) == pytest.approx(spent)
    assert spent_in_log(fleet.store, limited.id)[0] == 12


async def test_two_instances_on_redis_and_postgres_log_every_request_once_and_audit_agrees(
    tmp_path: Path, redis_url: str, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    keys = KeyStore(open_db(postgres_url))
    secret, key = keys.create("team", budget_usd=Decimal("5"), rpm=1000)
    fleet = Fleet(tmp_path, postgres_url, redis_url)
    try:
        a, b = await fleet.start(2)

        def body(i: int) -> dict[str, Any]:
            if i % 7 == 0:
                return chat_body(model="nobody/nothing")  # 404, logged too
            if i % 5 == 0:
                return {**chat_body(max_tokens=12), "stream": True, "stream_options": {"include_usage": True}}
            return chat_body(f"request {i}", max_tokens=12)

        async def one(i: int) -> str:
            async with http.post(
                (a, b)[i % 2] + "/v1/chat/completions",
                json=body(i),
                headers={"Authorization": f"Bearer {secret}"},
            ) as resp:
                await resp.read()
                return resp.headers["X-Faregate-Request-Id"]

        sent = await asyncio.gather(*(one(i) for i in range(40)))
        await fleet.stop()
        assert all(m.proc.returncode == 0 for m in fleet.members)
    finally:
        fleet.kill()
    db = open_db(postgres_url)
    counted = {r["id"]: r["n"] for r in db.query("select id, count(*) n from usage group by id")}
    assert counted == dict.fromkeys(sent, 1)  # every request of both, exactly once
    spent = Decimal(0)
    for r in db.query("select cost_usd from usage where key_id = ?", [key.id]):
        spent += Decimal(r["cost_usd"])
    assert spent > 0
    billed = sum(1 for _ in db.query("select id from usage where status = 200 and cost_pusd > 0"))
    assert billed > 0
    audit = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "faregate.cli",
            "audit",
            "--config",
            str(default_routes()),
            "--store",
            postgres_url,
            "--section",
            "billing",
            "--section",
            "spend",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=fleet.env,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    doc = json.loads(audit.stdout)
    billing = doc["sections"]["billing"]
    assert billing["findings"] == 0 and not doc["failed"], billing
    spend = doc["sections"]["spend"]
    by_key = {r["value"]: r for r in spend["rows"] if r["by"] == "key"}
    assert by_key[key.id]["requests"] == len(sent) and Decimal(by_key[key.id]["spend_usd"]) == spent
    assert doc["store"].startswith("postgresql://")
