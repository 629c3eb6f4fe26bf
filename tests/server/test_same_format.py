"""The same-format path (OpenAI chat client, `api: openai` channel) against the translated one, through the
gateway and the simulator: for a corpus of requests, the same status, body, usage, cost and `X-Faregate-*`
headers with the path on and with it off; and the answers it leaves to the translated path."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

import faregate.pipeline.execute as execute
from faregate.providers.base import UpstreamCall
from faregate.providers.openai.adapter import OpenAIAdapter
from faregate.providers.registry import SAME_FORMAT
from tests.conftest import Demo
from tests.server.test_chat import WEATHER_TOOL

USER = [{"role": "user", "content": "Say hello in five words."}]
PINNED = "openai/gpt-4o-mini"  # openai's offering first: an `api: openai` channel
CORPUS: dict[str, dict[str, Any]] = {
    "plain": {"model": PINNED, "messages": USER},
    "auto": {"messages": USER},
    "max_tokens": {"model": PINNED, "messages": USER, "max_tokens": 3},
    "max_completion_tokens": {"model": PINNED, "messages": USER, "max_completion_tokens": 5},
    "tools": {
        "model": PINNED,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
    },
    "json mode": {"model": PINNED, "messages": USER, "response_format": {"type": "json_object"}},
    "n > 1": {"model": PINNED, "messages": USER, "n": 3},
    "logprobs": {"model": PINNED, "messages": USER, "logprobs": True, "top_logprobs": 2},
    "stop": {"model": PINNED, "messages": USER, "stop": ["five"]},
    "seed and penalties": {"model": PINNED, "messages": USER, "seed": 7, "presence_penalty": 0.5},
    "routing fields": {"model": PINNED, "messages": USER, "provider": {"order": ["openai"]}, "models": []},
    "an upstream's 400": {"model": PINNED, "messages": USER, "logprobs": "yes"},
}


SHOWS: dict[str, Any] = {  # what each answer must show, so the corpus covers what it names
    "tools": lambda b: (
        b["choices"][0]["message"]["tool_calls"] and b["choices"][0]["finish_reason"] == "tool_calls"
    ),
    "n > 1": lambda b: [c["index"] for c in b["choices"]] == [0, 1, 2],
    "logprobs": lambda b: b["choices"][0]["logprobs"]["content"],
    "max_tokens": lambda b: b["choices"][0]["finish_reason"] == "length",
    "an upstream's 400": lambda b: "'logprobs'" in b["error"]["message"],
}


class Counted:
    """Same-format relays (of answers, or of streams), counting what they took (each result not None)."""

    def __init__(self, relays: Mapping[Any, Callable[..., Any]]) -> None:
        self.taken = 0
        self.relays = {key: self._counting(relay) for key, relay in relays.items()}

    def _counting(self, relay: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            answer = relay(*args)
            self.taken += answer is not None
            return answer

        return counted


@pytest.fixture
def same_format(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    counted = Counted(dict(SAME_FORMAT))
    monkeypatch.setattr(execute, "SAME_FORMAT", counted.relays)
    yield counted


def normalized(body: Any) -> Any:
    """What differs between two requests whatever the path: ids, times, latencies."""
    if isinstance(body, dict):
        return {
            k: "<varies>" if k in ("id", "request_id", "created", "latency_ms") else normalized(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [normalized(v) for v in body]
    return body


HEADERS = ("Content-Type", "X-Faregate-Provider", "X-Faregate-Model", "X-Faregate-Channel", "X-Faregate-Rule")


async def answer(demo: Demo, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str | None]]:
    async with aiohttp.ClientSession() as s, s.post(f"{demo.url}/v1/chat/completions", json=body) as resp:
        data = await resp.json()
        headers = {h: resp.headers.get(h) for h in (*HEADERS, "X-Faregate-Cost")}
        return resp.status, data, headers


@pytest.mark.parametrize("name", list(CORPUS))
async def test_the_same_format_path_answers_as_the_translated_path(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    status, same, same_headers = await answer(demo, CORPUS[name])
    taken = same_format.taken
    monkeypatch.setattr(execute, "SAME_FORMAT", {})
    status_t, translated, translated_headers = await answer(demo, CORPUS[name])
    assert (status, normalized(same), same_headers) == (status_t, normalized(translated), translated_headers)
    if status == 200:
        assert taken == 1, "the answer should have taken the same-format path"
        assert same["usage"] == translated["usage"] and same["usage"]["cost"] > 0
        assert same["id"] == "chatcmpl-" + same["x-faregate"]["request_id"]
    shows = SHOWS.get(name)
    assert shows is None or shows(same), "the corpus entry should exercise what it is named after"


async def test_a_fallback_to_another_openai_channel_takes_it_too(demo: Demo, same_format: Counted) -> None:
    demo.sim.fail("openai", status=503, times=1)
    status, body, headers = await answer(demo, CORPUS["plain"])
    attempts = body["x-faregate"]["routing"]["attempts"]
    assert status == 200 and [a["outcome"] for a in attempts] == ["status", "ok"]
    assert headers["X-Faregate-Provider"] != "openai" and same_format.taken == 1


async def test_stop_sequences_faregate_applies_take_the_translated_path(
    demo: Demo, same_format: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel that leaves a stop sequence to faregate (`UpstreamCall.local_stops`): the translated path
    cuts the answer there; the same-format path does not, so it is not taken."""
    chat_request = OpenAIAdapter.chat_request

    def leaving_stops(self: OpenAIAdapter, req: Any, target: Any) -> UpstreamCall:
        return replace(chat_request(self, req, target), local_stops=("five",))

    monkeypatch.setattr(OpenAIAdapter, "chat_request", leaving_stops)
    status, _, _ = await answer(demo, CORPUS["plain"])
    assert status == 200 and same_format.taken == 0
