"""Keys, limits and money on a running gateway (`auth: keys`, a store, the simulator behind it): the key
lifecycle, 401/402/429, budgets under concurrency, the usage log against /v1/metrics, traces, /v1/key,
Prometheus /metrics, and no secret in any log line or error."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from faregate.accounting.keys import KeyStore, hash_key
from faregate.accounting.record import RequestRecord
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.model import MILLION
from faregate.cli import main
from faregate.db import open_db
from faregate.paths import catalog_dir
from faregate.pipeline.accounts import KEY_CACHE_S, Accounts
from faregate.providers.registry import INBOUND
from faregate.server.options import ServeOptions
from faregate.server.serve import StartError, serve
from tests.conftest import set_server
from tests.processes import GatewayProcess, clean_env
from tests.server.accounting_fixtures import (
    ADMIN_KEY,
    PINNED,
    KeyedDemo,
    auth_headers,
    chat_body,
    start_keyed_demo,
    worst_cost,
)

D = Decimal
ENVELOPE_KEYS = {"message", "type", "code", "param"}


@pytest.fixture
async def keyed(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[KeyedDemo]:
    kd, stop = await start_keyed_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def store_rows(kd: KeyedDemo, key_id: str | None = None) -> list[dict[str, Any]]:
    """The usage table read with a connection of our own (what an operator would see), after writing what
    the usage log still holds (its writer runs every quarter second)."""
    kd.accounts.usage.flush()
    con = sqlite3.connect(kd.store)
    con.row_factory = sqlite3.Row
    try:
        sql, args = (
            ("select * from usage where key_id = ?", [key_id]) if key_id else ("select * from usage", [])
        )
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def assert_openai_error(body: Any, code: str) -> dict[str, Any]:
    err = body["error"]
    assert set(err) == ENVELOPE_KEYS
    assert err["code"] == code
    return dict(err)


class Probe:
    """What one pinned request with `max_tokens=1` uses: the gateway's prompt count (what the budget
    reserves on), the real usage, its cost, and the worst case the gateway must reserve."""

    def __init__(self, kd: KeyedDemo, prompt_tokens: int, usage: dict[str, Any]) -> None:
        (ch,) = [c for c in kd.demo.runtime.holder.current.table.channels.values() if c.model_id == PINNED]
        self.prompt_tokens = prompt_tokens
        self.actual = (
            ch.price.input * usage["prompt_tokens"] + ch.price.output * usage["completion_tokens"]
        ) / MILLION
        self.worst = worst_cost(kd, PINNED, prompt_tokens, 1)


async def probe(kd: KeyedDemo, http: aiohttp.ClientSession) -> Probe:
    status, headers, body = await kd.post(http, kd.admin_key, chat_body(max_tokens=1))
    assert status == 200, body
    _, _, trace = await kd.get(http, kd.admin_key, f"/v1/requests/{headers['X-Faregate-Request-Id']}")
    # The admin key has no limit, so the gateway did not count this prompt (the trace says null): count
    # it as the gateway counts a keyed request's prompt, from the same canonical request.
    assert trace["features"]["prompt_tokens"] is None
    req, _ = INBOUND["openai"].parse_chat(chat_body(max_tokens=1))
    p = Probe(kd, kd.demo.runtime.counter.count_request(req), body["usage"])
    assert D(trace["cost_usd"]) == p.actual
    assert 0 < p.actual <= p.worst
    return p


# --- keys: the CLI lifecycle ----------------------------------------------------------------------------


def test_keys_lifecycle_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "keys.db"

    def keys(*args: str) -> tuple[int, str]:
        code = main(["keys", *args, "--store", str(store)])
        return code, capsys.readouterr().out

    code, out = keys(
        "create", "--label", "team-a", "--budget", "0.50", "--rpm", "10", "--tpm", "1000", "--group", "gold"
    )
    assert code == 0
    secret = out.strip().splitlines()[-1]
    assert re.fullmatch(r"fg_[A-Za-z0-9_-]{40,}", secret), out
    key_id = re.search(r"\b(key_[0-9a-f]+)\b", out).group(1)  # type: ignore[union-attr]
    _, other_out = keys("create", "--label", "team-b")
    assert other_out.strip().splitlines()[-1] != secret

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))  # the file and its WAL
    assert secret.encode() not in stored  # the secret is nowhere in the store...
    assert secret[3:].encode() not in stored
    assert hash_key(secret).encode() in stored  # ...only its SHA-256

    code, out = keys("list", "--json")
    assert code == 0 and secret not in out and secret[3:20] not in out
    rows = {r["id"]: r for r in json.loads(out)}
    row = rows[key_id]
    assert row["label"] == "team-a" and row["hint"] == secret[:7] + "..."
    assert (row["budget_usd"], row["rpm"], row["tpm"], row["group"]) == ("0.50", 10, 1000, "gold")
    assert (row["spent_usd"], row["status"]) == ("0", "active")
    code, table = keys("list")
    assert code == 0 and key_id in table and secret not in table

    assert keys("update", key_id, "--label", "team-a2", "--rpm", "5", "--budget", "2")[0] == 0
    row = {r["id"]: r for r in json.loads(keys("list", "--json")[1])}[key_id]
    assert (row["label"], row["rpm"], row["tpm"], row["budget_usd"]) == ("team-a2", 5, 1000, "2")
    assert keys("update", key_id, "--tpm", "0")[0] == 0  # 0 clears a limit
    row = {r["id"]: r for r in json.loads(keys("list", "--json")[1])}[key_id]
    assert (row["rpm"], row["tpm"]) == (5, None)
    assert keys("update", key_id, "--budget", "0")[0] == 0  # a budget of nothing stops spending...
    assert Accounts(store).keys.get(key_id).budget_usd == 0  # type: ignore[union-attr]
    assert keys("update", key_id, "--budget", "none")[0] == 0  # ...and "none" lifts the budget
    assert Accounts(store).keys.get(key_id).budget_usd is None  # type: ignore[union-attr]
    with pytest.raises(SystemExit):
        keys("update", key_id, "--rpm", "-1")
    capsys.readouterr()
    assert Accounts(store).authenticate(secret) is not None

    code, out = keys("revoke", key_id)
    assert code == 0 and key_id in out
    row = {r["id"]: r for r in json.loads(keys("list", "--json")[1])}[key_id]
    assert row["status"] == "revoked"
    assert Accounts(store).authenticate(secret) is None  # a fresh gateway refuses it at once
    assert keys("revoke", "key_nope")[0] == 1
    assert keys("update", "key_nope", "--rpm", "1")[0] == 1


async def test_cli_changes_reach_a_running_gateway(
    keyed: KeyedDemo, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(keyed.store)
    assert main(["keys", "create", "--label", "live", "--store", store]) == 0
    out = capsys.readouterr().out
    secret, key_id = out.strip().splitlines()[-1], re.search(r"key_[0-9a-f]+", out).group(0)  # type: ignore[union-attr]
    assert (await keyed.post(http, secret, chat_body()))[0] == 200

    assert main(["keys", "update", key_id, "--rpm", "1", "--store", store]) == 0
    changed = await _within_cache_time(
        keyed, http, secret, lambda s, b: b["data"]["rate_limit"]["requests"] == 1
    )
    assert changed, "an updated limit applies within KEY_CACHE_S"
    status = (await keyed.post(http, secret, chat_body()))[0]
    if status == 200:  # the minute's one request may have been the first one, made before the update
        status = (await keyed.post(http, secret, chat_body()))[0]
    assert status == 429

    assert main(["keys", "revoke", key_id, "--store", store]) == 0
    gone = await _within_cache_time(keyed, http, secret, lambda s, b: s == 401)
    assert gone, "a revoked key stops working within KEY_CACHE_S"


async def _within_cache_time(kd: KeyedDemo, http: aiohttp.ClientSession, secret: str, done: Any) -> bool:
    started = time.monotonic()
    while time.monotonic() - started <= KEY_CACHE_S + 0.5:
        status, _, body = await kd.get(http, secret, "/v1/key")
        if done(status, body):
            return True
        await asyncio.sleep(0.1)
    return False


# --- authentication ---------------------------------------------------------------------------------------


async def test_missing_wrong_and_revoked_keys_get_401(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    secret, key = keyed.create_key("soon-revoked")
    keyed.accounts.keys.revoke(key.id)
    cases = {
        "missing": {},
        "wrong": auth_headers("fg_" + "x" * 43),
        "wrong x-api-key": auth_headers("fg_" + "y" * 43, "x-api-key"),
        "revoked": auth_headers(secret),
        "not bearer": {"Authorization": f"Basic {secret}"},
        "empty bearer": {"Authorization": "Bearer "},
    }
    for what, headers in cases.items():
        for path in ("/v1/chat/completions", "/v1/models", "/v1/metrics", "/v1/key", "/metrics"):
            method = http.post if path == "/v1/chat/completions" else http.get
            async with method(keyed.url + path, json=chat_body(), headers=headers) as resp:
                assert resp.status == 401, (what, path)
                err = assert_openai_error(await resp.json(), "invalid_api_key")
                assert err["type"] == "authentication_error"
        async with http.post(keyed.url + "/v1/messages", json={}, headers=headers) as resp:
            assert resp.status == 401, what
            body = await resp.json()
            assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    async with http.get(keyed.url + "/healthz") as resp:
        assert resp.status == 200  # liveness needs no key
    assert not keyed.demo.sim.received_for("openai"), "a refused request never reaches an upstream"


async def test_valid_keys_by_bearer_and_x_api_key(
    keyed: KeyedDemo, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    secret, key = keyed.create_key("apps")
    ids = []
    for header in ("bearer", "x-api-key"):
        status, headers, body = await keyed.post(http, secret, chat_body(), header=header)
        assert status == 200, body
        ids.append(headers["X-Faregate-Request-Id"])
        messages = {"model": PINNED, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        status, headers, body = await keyed.post(http, secret, messages, path="/v1/messages", header=header)
        assert status == 200 and body["type"] == "message", body
        ids.append(headers["X-Faregate-Request-Id"])

    oai = openai.AsyncOpenAI(base_url=keyed.url + "/v1", api_key=secret, max_retries=0)
    raw = await oai.chat.completions.with_raw_response.create(
        model=PINNED, messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.parse().choices[0].message.content
    ids.append(raw.headers["X-Faregate-Request-Id"])
    # The Anthropic SDK sends `x-api-key` when given an API key, `Authorization: Bearer` for an auth token.
    for client in (
        anthropic.AsyncAnthropic(base_url=keyed.url, api_key=secret, max_retries=0),
        anthropic.AsyncAnthropic(base_url=keyed.url, auth_token=secret, max_retries=0),
    ):
        raw_msg = await client.messages.with_raw_response.create(
            model=PINNED, max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
        )
        assert (await raw_msg.parse()).content[0].type == "text"
        ids.append(raw_msg.headers["X-Faregate-Request-Id"])
    with pytest.raises(anthropic.AuthenticationError):
        await anthropic.AsyncAnthropic(base_url=keyed.url, api_key="fg_wrong", max_retries=0).messages.create(
            model=PINNED, max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
        )
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=keyed.url + "/v1", api_key="fg_wrong", max_retries=0).models.list()

    for rid in ids:  # each request is booked to the key that made it
        status, _, trace = await keyed.get(http, secret, f"/v1/requests/{rid}")
        assert status == 200 and trace["key_id"] == key.id and trace["status"] == 200


async def test_the_admin_key(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    a, key_a = keyed.create_key("a")
    b, _ = keyed.create_key("b")
    for user in (a, None, "fg_wrong"):
        status, _, body = await keyed.get(http, user, "/admin/routes")
        assert status == 401 and "admin" in body["error"]["message"]
    status, _, body = await keyed.get(http, ADMIN_KEY, "/admin/routes")
    assert status == 200
    async with http.get(keyed.url + "/admin/routes", headers=auth_headers(ADMIN_KEY, "x-api-key")) as resp:
        assert resp.status == 200

    answers = [await keyed.post(http, a, chat_body()), await keyed.post(http, b, chat_body("other"))]
    answers.append(await keyed.post(http, b, chat_body(model="no/such-model")))
    assert [s for s, _, _ in answers] == [200, 200, 404]
    _, _, mine = await keyed.get(http, a, "/v1/metrics?days=1")
    _, _, everyone = await keyed.get(http, ADMIN_KEY, "/v1/metrics?days=1")
    assert mine["total_requests"] == 1
    assert everyone["total_requests"] == len(store_rows(keyed)) == 3
    assert D(str(everyone["total_spend"])) == sum((D(r["cost_usd"]) for r in store_rows(keyed)), D(0))
    for _, headers, _ in answers:  # the admin key sees every trace
        rid = headers["X-Faregate-Request-Id"]
        assert (await keyed.get(http, ADMIN_KEY, f"/v1/requests/{rid}"))[0] == 200
    assert (await keyed.get(http, ADMIN_KEY, "/v1/key"))[0] == 401  # the admin key is not an API key
    assert key_a.id in {r["key_id"] for r in store_rows(keyed)}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
async def test_auth_open_is_refused_on_a_non_loopback_address(host: str, tmp_path: Path) -> None:
    with pytest.raises(StartError, match="auth: open is allowed only on a loopback address"):
        await serve(
            tmp_path / "missing.yaml", catalog_dir(), ServeOptions(host=host, port=0, auth="open"), {}
        )


# --- budgets ------------------------------------------------------------------------------------------------


async def test_a_spent_budget_answers_402(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    p = await probe(keyed, http)
    budget = (5 * p.worst + p.worst / 3).quantize(D("1e-12"))
    secret, key = keyed.create_key("small", budget_usd=budget)
    fits, spent = 0, D(0)  # what the budget allows, request by request: the worst case must fit
    while spent + p.worst <= budget:
        spent, fits = spent + p.actual, fits + 1
    answers = [await keyed.post(http, secret, chat_body(max_tokens=1)) for _ in range(fits + 3)]
    statuses = [s for s, _, _ in answers]
    assert statuses == [200] * fits + [402] * 3
    err = assert_openai_error(answers[-1][2], "insufficient_credits")
    assert err["type"] == "insufficient_quota" and "max_tokens" in err["message"]
    messages = {"model": PINNED, "max_tokens": 1, "messages": [{"role": "user", "content": "Hello there"}]}
    status, _, body = await keyed.post(http, secret, messages, path="/v1/messages")
    assert status == 402 and body["error"]["type"] == "billing_error"

    _, _, info = await keyed.get(http, secret, "/v1/key")
    data = info["data"]
    assert D(str(data["usage"])) == spent == fits * p.actual
    assert D(str(data["limit"])) == budget
    assert D(str(data["limit_remaining"])) == D(str(data["limit"])) - D(str(data["usage"]))
    assert sum((D(r["cost_usd"]) for r in store_rows(keyed, key.id)), D(0)) == spent <= budget


async def test_concurrent_requests_racing_on_the_last_cent_never_overspend(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    p = await probe(keyed, http)
    budget = (2 * p.actual + 3 * p.worst + p.worst * D("0.9")).quantize(D("1e-12"))
    secret, key = keyed.create_key("racer", budget_usd=budget)
    for _ in range(2):  # spend part of the budget first: what is left fits three worst cases, not four
        assert (await keyed.post(http, secret, chat_body(max_tokens=1)))[0] == 200
    fits = int((budget - 2 * p.actual) / p.worst)
    assert fits == 3

    sim = keyed.demo.sim
    sim.reset_received()
    sim.hang("openai")  # admitted requests wait upstream, so all 20 race before any has settled
    tasks = [asyncio.create_task(keyed.post(http, secret, chat_body(max_tokens=1))) for _ in range(20)]
    deadline = time.monotonic() + 10
    while sum(t.done() for t in tasks) + len(sim.received_for("openai")) < 20:
        assert time.monotonic() < deadline, "the 20 requests did not all arrive"
        await asyncio.sleep(0.01)
    assert len(sim.received_for("openai")) == fits  # only what fits was sent upstream
    sim.clear("openai")
    answers = await asyncio.gather(*tasks)
    statuses = sorted(s for s, _, _ in answers)
    assert statuses == [200] * fits + [402] * (20 - fits)

    # The same race without holding anyone back: the order is up to the event loop, the budget still holds.
    tasks = [asyncio.create_task(keyed.post(http, secret, chat_body(max_tokens=1))) for _ in range(20)]
    more = [s for s, _, _ in await asyncio.gather(*tasks)]
    assert set(more) <= {200, 402}
    spent = sum((D(r["cost_usd"]) for r in store_rows(keyed, key.id)), D(0))
    assert spent == (2 + fits + more.count(200)) * p.actual
    assert spent <= budget
    assert keyed.accounts.limits.reserved_usd[key.id] == 0  # every reservation was settled
    last = (await keyed.post(http, secret, chat_body(max_tokens=1)))[0]
    assert last == (
        200 if budget - spent >= p.worst else 402
    )  # one more fits exactly when its worst case does


async def test_spend_survives_a_restart(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    kd, stop = await start_keyed_demo(routes_copy, counter, store)
    try:
        async with aiohttp.ClientSession() as http:
            p = await probe(kd, http)
            secret, key = kd.create_key(
                "persistent", budget_usd=(3 * p.actual + p.worst / 2).quantize(D("1e-12"))
            )
            for _ in range(3):
                assert (await kd.post(http, secret, chat_body(max_tokens=1)))[0] == 200
    finally:
        await stop()  # a clean stop writes the pending rows
    assert Accounts(store).limits.spent_usd[key.id] == 3 * p.actual  # read back from the usage log

    kd, stop = await start_keyed_demo(routes_copy, counter, store)
    try:
        async with aiohttp.ClientSession() as http:
            _, _, info = await kd.get(http, secret, "/v1/key")
            assert D(str(info["data"]["usage"])) == 3 * p.actual
            status, _, body = await kd.post(http, secret, chat_body(max_tokens=1))
            assert status == 402, body  # the restarted gateway remembers what was spent
    finally:
        await stop()


# --- rate limits --------------------------------------------------------------------------------------------


def _retry_after(headers: dict[str, str]) -> int:
    value = headers["Retry-After"]
    assert value.isdigit(), value
    return int(value)


async def test_requests_per_minute_answer_429_with_retry_after(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    secret, _ = keyed.create_key("rpm", rpm=2)
    answers = [await keyed.post(http, secret, chat_body()) for _ in range(3)]
    assert [s for s, _, _ in answers] == [200, 200, 429]
    _, headers, body = answers[-1]
    assert 58 <= _retry_after(headers) <= 60  # the first request leaves the minute in about 60 s
    err = assert_openai_error(body, "rate_limit_exceeded")
    assert err["type"] == "rate_limit_error" and "2 requests per minute" in err["message"]
    messages = {"model": PINNED, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    status, headers, body = await keyed.post(http, secret, messages, path="/v1/messages", header="x-api-key")
    assert status == 429 and body["error"]["type"] == "rate_limit_error" and _retry_after(headers) >= 1
    other, _ = keyed.create_key("other", rpm=2)
    assert (await keyed.post(http, other, chat_body()))[0] == 200  # limits are per key


async def test_tokens_per_minute_count_prompt_and_completion(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    p = await probe(keyed, http)
    # Two prompts fit exactly; the first answer's completion token does not.
    secret, _ = keyed.create_key("tpm", tpm=2 * p.prompt_tokens)
    first = await keyed.post(http, secret, chat_body(max_tokens=1))
    assert first[0] == 200 and first[2]["usage"]["completion_tokens"] == 1
    status, headers, body = await keyed.post(http, secret, chat_body(max_tokens=1))
    assert status == 429, body
    assert 1 <= _retry_after(headers) <= 60
    assert "tokens per minute" in assert_openai_error(body, "rate_limit_exceeded")["message"]

    roomy, _ = keyed.create_key("tpm2", tpm=2 * p.prompt_tokens + 1)
    assert [(await keyed.post(http, roomy, chat_body(max_tokens=1)))[0] for _ in range(3)] == [200, 200, 429]


# --- the usage log, /v1/metrics, traces, /v1/key ---------------------------------------------------------------


async def test_metrics_totals_equal_the_usage_log(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    a, key_a = keyed.create_key("a")
    b, key_b = keyed.create_key("b")
    sent_a = [
        await keyed.post(http, a, {"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}),
        await keyed.post(http, a, {"messages": [{"role": "user", "content": "Write a python function"}]}),
        await keyed.post(http, a, chat_body("Tell me a story", max_tokens=64)),
        await keyed.post(
            http,
            a,
            {
                "model": "cheap",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ),
        await keyed.post(
            http,
            a,
            {"model": "smart", "max_tokens": 20, "messages": [{"role": "user", "content": "Q"}]},
            path="/v1/messages",
        ),
        await keyed.post(http, a, chat_body(model="nobody/nothing")),
    ]
    await keyed.post(http, b, chat_body("b's request"))
    keyed.demo.sim.fail("openai", 500, times=1)
    sent_a.append(await keyed.post(http, a, chat_body("this one fails")))
    assert [s for s, _, _ in sent_a] == [200, 200, 200, 200, 200, 404, 502]
    old = RequestRecord(
        id="old",
        created=time.time() - 10 * 86400,
        endpoint="chat",
        requested="auto",
        status=200,
        key_id=key_a.id,
        cost_usd=D("1.5"),
        baseline_cost_usd=D("2"),
        latency_ms=10.0,
    )
    keyed.accounts.usage.record(old)  # ten days ago: outside days=1, inside days=30

    for days, expect_old in (("1", False), ("0.5", False), ("30", True)):
        status, _, m = await keyed.get(http, a, f"/v1/metrics?days={days}")
        assert status == 200
        rows = [r for r in store_rows(keyed, key_a.id) if expect_old or r["id"] != "old"]
        assert m["total_requests"] == len(rows) == len(sent_a) + expect_old
        assert m["total_tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
        spend = D(json.dumps(m["total_spend"]))
        baseline = D(json.dumps(m["estimated_spend_without_routing"]))
        assert spend == sum((D(r["cost_usd"]) for r in rows), D(0)) > 0
        assert baseline == sum((D(r["baseline_cost_usd"]) for r in rows), D(0))
        assert D(json.dumps(m["total_saved"])) == baseline - spend
        assert m["average_latency_ms"] == round(sum(r["latency_ms"] for r in rows) / len(rows), 2)
        assert m["error_rate"] == round(sum(r["status"] >= 400 for r in rows) / len(rows), 4)
    status, _, m = await keyed.get(http, b, "/v1/metrics?days=1")
    assert m["total_requests"] == 1
    assert D(json.dumps(m["total_spend"])) == D(store_rows(keyed, key_b.id)[0]["cost_usd"])
    for bad in ("0", "-1", "abc", "99999"):
        status, _, body = await keyed.get(http, a, f"/v1/metrics?days={bad}")
        assert status == 400 and body["error"]["param"] == "days"

    # One row per request, with every column the issue names.
    by_id = {r["id"]: r for r in store_rows(keyed, key_a.id)}
    for status, headers, _ in sent_a:
        row = by_id[headers["X-Faregate-Request-Id"]]
        assert row["status"] == status and row["created"] > 0 and row["latency_ms"] > 0
        if status == 200:
            assert row["model"] and row["provider"] and row["channel"] and row["alias"]
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["cached_tokens"] == 0
            assert D(row["cost_usd"]) > 0 and D(row["baseline_cost_usd"]) > 0 and row["error"] is None
            assert json.loads(row["attempts"])[-1]["outcome"] == "ok"
        else:
            assert row["error"] and D(row["cost_usd"]) == 0
    auto_row = by_id[sent_a[0][1]["X-Faregate-Request-Id"]]
    assert (auto_row["alias"], auto_row["rule"]) == ("auto", "everything-else")
    stream_row = by_id[sent_a[3][1]["X-Faregate-Request-Id"]]
    assert stream_row["stream"] == 1 and stream_row["ttft_ms"] is not None and stream_row["ttft_ms"] > 0
    assert json.loads(by_id[sent_a[-1][1]["X-Faregate-Request-Id"]]["attempts"])[0]["status"] == 500


def _rows_on_disk(store: Path) -> int:
    con = sqlite3.connect(store)
    try:
        return int(con.execute("select count(*) from usage").fetchone()[0])
    finally:
        con.close()


async def test_rows_are_written_in_batches_off_the_hot_path_and_on_reload(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    usage = keyed.accounts.usage
    usage.interval_s = 60.0
    await asyncio.sleep(0.4)  # the writer task picks the new interval up after its current wait
    secret, _ = keyed.create_key("batched")
    answers = [await keyed.post(http, secret, chat_body(f"Hi {i}")) for i in range(5)]
    assert all(s == 200 for s, _, _ in answers)
    assert (
        _rows_on_disk(keyed.store) == 0
    )  # answered, and not yet written: the answer did not wait for SQLite
    for _, headers, _ in answers:  # still visible as traces meanwhile
        assert (await keyed.get(http, secret, f"/v1/requests/{headers['X-Faregate-Request-Id']}"))[0] == 200
    assert await keyed.demo.runtime.reload() == []
    assert _rows_on_disk(keyed.store) == 5  # a reload writes what is pending


async def test_a_trace_for_every_request_scoped_to_its_key(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    p = await probe(keyed, http)
    secret, key = keyed.create_key("traced", rpm=2, budget_usd=100 * p.worst)
    other, _ = keyed.create_key("someone else")
    sent = {
        200: await keyed.post(http, secret, chat_body(max_tokens=1)),
        404: await keyed.post(http, secret, chat_body(model="nobody/nothing")),
        402: await keyed.post(
            http, secret, chat_body(max_tokens=100_000)
        ),  # its worst case exceeds the budget
    }
    keyed.demo.sim.fail("openai", 500, times=1)
    sent[502] = await keyed.post(http, secret, chat_body(max_tokens=1))
    sent[429] = await keyed.post(http, secret, chat_body(model="auto"))  # the third admitted in the minute
    assert {want: got[0] for want, got in sent.items()} == {s: s for s in sent}

    for status, (_, headers, body) in sent.items():
        rid = headers["X-Faregate-Request-Id"]
        got, _, trace = await keyed.get(http, secret, f"/v1/requests/{rid}")
        assert got == 200, body
        assert (trace["id"], trace["status"], trace["key_id"]) == (rid, status, key.id)
        if status == 404:  # refused before anything needed the prompt's count: none was made
            assert trace["features"]["prompt_tokens"] is None
        else:  # the key's budget needs the count
            assert trace["features"]["prompt_tokens"] > 0
        if status == 200:
            assert trace["plan"] == [trace["channel"]] and trace["model_id"] == PINNED
            assert trace["usage"]["completion_tokens"] == 1 and D(trace["cost_usd"]) == p.actual
            assert [(a["status"], a["outcome"]) for a in trace["attempts"]] == [(200, "ok")]
        else:
            assert trace["error"] and D(trace["cost_usd"]) == 0
            assert trace["error"] == body["error"]["message"]
        if status == 502:
            assert [(a["status"], a["outcome"]) for a in trace["attempts"]] == [(500, "status")]
            assert trace["attempts"][0]["latency_ms"] >= 0
        assert (await keyed.get(http, other, f"/v1/requests/{rid}"))[0] == 404  # another key: not found
        assert (await keyed.get(http, ADMIN_KEY, f"/v1/requests/{rid}"))[0] == 200  # the admin: everything
    status, _, body = await keyed.get(http, secret, "/v1/requests/nope")
    assert status == 404 and assert_openai_error(body, "not_found")


async def test_v1_key_has_openrouters_fields(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    budget = D("0.25")
    secret, key = keyed.create_key("dashboard", budget_usd=budget, rpm=100, tpm=50_000, group="gold")
    answers = [await keyed.post(http, secret, chat_body(f"Hello {i}")) for i in range(3)]
    costs = [D(json.dumps(body["usage"]["cost"])) for _, _, body in answers]
    status, _, info = await keyed.get(http, secret, "/v1/key")
    assert status == 200
    data = info["data"]
    assert {"label", "usage", "limit", "limit_remaining", "rate_limit", "is_free_tier"} <= set(data)
    assert (data["label"], data["id"], data["group"], data["is_free_tier"]) == (
        "dashboard",
        key.id,
        "gold",
        False,
    )
    assert D(json.dumps(data["usage"])) == sum(costs, D(0))
    assert D(json.dumps(data["limit"])) == budget
    assert D(json.dumps(data["limit_remaining"])) == budget - sum(costs, D(0))
    assert data["rate_limit"] == {"requests": 100, "tokens": 50_000, "interval": "1m"}
    unlimited, _ = keyed.create_key("unlimited")
    data = (await keyed.get(http, unlimited, "/v1/key"))[2]["data"]
    assert (data["usage"], data["limit"], data["limit_remaining"]) == (0, None, None)
    assert data["rate_limit"] == {"requests": None, "tokens": None, "interval": "1m"}


# --- Prometheus ---------------------------------------------------------------------------------------------


async def test_prometheus_metrics(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    secret, _ = keyed.create_key("prom")
    ok = [
        await keyed.post(
            http, secret, {"model": "auto", "messages": [{"role": "user", "content": f"Hi {i}"}]}
        )
        for i in range(2)
    ]
    ok.append(await keyed.post(http, secret, chat_body()))
    keyed.demo.sim.fail("openai", 503)
    failed = await keyed.post(http, secret, chat_body("fails"))
    assert [s for s, _, _ in ok] == [200, 200, 200] and failed[0] == 502
    assert (await keyed.post(http, secret, chat_body(model="nobody/nothing")))[0] == 404

    async with http.get(keyed.url + "/metrics", headers=auth_headers(ADMIN_KEY)) as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(family: str, suffix: str = "", **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (s.labels, s.value)
            for s in families[family].samples
            if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def total(family: str, suffix: str = "", **labels: str) -> float:
        return sum(v for _, v in samples(family, suffix, **labels))

    assert total("faregate_requests", "_total", endpoint="chat", status="200") == 3
    assert total("faregate_requests", "_total", endpoint="chat", status="502") == 1
    assert total("faregate_requests", "_total", endpoint="chat", status="404") == 1
    assert total("faregate_errors", "_total", status="502") == 1 and total("faregate_errors", "_total") == 2
    rules = {lab["rule"] for lab, _ in samples("faregate_requests", "_total", status="200")}
    assert "everything-else" in rules

    assert families["faregate_request_latency_seconds"].type == "histogram"
    assert total("faregate_request_latency_seconds", "_count", endpoint="chat") == 5
    buckets = samples("faregate_request_latency_seconds", "_bucket", endpoint="chat", provider="openai")
    counts = [v for lab, v in sorted(buckets, key=lambda b: float(b[0]["le"]))]
    assert counts == sorted(counts) and counts[-1] == total(
        "faregate_request_latency_seconds", "_count", endpoint="chat", provider="openai"
    )

    for _, _, body in ok:  # tokens and cost per provider/model, cost per rule too
        r = body["x-faregate"]["routing"]
        assert (
            total("faregate_tokens", "_total", provider=r["provider"], model=r["model"], kind="prompt")
            >= body["usage"]["prompt_tokens"]
        )
        assert (
            total("faregate_tokens", "_total", provider=r["provider"], model=r["model"], kind="completion")
            > 0
        )
        assert (
            total(
                "faregate_cost_usd", "_total", provider=r["provider"], model=r["model"], rule=r["rule"] or ""
            )
            > 0
        )
    spent = sum(float(json.dumps(body["usage"]["cost"])) for _, _, body in ok)
    assert math.isclose(total("faregate_cost_usd", "_total"), spent, rel_tol=1e-9)
    prompt_tokens = sum(body["usage"]["prompt_tokens"] for _, _, body in ok)
    assert total("faregate_tokens", "_total", kind="prompt") == prompt_tokens

    cooling = dict((lab["channel"], v) for lab, v in samples("faregate_channel_cooldown_seconds"))
    cooldown_s = keyed.demo.runtime.health.cooldown_s
    assert 0 < cooling["openai:gpt-6-luna"] <= cooldown_s  # the failed channel is cooling down
    assert total("faregate_upstream_attempts", "_total", channel="openai:gpt-6-luna", outcome="status") == 1


# --- no secret anywhere -------------------------------------------------------------------------------------


def _sim_keys(kd: KeyedDemo) -> list[str]:
    keys = {ch.api_key for ch in kd.demo.runtime.holder.current.table.channels.values() if ch.api_key}
    assert keys and all(k.startswith("sim-key-") for k in keys)
    return sorted(keys)


async def test_no_secret_in_logs_or_errors(
    keyed: KeyedDemo, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="faregate")
    secret, _ = keyed.create_key("secretive", rpm=5)
    wrong = "fg_" + "W" * 43
    seen: list[str] = []

    async def call(
        key: str | None, body: dict[str, Any], path: str = "/v1/chat/completions", how: str = "bearer"
    ) -> int:
        resp = await http.post(keyed.url + path, json=body, headers=auth_headers(key, how))
        async with resp:
            seen.append(json.dumps(dict(resp.headers)) + await resp.text())
            return resp.status

    sim = keyed.demo.sim
    messages = {"model": "smart", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    results = [
        await call(secret, chat_body()),
        await call(secret, messages, "/v1/messages", "x-api-key"),
        await call(wrong, chat_body()),
        await call(wrong, messages, "/v1/messages", "x-api-key"),
        await call(secret[:-1], chat_body()),
    ]
    sim.fail("anthropic", 401)  # the upstream rejects our upstream key...
    sim.fail("openai", 403)
    results.append(await call(secret, messages, "/v1/messages"))
    results.append(await call(secret, chat_body()))
    sim.clear()
    sim.slow("openai", 0.0)
    for _ in range(5):  # ...and a rate limit
        results.append(await call(secret, {"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}))
    assert results[:5] == [200, 200, 401, 401, 401] and 502 in results and 429 in results
    for path in ("/v1/key", "/v1/metrics", "/admin/routes", "/metrics"):
        for key in (secret, ADMIN_KEY, wrong):
            async with http.get(keyed.url + path, headers=auth_headers(key)) as resp:
                seen.append(await resp.text())

    logged = [caplog.text]
    for r in caplog.records:
        logged += [r.getMessage(), r.exc_text or "", repr(r.args)]
    rows = json.dumps(store_rows(keyed))
    everything = "\n".join(logged + seen + [rows])
    for s in (secret, wrong, ADMIN_KEY, *_sim_keys(keyed)):
        assert s not in everything
    assert "sim-key-" not in everything
    assert secret[3:20] not in everything and ADMIN_KEY[3:20] not in everything


@pytest.mark.e2e
async def test_no_secret_in_a_served_process_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "faregate.db"
    assert main(["keys", "create", "--label", "e2e", "--store", str(store)]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    wrong = "fg_" + "Z" * 43
    env = clean_env(FAREGATE_AUTH="keys", FAREGATE_ADMIN_KEY=ADMIN_KEY, FAREGATE_LOG_LEVEL="DEBUG")
    gw = GatewayProcess.demo(tmp_path, store, env)
    answers: list[str] = []
    try:
        url = await gw.ready()
        sim = gw.sim_origin()
        async with aiohttp.ClientSession() as http:

            async def call(
                method: str, path: str, key: str | None, body: Any = None, how: str = "bearer"
            ) -> int:
                async with http.request(
                    method, url + path, json=body, headers=auth_headers(key, how)
                ) as resp:
                    answers.append(json.dumps(dict(resp.headers)) + await resp.text())
                    return resp.status

            assert await call("POST", "/v1/chat/completions", secret, chat_body()) == 200
            assert (
                await call(
                    "POST",
                    "/v1/messages",
                    secret,
                    {"model": "smart", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]},
                    "x-api-key",
                )
                == 200
            )
            assert await call("POST", "/v1/chat/completions", wrong, chat_body()) == 401
            assert await call("GET", "/v1/models", None) == 401
            assert await call("GET", "/admin/routes", ADMIN_KEY) == 200
            assert await call("GET", "/admin/routes", secret) == 401
            async with http.post(f"{sim}/_sim/openai/fail", json={"status": 401}) as resp:
                assert resp.status == 200
            assert await call("POST", "/v1/chat/completions", secret, chat_body("fails")) == 502
            assert await call("GET", "/metrics", ADMIN_KEY) == 200
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(30) == 0
    finally:
        gw.stop()
    output = gw.output
    assert "faregate serving on" in output  # the log was captured (at DEBUG)
    everything = output + "\n".join(answers)
    for s in (secret, wrong, ADMIN_KEY, "sim-key-"):
        assert s not in everything


async def test_a_short_cooldown_lets_the_pinned_channel_back(
    routes_copy: Path, counter: TokenCounter, tmp_path: Path
) -> None:
    """The cooldown gauge drops back to zero when the cooldown is over."""
    set_server(routes_copy, cooldown_s=0.2)
    kd, stop = await start_keyed_demo(routes_copy, counter, tmp_path / "s.db")
    try:
        async with aiohttp.ClientSession() as http:
            kd.demo.sim.fail("openai", 500, times=1)
            assert (await kd.post(http, ADMIN_KEY, chat_body()))[0] == 502
            await asyncio.sleep(0.3)
            assert (await kd.post(http, ADMIN_KEY, chat_body()))[0] == 200
            async with http.get(kd.url + "/metrics", headers=auth_headers(ADMIN_KEY)) as resp:
                text = await resp.text()
        (family,) = [
            f for f in text_string_to_metric_families(text) if f.name == "faregate_channel_cooldown_seconds"
        ]
        assert {s.labels["channel"]: s.value for s in family.samples}.get("openai:gpt-6-luna", 0) == 0
    finally:
        await stop()


def test_keystore_never_keeps_the_secret_in_memory_records(tmp_path: Path) -> None:
    store = KeyStore(open_db(tmp_path / "k.db"))
    secret, key = store.create("mem")
    assert (
        secret not in repr(key)
        and secret not in repr(store.list())
        and secret not in repr(store.authenticate(secret))
    )
