"""The same-format path (`providers/openai/samewire.py`) against the translated one, on a corpus of upstream
answers: the same client body, byte for byte; and the answers it must leave to the translated path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faregate import jsonio
from faregate.canonical import Usage
from faregate.providers.openai.render import render_chat
from faregate.providers.openai.response import parse_chat_response
from faregate.providers.openai.samewire import relay_answer

DATA = Path(__file__).resolve().parent.parent / "data" / "openai"
EXTRAS: dict[str, Any] = {
    "cost": 0.000123,
    "x-faregate": {"request_id": "0f1e2d3c", "routing": {"provider": "openai"}, "usage_estimated": False},
}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def answer(*choices: dict[str, Any], **top: Any) -> bytes:
    body = {"id": "chatcmpl-up", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini"}
    body |= {"choices": list(choices), "usage": USAGE} | top
    return json.dumps(body).encode()


def choice(message: dict[str, Any], finish: Any = "stop", index: int = 0, **more: Any) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", **message}, "finish_reason": finish, **more}


CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}
LOGPROBS = {
    "content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}],
    "refusal": None,
}

SAME: dict[str, bytes] = {
    "golden text": (DATA / "chat_completion.json").read_bytes(),
    "golden tools": (DATA / "chat_completion_tool_calls.json").read_bytes(),
    "plain": answer(choice({"content": "Hello there"})),
    "extra upstream fields": answer(
        choice({"content": "Hi", "refusal": None, "annotations": [], "audio": None}),
        system_fingerprint="fp_up",
        service_tier="default",
    ),
    "tools with text": answer(choice({"content": "Calling", "tool_calls": [CALL]}, "tool_calls")),
    "tools, empty content": answer(
        choice({"content": "", "tool_calls": [CALL, {**CALL, "id": None}]}, "tool_calls")
    ),
    "tool call without id": answer(choice({"content": None, "tool_calls": [{"function": CALL["function"]}]})),
    "json mode": answer(choice({"content": '{"answer": 42}'})),
    "n > 1, out of order": answer(
        choice({"content": "second"}, "length", index=1), choice({"content": "first"}, index=0)
    ),
    "logprobs": answer(choice({"content": "Hi"}, logprobs=LOGPROBS)),
    "refusal": answer(choice({"content": None, "refusal": "I can't help with that."})),
    "null content": answer(choice({"content": None})),
    "legacy function_call finish": answer(choice({"content": "x"}, "function_call")),
    "unknown finish": answer(choice({"content": "x"}, "eos")),
    "null finish": answer(choice({"content": "x"}, None)),
    "length": answer(choice({"content": "cut"}, "length")),
    "content filter": answer(choice({"content": ""}, "content_filter")),
    "no created": answer(choice({"content": "x"}), created=None),
    "cached and DeepSeek usage": answer(
        choice({"content": "x"}),
        usage={**USAGE, "prompt_tokens_details": {"cached_tokens": 4}, "prompt_cache_hit_tokens": 9},
    ),
    "DeepSeek cache hits": answer(choice({"content": "x"}), usage={**USAGE, "prompt_cache_hit_tokens": 9}),
}

# What only the translated path reads (it parses, estimates or renders more), or fails on.
TRANSLATED: dict[str, bytes] = {
    "content parts": answer(
        choice({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    ),
    "reasoning_content": answer(choice({"content": "x", "reasoning_content": "thinking"})),
    "reasoning": answer(choice({"content": "x", "reasoning": "thinking"})),
    "reasoning_details": answer(choice({"content": "x", "reasoning_details": []})),
    "object arguments": answer(
        choice({"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]})
    ),
    "no usage": answer(choice({"content": "x"}), usage=None),
    "no choices": answer(),
    "not json": b"<html>502</html>",
    "not an object": b"[1, 2]",
    "choice without message": json.dumps({"choices": [{"index": 0}], "usage": USAGE}).encode(),
    "tool_calls not a list": answer(choice({"content": "x", "tool_calls": {"id": "c"}})),
}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.5)


def translated(body: bytes, model: str) -> bytes:
    resp = parse_chat_response(body)
    assert resp.usage is not None
    return jsonio.dumps(render_chat(resp, model, resp.usage, EXTRAS))


@pytest.mark.parametrize("name", list(SAME))
def test_the_same_format_path_gives_the_translated_answer(name: str) -> None:
    body = SAME[name]
    same = relay_answer(body)
    assert same is not None, "this answer should take the same-format path"
    assert jsonio.dumps(same.render("openai/gpt-4o-mini", EXTRAS)) == translated(body, "openai/gpt-4o-mini")
    resp = parse_chat_response(body)
    assert (same.usage, same.finish_reason) == (resp.usage, resp.finish_reason)


@pytest.mark.parametrize("name", list(TRANSLATED))
def test_what_it_does_not_know_takes_the_translated_path(name: str) -> None:
    assert relay_answer(TRANSLATED[name]) is None


def test_usage_is_read_as_the_translated_path_reads_it() -> None:
    same = relay_answer(SAME["cached and DeepSeek usage"])
    assert same is not None and same.usage == Usage(12, 5, 4)
