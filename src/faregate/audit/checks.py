"""The audit's six checks, as pure functions over prices, history and usage rows (no I/O here).

1 unpriced: routable offerings without a price, zero prices at providers that are not free;
2 drift: declared prices that differ from the last synced listing price; 3 changes: price history;
4 billing: every usage-log cost recomputed from the price in force at the request's time;
5 routes: what each alias would cost per 1K typical requests, against the savings baseline;
6 spend: spend and savings by day, key, model, provider and app.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

from faregate.accounting.pricing import cost_usd
from faregate.accounting.record import RequestRecord
from faregate.audit.model import Section
from faregate.audit.shapes import Shape
from faregate.canonical import Usage
from faregate.catalog.model import Offering, Price, ProviderInfo
from faregate.catalog.store import PriceRow
from faregate.routing.features import Features
from faregate.routing.plan import build_plan
from faregate.routing.table import DecisionTable

PriceAt = Callable[[str, str, float], Price | None]
FIELDS = ("input", "output", "cached_input")
HUNDRED = Decimal(100)


def usd(d: Decimal | None) -> str | None:
    return None if d is None else format(d.normalize(), "f")


def pct(old: Decimal, new: Decimal) -> str | None:
    return None if old == 0 else format(((new - old) * HUNDRED / old).quantize(Decimal("0.01")), "f")


def saved_pct(baseline: Decimal, actual: Decimal) -> str | None:
    """Percent of the baseline cost saved (positive when cheaper than the baseline)."""
    return (
        None
        if baseline == 0
        else format(((baseline - actual) * HUNDRED / baseline).quantize(Decimal("0.01")), "f")
    )


def alias_kind(table: DecisionTable, alias: str) -> str:
    kinds = {c.kind for r in table.routes[table.aliases[alias]] for c in r.channels}
    return "embedding" if kinds == {"embedding"} else "chat"


def unpriced(offerings: Iterable[Offering], providers: Mapping[str, ProviderInfo]) -> Section:
    rows = []
    for o in sorted(offerings, key=lambda o: (o.provider, o.model_id)):
        if o.retired:
            continue
        if o.price is None:
            rows.append(
                {
                    "model": o.model_id,
                    "provider": o.provider,
                    "upstream_id": o.upstream_id,
                    "issue": "no price",
                }
            )
        elif o.price.is_free() and not providers[o.provider].free:
            rows.append(
                {
                    "model": o.model_id,
                    "provider": o.provider,
                    "upstream_id": o.upstream_id,
                    "issue": "zero price at a provider that is not free",
                }
            )
    return Section(
        "unpriced",
        "Routable offerings without a real price",
        ("model", "provider", "upstream_id", "issue"),
        tuple(rows),
        len(rows),
    )


def drift(
    declared: Iterable[Offering], synced: Mapping[tuple[str, str], Price], tolerance_pct: Decimal
) -> Section:
    rows = []
    for o in sorted(declared, key=lambda o: (o.provider, o.model_id)):
        listed = synced.get((o.provider, o.upstream_id))
        if o.price is None or listed is None:
            continue
        for name in FIELDS:
            old, new = getattr(o.price, name), getattr(listed, name)
            if old is None or new is None or old == new:
                continue
            change = abs(new - old) * HUNDRED / old if old else HUNDRED
            if change > tolerance_pct:
                rows.append(
                    {
                        "model": o.model_id,
                        "provider": o.provider,
                        "field": name,
                        "declared": usd(old),
                        "synced": usd(new),
                        "change_pct": pct(old, new),
                    }
                )
    note = f"tolerance {tolerance_pct}% (prices USD per 1M tokens)"
    cols = ("model", "provider", "field", "declared", "synced", "change_pct")
    return Section(
        "drift",
        "Declared prices that differ from the last synced listing",
        cols,
        tuple(rows),
        len(rows),
        (note,),
    )


def changes(history: Iterable[PriceRow], since_iso: str, model_of: Mapping[tuple[str, str], str]) -> Section:
    by_offering: dict[tuple[str, str], list[PriceRow]] = defaultdict(list)
    for r in history:
        by_offering[(r.provider, r.upstream_id)].append(r)
    rows = []
    for key, items in sorted(by_offering.items()):
        items.sort(key=lambda r: r.valid_from)
        for before, after in pairwise(items):
            if after.valid_from < since_iso:
                continue
            for name in FIELDS:
                old, new = getattr(before.price, name), getattr(after.price, name)
                if old is not None and new is not None and old != new:
                    rows.append(
                        {
                            "model": model_of.get(key, key[1]),
                            "provider": key[0],
                            "field": name,
                            "at": after.valid_from,
                            "old": usd(old),
                            "new": usd(new),
                            "change_pct": pct(old, new),
                        }
                    )
    cols = ("model", "provider", "field", "at", "old", "new", "change_pct")
    return Section("changes", "Price changes from the synced history", cols, tuple(rows), len(rows))


def upstream_of(channel: str, provider: str) -> str:
    """A channel id is `provider:upstream_id`, with `#n` for a provider's n-th key."""
    rest = channel[len(provider) + 1 :] if channel.startswith(provider + ":") else channel
    head, sep, tail = rest.rpartition("#")
    return head if sep and tail.isdigit() else rest


