"""Benchmark routing's cost per request against `json.loads` of the same request body.

Loads the shipped routes.yaml and catalog with every provider assumed keyed (no network, no keys needed)
and, for a few request shapes, times:

- `json.loads(body)`: what every request pays anyway;
- planning: `extract_features` (with the token count precomputed) + `parse_request_preferences` +
  `build_plan`, i.e. routing with token counting aside;
- token counting (tiktoken, offline) on its own.

Each figure is the best of several repeats of an auto-calibrated loop (`time.perf_counter_ns`).
The goal (issue 2): planning costs less than parsing the body. Run: `python scripts/bench_routing.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from faregate.accounting.tokens import TokenCounter
from faregate.canonical import ChatRequest
from faregate.paths import catalog_dir, default_routes
from faregate.pipeline.load import Sources, load
from faregate.providers.openai.inbound import parse_chat
from faregate.routing.features import Features, extract_features, matches
from faregate.routing.health import Health
from faregate.routing.plan import build_plan
from faregate.routing.preferences import parse_request_preferences
from faregate.routing.table import DecisionTable

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."}
PROSE = (
    "the quarterly report shows steady growth in the northern region while costs in logistics rose "
    "because of fuel prices and delays at two ports; management expects margins to recover next year "
    "as new contracts start and the warehouse in the east opens with more capacity for seasonal demand"
)
WORDS = PROSE.split()
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_flights",
            "description": "Search flights between two airports on a date",
            "parameters": {
                "type": "object",
                "properties": {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "date": {"type": "string", "format": "date"},
                },
                "required": ["from", "to", "date"],
            },
        },
    },
]


def long_text(words: int) -> str:
    """Plain prose (no word the shipped `code` rule looks for), deterministic."""
    rng = random.Random(2)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def conversation(turns: int) -> list[dict[str, str]]:
    """User and assistant turns of a few sentences each, as a chat UI sends them."""
    rng = random.Random(3)
    out = []
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        out.append({"role": role, "content": " ".join(rng.choice(WORDS) for _ in range(60)) + "?"})
    return out


def shapes() -> dict[str, dict[str, Any]]:
    user = {"role": "user", "content": "What is the capital of France, and what is it known for?"}
    return {
        "short chat, auto": {"model": "auto", "messages": [SYSTEM, user]},
        "image, auto": {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                }
            ],
        },
        "tools, auto": {
            "model": "auto",
            "messages": [
                SYSTEM,
                {"role": "user", "content": "Weather in Paris, and flights to Rome on Friday?"},
            ],
            "tools": TOOLS,
        },
        "long prompt (~70k tokens), auto": {
            "model": "auto",
            "messages": [SYSTEM, {"role": "user", "content": "Summarise:\n" + long_text(70_000)}],
        },
        "multi-turn chat (8 turns), auto": {"model": "auto", "messages": [SYSTEM, *conversation(8)]},
        "pinned model": {"model": "openai/gpt-4o-mini", "messages": [SYSTEM, user]},
        "provider prefs + models list": {
            "model": "auto",
            "messages": [SYSTEM, user],
            "provider": {
                "order": ["groq", "openai"],
                "ignore": ["openrouter"],
                "max_price": {"prompt": 1, "completion": 5},
            },
            "models": ["smart", "openai/gpt-4o-mini"],
        },
    }


def best_ns(fn: Callable[[], object], repeats: int, min_time_s: float) -> float:
    """Best time per call over `repeats` runs of a loop sized to last at least `min_time_s`."""
    n = 1
    while True:  # calibrate like timeit.autorange
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        if time.perf_counter_ns() - t0 >= min_time_s * 1e9:
            break
        n *= 2
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


@dataclass(frozen=True, slots=True)
class Row:
    shape: str
    body_bytes: int
    json_us: float
    plan_us: float
    regex_us: float  # of plan_us: `prompt_matches` searches of the rules walked
    tokens_us: float
    plan: str


def regex_walk(table: DecisionTable, model: str, f: Features) -> Callable[[], object] | None:
    """The `prompt_matches` searches that matching `model`'s route runs for `f` (those whose rule's
    other conditions hold, up to the first rule that matches), as one callable to time."""
    searches = []
    for rule in table.route_for(model) or ():
        w = rule.when
        if w.prompt_matches is not None and matches(replace(w, prompt_matches=None), f):
            searches.append(w.prompt_matches.search)
        if matches(w, f):
            break
    text = f.user_text
    return (lambda: [search(text) for search in searches]) if searches else None


def measure(
    name: str,
    payload: Mapping[str, Any],
    table: DecisionTable,
    counter: TokenCounter,
    repeats: int,
    min_s: float,
) -> Row:
    body = json.dumps(payload).encode()
    req, routing = parse_chat(json.loads(body))
    tokens = counter.count_request(req)
    headers: Mapping[str, str] = {"content-type": "application/json", "authorization": "Bearer sk-test"}
    health = Health()

    def count(_: ChatRequest) -> int:
        return tokens

    def plan_once() -> object:
        f = extract_features(req, count, headers, None)
        prefs = parse_request_preferences(routing)
        return build_plan(table, req.model, f, prefs, health=health, now=1.0, max_tokens=req.max_tokens)

    plan = build_plan(
        table,
        req.model,
        extract_features(req, count, headers, None),
        parse_request_preferences(routing),
        health=health,
        max_tokens=req.max_tokens,
    )
    first = plan.entries[0].channel.id if plan.entries else "(none)"
    f = extract_features(req, count, headers, None)
    walks = [regex_walk(table, m, f) for m in (plan.requested, *parse_request_preferences(routing).models)]
    return Row(
        name,
        len(body),
        best_ns(lambda: json.loads(body), repeats, min_s) / 1000,
        best_ns(plan_once, repeats, min_s) / 1000,
        sum(best_ns(walk, repeats, min_s) for walk in walks if walk is not None) / 1000,
        best_ns(lambda: counter.count_request(req), repeats, min_s) / 1000,
        f"{plan.rule or 'pinned'} -> {first} (+{max(len(plan.entries) - 1, 0)})",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--routes", type=Path, default=default_routes())
    ap.add_argument("--catalog", type=Path, default=catalog_dir())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per timed loop (default 0.05)")
    args = ap.parse_args(argv)

    loaded, issues, _ = load(Sources(args.routes, args.catalog, os.environ, assume_keys=True))
    if loaded is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        return 1
    counter = TokenCounter()
    counter.warm()

    rows = [measure(n, p, loaded.table, counter, args.repeats, args.min_time) for n, p in shapes().items()]
    head = (
        "shape",
        "body bytes",
        "json.loads µs",
        "plan µs",
        "plan/json",
        "tokens µs",
        "of plan: regex µs",
        "plan",
    )
    table = [
        (
            r.shape,
            f"{r.body_bytes:,}",
            f"{r.json_us:,.2f}",
            f"{r.plan_us:,.2f}",
            f"{r.plan_us / r.json_us:.2f}",
            f"{r.tokens_us:,.1f}",
            f"{r.regex_us:,.2f}" if r.regex_us else "-",
            r.plan,
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    print(f"python {sys.version.split()[0]}, {args.routes}, every provider assumed keyed")
    for line in [head, tuple("-" * w for w in widths), *table]:
        print(
            "  ".join(
                f"{c:<{w}}" if i in (0, 7) else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    slower = [r.shape for r in rows if r.plan_us >= r.json_us]
    print(
        "planning costs less than json.loads on every shape"
        if not slower
        else f"planning >= json.loads: {', '.join(slower)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
