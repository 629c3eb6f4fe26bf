"""Stored responses with `auth: keys` and a SQLite store: visible only to the key that made them, kept in
the usage store's `responses` table across restarts, their cost in the usage log and recomputed by the audit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from faregate.accounting.response_store import ResponseStore
from faregate.accounting.tokens import TokenCounter
from faregate.cli import main
from faregate.db import open_db
from faregate.paths import catalog_dir
from tests.server.accounting_fixtures import KeyedDemo, start_keyed_demo


@pytest.fixture
async def keyed(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[KeyedDemo]:
    kd, stop = await start_keyed_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


def sdk(kd: KeyedDemo, secret: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=kd.url + "/v1", api_key=secret, max_retries=0, timeout=20)


async def test_another_key_cannot_read_continue_or_delete(keyed: KeyedDemo) -> None:
    alice, _ = keyed.create_key("alice")
    bob, _ = keyed.create_key("bob")
    async with sdk(keyed, alice) as a, sdk(keyed, bob) as b:
        resp = await a.responses.create(model="auto", input="a secret plan")
        with pytest.raises(openai.NotFoundError):
            await b.responses.retrieve(resp.id)
        with pytest.raises(openai.NotFoundError):
            await b.responses.input_items.list(resp.id)
        with pytest.raises(openai.NotFoundError):
            await b.responses.delete(resp.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await b.responses.create(model="auto", input="go on", previous_response_id=resp.id)
        assert caught.value.code == "previous_response_not_found"
        assert (await a.responses.retrieve(resp.id)).output_text == resp.output_text  # still there for alice


async def test_stored_responses_survive_a_restart_and_are_audited(
    keyed: KeyedDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    secret, key = keyed.create_key("owner")
    async with sdk(keyed, secret) as c:
        first = await c.responses.create(model="auto", input="remember the word heron")
        second = await c.responses.create(model="auto", input="and now?", previous_response_id=first.id)
    store = ResponseStore(open_db(keyed.store))  # what a restarted gateway opens
    got = store.get(second.id, key.id)
    assert got is not None and got.previous_id == first.id and got.key_id == key.id
    conversation = store.conversation(second.id, key.id)
    assert conversation is not None
    texts = json.dumps(conversation)
    assert "remember the word heron" in texts and "and now?" in texts and first.output_text in texts
    assert store.get(second.id, None) is None  # an anonymous caller sees nothing

    await keyed.accounts.usage.aflush()
    rows = {r.id: r for r in keyed.accounts.usage.rows()}
    record = rows[got.request_id]
    assert record.endpoint == "responses"
    xf: Any = (second.model_extra or {})["x-faregate"]
    assert str(record.cost_usd) == str(xf["savings"]["actual_cost"]) or float(
        record.cost_usd
    ) == pytest.approx(xf["savings"]["actual_cost"])
    args = ["audit", "--config", str(keyed.demo.routes_path), "--catalog", str(catalog_dir())]
    main([*args, "--store", str(keyed.store), "--json", "--section", "billing"])
    billing = json.loads(capsys.readouterr().out)["sections"]["billing"]
    assert billing["rows"] == []
    assert any("2 answered requests recomputed" in n for n in billing["notes"])


async def test_the_audit_flags_a_responses_cost_that_does_not_match_its_price(
    keyed: KeyedDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit recomputes a Responses request's cost from its tokens and price: a recorded cost altered
    after the fact is reported, naming the request."""
    secret, _ = keyed.create_key("owner")
    async with sdk(keyed, secret) as c:
        raw = await c.responses.with_raw_response.create(model="auto", input="what does it cost?")
    rid = raw.headers["X-Faregate-Request-Id"]
    await keyed.accounts.usage.aflush()
    db = open_db(keyed.store)
    [row] = list(db.query("SELECT endpoint, cost_usd FROM usage WHERE id = ?", [rid]))
    assert row["endpoint"] == "responses" and row["cost_usd"] == raw.headers["X-Faregate-Cost"]
    db.conn.execute("UPDATE usage SET cost_usd = '0.5' WHERE id = ?", [rid])
    db.conn.commit()
    args = ["audit", "--config", str(keyed.demo.routes_path), "--catalog", str(catalog_dir())]
    code = main([*args, "--store", str(keyed.store), "--json", "--section", "billing"])
    billing = json.loads(capsys.readouterr().out)["sections"]["billing"]
    [flagged] = billing["rows"]
    assert code != 0 and flagged["request_id"] == rid and "differs" in flagged["issue"]
    assert flagged["recorded"] == "0.5" and Decimal(flagged["expected"]) == Decimal(
        raw.headers["X-Faregate-Cost"]
    )


def test_retention_and_purge(tmp_path: Path) -> None:
    store = ResponseStore(open_db(tmp_path / "s.db"), retention_s=10)
    body = {"id": "resp_1", "object": "response", "status": "completed", "model": "m", "output": []}
    store.put(body, key_id="k", request_id="r1", input_items=(), now=100.0)
    assert store.get("resp_1", "k", now=105.0) is not None
    assert store.get("resp_1", "k", now=111.0) is None
    assert store.conversation("resp_1", "k", now=111.0) is None
    assert store.purge(now=111.0) == 1
    assert store.get("resp_1", "k", now=105.0) is None


async def test_a_keys_budget_rate_limit_and_trace_hold_for_responses(keyed: KeyedDemo) -> None:
    """Routed like chat: a key's requests-per-minute limit is a 429 with Retry-After, a spent budget a 402
    (both before any upstream call), and each answered request has its trace under its request id."""
    limited, _ = keyed.create_key("rpm", rpm=1)
    broke, _ = keyed.create_key("broke", budget_usd=Decimal("0.000000001"))
    async with sdk(keyed, limited) as c, sdk(keyed, broke) as b:
        raw = await c.responses.with_raw_response.create(model="auto", input="first")
        called = len(keyed.demo.sim.received)
        with pytest.raises(openai.RateLimitError) as limit:
            await c.responses.create(model="auto", input="second")
        with pytest.raises(openai.APIStatusError) as spent:
            await b.responses.create(model="auto", input="anything", max_output_tokens=16)
        rid = raw.headers["X-Faregate-Request-Id"]
        trace: Any = await c.get(f"/requests/{rid}", cast_to=object)
    assert limit.value.status_code == 429 and int(limit.value.response.headers["Retry-After"]) >= 1
    assert spent.value.status_code == 402 and spent.value.code == "insufficient_credits"
    assert len(keyed.demo.sim.received) == called  # neither reached an upstream
    assert trace["endpoint"] == "responses" and trace["attempts"][0]["status"] == 200
    assert trace["provider"] == raw.headers["X-Faregate-Provider"] and trace["plan"]
    assert trace["cost_usd"] is not None and trace["key_id"] is not None
