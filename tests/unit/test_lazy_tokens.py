"""Token counting only when something needs the count: the body-size bound never under-counts, and
rules, context checks and plans read the count only when the bound cannot settle them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faregate.accounting.tokens import TokenCounter, prompt_bound
from faregate.providers.registry import INBOUND
from faregate.routing.features import Features, extract_features
from faregate.routing.plan import build_plan
from tests.unit.test_compile import build
from tests.unit.test_plan import TABLE, plan_ids

PNG = "data:image/png;base64,iVBORw0KGgo="
CORPUS: list[tuple[str, dict[str, Any]]] = [
    ("short", {"messages": [{"role": "user", "content": "hi"}]}),
    ("empty text", {"messages": [{"role": "user", "content": ""}]}),
    (
        "system and turns",
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello in five words."},
                {"role": "assistant", "content": "Hello there, how are you?"},
                {"role": "user", "content": "Again", "name": "bo"},
            ]
        },
    ),
    ("non-ascii", {"messages": [{"role": "user", "content": "日本語のテキスト 🎉🎉🎉 ÄÖÜ ßß " * 20}]}),
    ("escaped non-ascii", {"messages": [{"role": "user", "content": "\u65e5\u672c" * 50}]}),
    (
        "digits and spaces",
        {"messages": [{"role": "user", "content": "1 2 3 4 5 6 7 8 9 " * 40 + "\n\n\t x"}]},
    ),
    (
        "one image",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]},
    ),
    (
        "images and text",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
                        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                    ],
                }
            ]
        },
    ),
    (
        "tools and tool calls",
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "cold"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "w",
                        "description": "Weather for a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    },
                }
            ],
        },
    ),
]


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "auto", "meta-llama/llama-3.1-8b"])
@pytest.mark.parametrize(("name", "body"), CORPUS, ids=[n for n, _ in CORPUS])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_body_size_bound_never_under_counts(
    name: str, body: dict[str, Any], model: str, ensure_ascii: bool, counter: TokenCounter
) -> None:
    raw = json.dumps({"model": model, **body}, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()
    req, _ = INBOUND["openai"].parse_chat(json.loads(raw))
    assert counter.count_request(req) <= prompt_bound(len(raw), req)


def never() -> int:
    raise AssertionError("counted, but nothing needed the count")


def test_a_small_request_is_never_counted_when_nothing_needs_it() -> None:
    f = Features(count=never, bound=500)
    table = build(
        """
        providers: {openai: {}, groq: {}}
        aliases: {auto: default}
        routes:
          default:
            - {name: long, when: {prompt_tokens_gt: 60000}, use: [openai/gpt-4o-mini]}
            - {name: short, when: {prompt_tokens_lt: 1000}, use: [meta-llama/llama-3.1-8b]}
        """
    )
    plan = build_plan(table, "auto", f, max_tokens=4000)
    assert plan.rule == "short" and plan.entries
    assert build_plan(table, "openai/gpt-4o-mini", f).entries
    assert not f.counted
    assert f.as_json()["prompt_tokens"] is None


def test_the_count_is_read_when_the_bound_cannot_settle_a_rule() -> None:
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return 50

    table = build(
        """
        providers: {openai: {}, groq: {}}
        aliases: {auto: default}
        routes:
          default:
            - {name: long, when: {prompt_tokens_gt: 100}, use: [openai/gpt-4o-mini]}
            - {name: rest, use: [meta-llama/llama-3.1-8b]}
        """
    )
    f = Features(count=count, bound=5000)  # a big body of few tokens (an escaped text, say)
    assert build_plan(table, "auto", f).rule == "rest"
    assert f.counted and f.prompt_tokens == 50 and calls == [1]  # counted once, cached
    assert f.as_json()["prompt_tokens"] == 50


def test_the_context_check_counts_only_near_a_channels_context() -> None:
    exact = Features(prompt_tokens=130_000)
    lazy = Features(count=lambda: 130_000, bound=140_000)
    assert plan_ids(build_plan(TABLE, "auto", lazy)) == plan_ids(build_plan(TABLE, "auto", exact))
    assert lazy.counted  # 140k could not fit a 128k channel without counting
    far = Features(count=never, bound=2_000)
    assert plan_ids(build_plan(TABLE, "auto", far, max_tokens=2000)) == plan_ids(
        build_plan(TABLE, "auto", Features(prompt_tokens=10), max_tokens=2000)
    )


def test_eager_features_count_at_once(counter: TokenCounter) -> None:
    req, _ = INBOUND["openai"].parse_chat(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    )
    eager = extract_features(req, counter.count_request)
    lazy = extract_features(req, counter.count_request, lazy=True, bound=100)
    assert eager.counted and not lazy.counted
    assert lazy.prompt_tokens == eager.prompt_tokens
    assert lazy.user_text == eager.user_text == "hi"
