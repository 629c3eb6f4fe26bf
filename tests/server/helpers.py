"""What the server tests share: an `openai` SDK client for a demo, and the checks every answer must pass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from faregate.catalog.model import MILLION, Price
from tests.conftest import Demo

ENVELOPE_KEYS = {"message", "type", "code", "param"}
ROUTING_FIELDS = ("provider", "models", "route")
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]


def client(demo: Demo) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=demo.base_url, api_key="x", max_retries=0, timeout=20)


def exact_cost(price: Price, usage: Mapping[str, Any]) -> Decimal:
    """The cost recomputed from a price table (USD per 1M tokens) and an answer's usage (nothing cached)."""
    prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    return (price.input * prompt + price.output * completion) / MILLION


def check_accounting(demo: Demo, body: dict[str, Any], headers: Any | None = None) -> dict[str, Any]:
    """`usage.cost`, `x-faregate` and (when given) the `X-Faregate-*` headers of one answer agree with each
    other and with the channel's price. `body` was parsed with `parse_float=Decimal`. Returns the routing."""
    table = demo.runtime.holder.current.table
    xf = body["x-faregate"]
    routing, saved = xf["routing"], xf["savings"]
    ch = table.channels[routing["channel"]]
    assert (routing["provider"], routing["model"]) == (ch.provider, ch.model_id)
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cost = exact_cost(ch.price, usage)
    assert cost > 0
    assert usage["cost"] == cost
    assert xf["usage_estimated"] is False
    assert routing["attempts"], "every answer lists its attempts"
    last = routing["attempts"][-1]
    assert (last["channel"], last["outcome"], last["status"]) == (ch.id, "ok", 200)
    assert table.baseline is not None
    alternative = exact_cost(table.baseline.price, usage)
    assert saved["baseline"] == table.baseline.model_id
    assert saved["actual_cost"] == cost
    assert saved["alternative_cost"] == alternative
    assert saved["amount_saved"] == alternative - cost
    assert saved["savings_percentage"] == ((alternative - cost) * 100 / alternative).quantize(Decimal("0.01"))
    if headers is not None:
        assert headers["X-Faregate-Request-Id"] == xf["request_id"]
        assert headers["X-Faregate-Provider"] == ch.provider
        assert headers["X-Faregate-Model"] == ch.model_id
        assert Decimal(headers["X-Faregate-Cost"]) == cost
    return dict(routing)


def decimal_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def upstream_bodies(demo: Demo) -> list[dict[str, Any]]:
    """The JSON bodies of every request the simulator received (listing calls have none)."""
    return [r.json() for r in demo.sim.received if r.body]


def assert_no_routing_fields(demo: Demo) -> None:
    for body in upstream_bodies(demo):
        for name in ROUTING_FIELDS:
            assert name not in body, f"routing field {name!r} reached the upstream: {body}"


def providers_called(demo: Demo) -> list[str]:
    return [r.provider for r in demo.sim.received]
