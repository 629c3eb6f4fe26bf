"""The execute stage returns values: `Executed` (frozen, with the walk's `Trace`) when a channel answers,
`WalkFailed` carrying the error and every attempt when none does, `StreamFailed` with the trace amended when
a started stream breaks. Nothing of the walk is left on an object for the caller to read back."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from faregate.canonical import ChatRequest, Message, TextPart
from faregate.catalog.model import Price
from faregate.errors import AllChannelsFailed, UpstreamRequestError
from faregate.pipeline.bounds import Bounds
from faregate.pipeline.execute import (
    Executed,
    StreamFailed,
    WalkFailed,
    _transport_error,
    call_chat,
    open_stream,
)
from faregate.routing.health import Health
from faregate.routing.plan import Plan, PlanEntry
from faregate.routing.table import Channel
from faregate.upstream.client import UpstreamClient
from faregate.upstream.errors import (
    BadRequest,
    BodyCutShort,
    ConnectFailed,
    ConnectTimeout,
    ProtocolError,
    ReadTimeout,
    ServerDisconnected,
)
from tests.server.fake_upstream import FakeUpstream

REQ = ChatRequest(messages=(Message("user", (TextPart("hi"),)),), model="fake/model")
BOUNDS = Bounds(first_byte_s=5, total_s=5, stream_idle_s=1, request_s=10)


def channel(n: int, base_url: str) -> Channel:
    return Channel(
        id=f"fake{n}:model",
        provider=f"fake{n}",
        model_id="fake/model",
        upstream_id="model",
        api="openai",
        base_url=base_url,
        kind="chat",
        price=Price(Decimal(1), Decimal(2)),
        context=8000,
        max_output=None,
        caps=frozenset(),
        data_collection="deny",
        expected_cost_usd=Decimal(0),
    )


def plan_of(*channels: Channel) -> Plan:
    entries = tuple(PlanEntry(c, "test") for c in channels)
    return Plan("fake/model", True, None, None, entries, ())


@contextlib.asynccontextmanager
async def upstream_client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    up = await FakeUpstream().start()
    try:
        yield up
    finally:
        await up.stop()


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (
            ConnectFailed("http://h", ConnectionRefusedError(111, "Connection refused")),
            "connect",
            "cannot connect (Connection refused)",
        ),
        (ConnectTimeout("no connection"), "timeout", "timed out (no answer within 1s)"),
        (ReadTimeout("no data"), "timeout", "timed out (no answer within 1s)"),
        (BodyCutShort("closed"), "protocol", "the response body was cut short"),
        (
            ProtocolError("a response head over 65536 bytes"),
            "protocol",
            "malformed response (a response head over 65536 bytes)",
        ),
        (ServerDisconnected("closed"), "connect", "connection failed (ServerDisconnected)"),
        (
            BadRequest("a CR or LF in the request header 'Authorization'"),
            "connect",
            "request not sent (a CR or LF in the request header 'Authorization')",
        ),
    ],
)
def test_the_upstream_clients_errors_map_to_attempt_errors(error: Exception, kind: str, message: str) -> None:
    err = _transport_error(error, " (no answer within 1s)")
    assert (err.kind, err.message, err.retryable) == (kind, message, True)


async def test_an_answer_is_a_frozen_value_with_its_trace(upstream: FakeUpstream) -> None:
    async with upstream_client() as http:
        done = await call_chat(http, plan_of(channel(1, upstream.base_url)), REQ, BOUNDS, Health())
    assert isinstance(done, Executed) and done.channel.id == "fake1:model"
    assert [(a.channel, a.status, a.outcome) for a in done.trace.attempts] == [("fake1:model", 200, "ok")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.channel = done.channel  # type: ignore[misc]


async def test_a_failed_walk_carries_every_attempt(upstream: FakeUpstream) -> None:
    upstream.mode = "status:500"
    plan = plan_of(channel(1, upstream.base_url), channel(2, upstream.base_url))
    async with upstream_client() as http:
        with pytest.raises(WalkFailed) as failed:
            await call_chat(http, plan, REQ, BOUNDS, Health())
    assert isinstance(failed.value.error, AllChannelsFailed) and failed.value.error.status == 502
    assert [(a.channel, a.status) for a in failed.value.trace.attempts] == [
        ("fake1:model", 500),
        ("fake2:model", 500),
    ]


async def test_a_request_the_upstream_refuses_carries_its_attempt(upstream: FakeUpstream) -> None:
    upstream.mode = "status:400"
    async with upstream_client() as http:
        with pytest.raises(WalkFailed) as failed:
            await open_stream(http, plan_of(channel(1, upstream.base_url)), REQ, BOUNDS, Health())
    assert isinstance(failed.value.error, UpstreamRequestError) and failed.value.error.status == 400
    assert [a.status for a in failed.value.trace.attempts] == [400]


async def test_a_broken_stream_carries_the_amended_trace(upstream: FakeUpstream) -> None:
    upstream.mode = "close_mid_stream"
    req = dataclasses.replace(REQ, stream=True)
    async with upstream_client() as http:
        opened = await open_stream(http, plan_of(channel(1, upstream.base_url)), req, BOUNDS, Health())
        first = opened.trace
        assert [a.outcome for a in first.attempts] == ["ok"]
        with pytest.raises(StreamFailed) as broke:
            async for _ in opened.batches():
                pass
    assert [a.outcome for a in broke.value.trace.attempts] == ["dropped (protocol)"]
    assert [a.outcome for a in first.attempts] == ["ok"]  # the value returned earlier stays as it was
