"""The same-format path for streams (OpenAI chat client, `api: openai` channel) against the translated one,
through the gateway and the simulator: for a corpus of streamed requests, the same SSE body (after the ids and
times every request has of its own), headers, usage, cost and usage-log record with the relay on and with it
off, with aiohttp reading the bytes and with the `openai` SDK; and the streams it leaves to the translated
path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

import faregate.server.endpoint as endpoint
from faregate.providers.base import UpstreamCall
from faregate.providers.openai.adapter import OpenAIAdapter
from faregate.providers.registry import SAME_FORMAT_STREAMS
from tests.conftest import Demo
from tests.server.helpers import HELLO, client
from tests.server.test_chat import WEATHER_TOOL
from tests.server.test_same_format import HEADERS, Counted, normalized

STREAM_LIMIT_S = 10.0
PINNED = "openai/gpt-4o-mini"  # openai's offering first: an `api: openai` channel
USAGE = {"stream_options": {"include_usage": True}}
CORPUS: dict[str, dict[str, Any]] = {
    "plain": {"model": PINNED, "messages": HELLO},
    "include_usage": {"model": PINNED, "messages": HELLO, **USAGE},
    "auto": {"messages": HELLO, **USAGE},
    "max_tokens": {"model": PINNED, "messages": HELLO, "max_tokens": 3, **USAGE},
    "tools": {
        "model": PINNED,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        **USAGE,
    },
    "n > 1": {"model": PINNED, "messages": HELLO, "n": 2, **USAGE},
    "logprobs": {"model": PINNED, "messages": HELLO, "logprobs": True, "top_logprobs": 2},
    "reasoning": {"model": "openai/gpt-6-luna", "messages": HELLO, "reasoning_effort": "low", **USAGE},
    "reasoning excluded": {
        "model": "openai/gpt-6-luna",
        "messages": HELLO,
        "reasoning": {"effort": "low", "exclude": True},
        **USAGE,
    },
    "stop": {"model": PINNED, "messages": HELLO, "stop": ["five"], **USAGE},
    "OpenRouter's usage.include": {"model": PINNED, "messages": HELLO, "usage": {"include": True}},
}
SHOWS: dict[str, Any] = {  # what each stream must show, so the corpus covers what it names
    "tools": lambda events: any(c.get("delta", {}).get("tool_calls") for e in events for c in e["choices"]),
    "n > 1": lambda events: {c["index"] for e in events for c in e["choices"]} == {0, 1},
    "logprobs": lambda events: any(
        (c.get("logprobs") or {}).get("content") for e in events for c in e["choices"]
    ),
    "reasoning": lambda events: any(c["delta"].get("reasoning") for e in events for c in e["choices"]),
    "reasoning excluded": lambda events: (
        not any(c["delta"].get("reasoning") for e in events for c in e["choices"])
    ),
    "max_tokens": lambda events: (
        [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]] == ["length"]
    ),
}


@pytest.fixture
def same_format(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    counted = Counted(dict(SAME_FORMAT_STREAMS))
    monkeypatch.setattr(endpoint, "SAME_FORMAT_STREAMS", counted.relays)
    yield counted


def translated_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "SAME_FORMAT_STREAMS", {})


async def sse(demo: Demo, body: dict[str, Any]) -> tuple[int, list[Any], dict[str, str | None], Any]:
    """The stream's events (`[DONE]` as a string), its headers, and the request's record."""
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{demo.url}/v1/chat/completions", json={**body, "stream": True}) as resp:
            raw = await asyncio.wait_for(resp.read(), STREAM_LIMIT_S)
            headers = {h: resp.headers.get(h) for h in (*HEADERS, "Cache-Control", "X-Faregate-Cost")}
            status, request_id = resp.status, resp.headers.get("X-Faregate-Request-Id")
        async with s.get(f"{demo.url}/v1/requests/{request_id}") as r:
            record = await r.json()
    assert raw.endswith(b"\n\n") and b"\r" not in raw
    events = [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e]
    assert all(not e.startswith(("data:", "event:")) and "\n" not in e for e in events), "one data line each"
    return status, [e if e == "[DONE]" else json.loads(e) for e in events], headers, record


def recorded(record: dict[str, Any]) -> Any:
    """The usage-log record less what differs between any two requests (ids, times, latencies)."""
    return normalized({k: v for k, v in record.items() if k != "ttft_ms"})


@pytest.mark.parametrize("name", list(CORPUS))
async def test_the_relay_streams_what_the_translated_path_streams(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    status, same, same_headers, same_record = await sse(demo, CORPUS[name])
    taken = same_format.taken
    translated_only(monkeypatch)
    status_t, translated, translated_headers, translated_record = await sse(demo, CORPUS[name])
    assert (status, same_headers) == (status_t, translated_headers) and status == 200
    assert normalized(same) == normalized(translated)
    assert recorded(same_record) == recorded(translated_record)
    assert taken == 1, "the stream should have taken the same-format path"
    assert same[-1] == "[DONE]" and same[0]["id"] == "chatcmpl-" + same_record["id"]
    last = same[-2]
    assert last["x-faregate"]["request_id"] == same_record["id"]
    if "usage" in last and last["usage"] is not None:
        assert (
            last["usage"]["cost"] > 0
            and last["usage"]["prompt_tokens"] == same_record["usage"]["prompt_tokens"]
        )
    shows = SHOWS.get(name)
    assert shows is None or shows([e for e in same if e != "[DONE]"]), "the entry should show what it names"


async def test_with_the_openai_sdk_the_chunks_are_the_same(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def chunks() -> list[dict[str, Any]]:
        async with client(demo) as c:
            stream = await c.chat.completions.create(
                model=PINNED, messages=HELLO, stream=True, stream_options={"include_usage": True}
            )
            return [chunk.model_dump() async for chunk in stream]

    same = await asyncio.wait_for(chunks(), STREAM_LIMIT_S)
    assert same_format.taken == 1
    translated_only(monkeypatch)
    translated = await asyncio.wait_for(chunks(), STREAM_LIMIT_S)
    assert normalized(same) == normalized(translated)
    assert "".join(c["choices"][0]["delta"]["content"] or "" for c in same if c["choices"])
    assert same[-1]["choices"] == [] and same[-1]["usage"]["cost"] > 0


async def test_a_drop_mid_stream_ends_alike(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo.sim.drop_stream("openai", after_events=3)
    _, same, _, same_record = await sse(demo, CORPUS["include_usage"])
    assert same_format.taken == 1
    demo.runtime.health.clear_cooldown(same_record["channel"])  # the drop cooled it down: try it again
    translated_only(monkeypatch)
    _, translated, _, translated_record = await sse(demo, CORPUS["include_usage"])
    assert normalized(same) == normalized(translated)
    assert same[-2]["error"]["code"] == "upstream_stream_error" and same[-1] == "[DONE]"
    assert recorded(same_record) == recorded(translated_record) and same_record["status"] == 502


async def test_a_fallback_before_the_first_event_relays_the_next_channel(
    demo: Demo, same_format: Counted
) -> None:
    demo.sim.fail("openai", status=503, times=1)
    status, events, headers, record = await sse(demo, CORPUS["include_usage"])
    attempts = events[-2]["x-faregate"]["routing"]["attempts"]
    assert status == 200 and [a["outcome"] for a in attempts] == ["status", "ok"]
    assert headers["X-Faregate-Provider"] != "openai" and same_format.taken == 2  # one per attempt
    assert {e["model"] for e in events if e != "[DONE]"} == {PINNED} and record["status"] == 200


async def test_stop_sequences_faregate_applies_take_the_translated_path(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel that leaves a stop sequence to faregate: the translated path cuts the stream there."""
    chat_request = OpenAIAdapter.chat_request
    stop = "simulated"

    def leaving_stops(self: OpenAIAdapter, req: Any, target: Any) -> UpstreamCall:
        return replace(chat_request(self, req, target), local_stops=(stop,))

    monkeypatch.setattr(OpenAIAdapter, "chat_request", leaving_stops)
    status, events, _, _ = await sse(demo, CORPUS["include_usage"])
    text = "".join(c["delta"].get("content") or "" for e in events if e != "[DONE]" for c in e["choices"])
    assert status == 200 and same_format.taken == 0
    assert stop not in text and text == "["  # the answer starts "[simulated ...": cut before the stop


async def test_a_channel_of_another_format_is_translated(demo: Demo, same_format: Counted) -> None:
    status, events, headers, _ = await sse(
        demo, {**CORPUS["include_usage"], "model": "anthropic/claude-haiku-4.5"}
    )
    assert status == 200 and headers["X-Faregate-Provider"] == "anthropic" and same_format.taken == 0
    assert events[-1] == "[DONE]" and events[-2]["usage"]["cost"] > 0
