"""A corpus of requests as the accounting path sees them, and what it made of each: the usage-log row, the
trace (`RequestRecord.as_json`), the priced answer's `x-faregate` extras and `X-Faregate-*` headers.

`tests/data/accounting/corpus.json` holds what the code before issue 16's restructuring made of this
corpus (`python -m tests.unit.accounting_corpus > tests/data/accounting/corpus.json`, run on that code);
`tests/unit/test_accounting_corpus.py` checks that today's code makes exactly the same. Deterministic: a
seeded `random.Random`, no clock.
"""

from __future__ import annotations

import random
import sys
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import orjson

from faregate.accounting.limits import Ticket
from faregate.accounting.pricing import cost_usd
from faregate.accounting.record import Attempt, RequestRecord
from faregate.accounting.usage_log import to_row
from faregate.canonical import Usage
from faregate.catalog.model import Price
from faregate.pipeline.execute import Trace
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange, charge, response_headers
from faregate.routing.plan import Plan
from faregate.routing.table import Baseline, Channel, PlanEntry

D = Decimal
SEED = 16
PRICES = (
    Price(D("0.15"), D("0.60")),
    Price(D("3"), D("15"), cached_input=D("0.30"), cache_write=D("3.75")),
    Price(D("2.5"), D("10"), cached_input=D("1.25")),
    Price(D("0.123456789"), D("0.000000123")),  # more digits than a picodollar keeps
    Price(D(0), D(0)),
    Price(D("0.05"), D("0.08"), cache_write=D("0.0625")),
    Price(D("75"), D("150")),
    Price(D("0.0000001"), D("0.0000003")),  # rounds to nothing at small counts
)
TRANSFORMS: tuple[tuple[dict[str, object], ...], ...] = ((), ({"middle-out": {"removed": 3}},))
TEXTS = (
    "upstream said: 503 overloaded",
    'quote " backslash \\ tab \t newline \n',
    "non-ASCII: é, 中文, emoji 🚀",
    "",
)


def channel(n: int, price: Price) -> Channel:
    return Channel(
        id=f"prov{n % 4}:model-{n}" + ("#2" if n % 5 == 0 else ""),
        provider=f"prov{n % 4}",
        model_id=f"author/model-{n}",
        upstream_id=f"model-{n}",
        api="openai",
        base_url="http://127.0.0.1:9/v1",
        kind="chat",
        price=price,
        context=128_000,
        max_output=None,
        caps=frozenset(),
        data_collection="deny",
        expected_cost_usd=D(0),
    )