def billing(records: Iterable[RequestRecord], price_at: PriceAt) -> Section:
    rows, checked = [], 0
    for r in records:
        if r.status >= 400 or r.channel is None or r.provider is None:
            continue
        checked += 1
        price = price_at(r.provider, upstream_of(r.channel, r.provider), r.created)
        if price is None:
            rows.append(_bill_row(r, None, "no price for this channel at the request's time"))
            continue
        expected = cost_usd(price, r.usage)
        if expected != r.cost_usd:
            rows.append(_bill_row(r, expected, "recorded cost differs from the price table"))
    note = f"{checked} answered requests recomputed"
    cols = (
        "request_id",
        "time",
        "provider",
        "channel",
        "prompt_tokens",
        "completion_tokens",
        "recorded",
        "expected",
        "issue",
    )
    return Section(
        "billing", "Usage-log costs recomputed from prices and tokens", cols, tuple(rows), len(rows), (note,)
    )


def _bill_row(r: RequestRecord, expected: Decimal | None, issue: str) -> dict[str, object]:
    return {
        "request_id": r.id,
        "time": datetime.fromtimestamp(r.created, UTC).isoformat(timespec="seconds"),
        "provider": r.provider,
        "channel": r.channel,
        "prompt_tokens": r.usage.prompt_tokens,
        "completion_tokens": r.usage.completion_tokens,
        "recorded": usd(r.cost_usd),
        "expected": usd(expected),
        "issue": issue,
    }


def routes(table: DecisionTable, shapes: Sequence[Shape]) -> Section:
    rows, empty = [], 0
    base = table.baseline
    for alias in sorted(table.aliases):
        kind = alias_kind(table, alias)
        for shape in (s for s in shapes if s.kind == kind):
            f = Features(
                has_images=shape.images,
                has_tools=shape.tools,
                json_mode=shape.json_mode,
                prompt_tokens=shape.prompt_tokens,
                user_text=shape.text,
            )
            try:
                plan = build_plan(table, alias, f, kind=shape.kind)
            except Exception as e:  # a route with no matching rule for this shape
                rows.append(
                    {"alias": alias, "shape": shape.name, "rule": None, "channel": None, "issue": str(e)}
                )
                empty += 1
                continue
            if not plan.entries:
                rows.append(
                    {
                        "alias": alias,
                        "shape": shape.name,
                        "rule": plan.rule,
                        "channel": None,
                        "issue": "no channel",
                    }
                )
                empty += 1
                continue
            ch = plan.entries[0].channel
            usage = Usage(shape.prompt_tokens, shape.completion_tokens)
            per_1k = cost_usd(ch.price, usage) * 1000
            base_1k = cost_usd(base.price, usage) * 1000 if base and shape.kind == "chat" else None
            rows.append(
                {
                    "alias": alias,
                    "shape": shape.name,
                    "rule": plan.rule,
                    "channel": ch.id,
                    "cost_per_1k": usd(per_1k),
                    "baseline_per_1k": usd(base_1k),
                    "saved_pct": saved_pct(base_1k, per_1k) if base_1k else None,
                    "issue": None,
                }
            )
    note = f"baseline {base.model_id}" if base else "no savings baseline configured"
    cols = ("alias", "shape", "rule", "channel", "cost_per_1k", "baseline_per_1k", "saved_pct", "issue")
    return Section(
        "routes", "What each alias costs per 1K typical requests", cols, tuple(rows), empty, (note,)
    )


def spend(records: Iterable[RequestRecord]) -> Section:
    groups: dict[tuple[str, str], list[Decimal | int]] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for r in records:
        day = datetime.fromtimestamp(r.created, UTC).date().isoformat()
        for dim, value in (
            ("day", day),
            ("key", r.key_id or "(anonymous)"),
            ("model", r.model_id or "(none)"),
            ("provider", r.provider or "(none)"),
            ("app", r.app or "(none)"),  # HTTP-Referer / X-Title: what each app spent
        ):
            g = groups[(dim, value)]
            g[0] += 1
            g[1] += r.usage.total_tokens
            g[2] += r.cost_usd
            g[3] += r.baseline_cost_usd
    rows = []
    for (dim, value), (n, tokens, spent, baseline) in sorted(groups.items()):
        assert isinstance(spent, Decimal) and isinstance(baseline, Decimal)
        rows.append(
            {
                "by": dim,
                "value": value,
                "requests": n,
                "tokens": tokens,
                "spend_usd": usd(spent),
                "baseline_usd": usd(baseline),
                "saved_usd": usd(baseline - spent),
                "saved_pct": saved_pct(baseline, spent),
            }
        )
    cols = ("by", "value", "requests", "tokens", "spend_usd", "baseline_usd", "saved_usd", "saved_pct")
    return Section("spend", "Spend and savings by day, key, model, provider and app", cols, tuple(rows), 0)