def usage(rng: random.Random) -> Usage:
    prompt = rng.choice((0, 1, 7, 12, 1000, 123_457, 2_000_000))
    read = rng.choice((0, 0, prompt // 2, prompt + 5))
    write = rng.choice((0, 0, prompt // 3, 50))
    return Usage(prompt, rng.choice((0, 1, 48, 500, 99_999)), read, write, rng.random() < 0.2)


def attempts(rng: random.Random) -> tuple[Attempt, ...]:
    out = []
    for i in range(rng.choice((0, 1, 1, 2, 3))):
        outcome = rng.choice(("ok", "connect", "timeout", "status", "protocol", "dropped"))
        status = None if outcome in ("connect", "timeout") else rng.choice((200, 429, 503))
        error = None if outcome == "ok" else rng.choice(TEXTS)
        out.append(Attempt(f"prov{i}:m", f"prov{i}", status, outcome, round(rng.random() * 900, 2), error))
    return tuple(out)


def records() -> list[RequestRecord]:
    rng = random.Random(SEED)
    out = []
    for n in range(80):
        price = rng.choice(PRICES)
        u = usage(rng) if rng.random() < 0.8 else Usage()
        answered = rng.random() < 0.8
        cost = cost_usd(price, u) if answered else D(0)
        baseline = cost_usd(rng.choice(PRICES), u) if answered and rng.random() < 0.7 else cost
        error = None if rng.random() < 0.6 else rng.choice(TEXTS)
        out.append(
            RequestRecord(
                id=f"req-{n:04d}-{rng.getrandbits(40):010x}",
                created=1_700_000_000 + rng.random() * 1e6,
                endpoint=rng.choice(("chat", "messages", "embeddings", "responses", "completions")),
                requested=rng.choice(("auto", "cheap", "openai/gpt-4o-mini", "gpt-4o-mini")),
                status=rng.choice((200, 200, 200, 400, 402, 429, 499, 500, 502, 504)),
                key_id=rng.choice((None, "key_a", "key_b")),
                route=rng.choice((None, "default", "vision")),
                rule=rng.choice((None, "everything-else", "tools")),
                model_id=f"author/model-{n}" if answered else None,
                provider=f"prov{n % 4}" if answered else None,
                channel=f"prov{n % 4}:model-{n}" if answered else None,
                stream=rng.random() < 0.4,
                usage=u,
                cost_usd=cost,
                baseline_cost_usd=baseline,
                latency_ms=round(rng.random() * 5000, 2),
                ttft_ms=None if rng.random() < 0.5 else round(rng.random() * 900, 2),
                attempts=attempts(rng),
                plan=tuple(f"prov{i}:m" for i in range(rng.choice((0, 1, 3)))),
                features={
                    "prompt_tokens": rng.choice((None, 0, 12, 70_000)),
                    "has_images": rng.random() < 0.2,
                    "has_tools": rng.random() < 0.3,
                    "json_mode": rng.random() < 0.1,
                    "stream": rng.random() < 0.4,
                    "key_group": rng.choice((None, "team")),
                },
                error=error,
                app=rng.choice((None, "My App", "example.com")),
                app_url=rng.choice((None, "https://example.com/path?q=1")),
                finish_reason=rng.choice((None, "stop", "length", "tool_calls")),
            )
        )
    return out


class Priced:
    """One priced answer of the corpus: what `charge` and `response_headers` are given."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self.channel = channel(n, rng.choice(PRICES))
        self.usage = usage(rng)
        base = rng.choice((None, *PRICES))
        self.baseline = None if base is None else Baseline(f"author/base-{n % 3}", base)
        entries = tuple(
            PlanEntry(c, f"rule 'x' (cheapest) #{i + 1}")
            for i, c in enumerate((channel(n + 1, PRICES[0]), self.channel)[: rng.choice((1, 2))])
        )
        self.plan = (
            None
            if rng.random() < 0.15
            else Plan(
                "auto",
                rng.random() < 0.3,
                rng.choice((None, "default")),
                rng.choice((None, "everything-else")),
                entries,
                (),
                ignored=rng.choice(((), ("top_k",))),
            )
        )
        self.trace = Trace(
            attempts=attempts(rng),
            dropped=rng.choice(((), ("logprobs", "seed"))),
            transforms=rng.choice(TRANSFORMS),
        )
        left = rng.choice((None, D("0.000123"), D("12.5"), D(0)))
        self.ticket = (
            None
            if rng.random() < 0.5
            else Ticket(
                "key_a",
                D("0.001"),
                12,
                max_tokens=rng.choice((None, 16, 300)),
                left_usd=left,
            )
        )
        self.simulated = rng.random() < 0.5
        self.exchange = Exchange(id=f"gen-{n:04d}", endpoint="chat", created=1.0, started=0.0)


def priced() -> list[Priced]:
    rng = random.Random(SEED + 1)
    return [Priced(rng, n) for n in range(80)]


def priced_json(p: Priced) -> dict[str, Any]:
    rt = cast(Runtime, SimpleNamespace(simulated=p.simulated))
    c = charge(rt, p.exchange, p.channel, p.usage, p.plan, p.trace, p.ticket, baseline=p.baseline)
    return {
        "cost": str(c.cost),
        "baseline_cost": str(c.baseline_cost),
        "extras": orjson.dumps(c.extras).decode(),
        "headers": response_headers(p.exchange, p.channel, p.plan, c.cost),
        "stream_headers": response_headers(p.exchange, p.channel, p.plan, None),
    }


def corpus() -> dict[str, Any]:
    return {
        "records": [{"row": to_row(r), "trace": orjson.dumps(r.as_json()).decode()} for r in records()],
        "priced": [priced_json(p) for p in priced()],
    }


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(corpus(), option=orjson.OPT_INDENT_2).decode() + "\n")
