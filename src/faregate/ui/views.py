"""View models of the dashboard's pages: pure functions from the gateway's own data to what a template shows.

No I/O and no aiohttp here. The numbers come from the same places as the JSON API and the audit: the usage
log's `totals` (what `/v1/metrics` returns), the audit's `spend` check (by day, key, model, provider),
the compiled decision table and the catalog. Money stays `Decimal` until it is text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from faregate.accounting.keys import ApiKey
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import Totals
from faregate.accounting.usage_pages import UsageQuery
from faregate.audit import checks
from faregate.audit.model import AuditResult
from faregate.catalog.merge import Merged, retired_text
from faregate.catalog.model import Offering, Price
from faregate.catalog.store import PriceRow
from faregate.routing.compile import static_exclusion
from faregate.routing.table import DecisionTable
from faregate.values import frozen

PERIODS = (1, 7, 30, 90)
DEFAULT_PERIOD = 30
PAGE_SIZE = 50
TOP_N = 5
HUNDRED = Decimal(100)


# --- formatting ---------------------------------------------------------------------------------------


def usd(amount: Decimal | None) -> str:
    """Exact dollars, never rounded and never in exponent form: at least cents, every digit there is."""
    if amount is None:
        return "—"
    text = format(abs(amount).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{'-' if amount < 0 else ''}${whole}.{frac.ljust(2, '0')}"


def per_million(price: Decimal | None) -> str:
    return "—" if price is None else usd(price)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def percent(part: Decimal | int, whole: Decimal | int) -> str:
    if not whole:
        return "—"
    return format((Decimal(part) * HUNDRED / Decimal(whole)).quantize(Decimal("0.01")), "f") + "%"


# --- period -------------------------------------------------------------------------------------------


def period_of(query: Mapping[str, str]) -> int:
    """The chosen period in days: one of `PERIODS`, else the default."""
    try:
        days = int(query.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


# --- overview -----------------------------------------------------------------------------------------


@frozen
class DayPoint:
    day: str  # YYYY-MM-DD (UTC)
    spend: Decimal
    baseline: Decimal


@frozen
class TopRow:
    value: str
    requests: int
    spend: Decimal
    saved: Decimal


@frozen
class Overview:
    days: int
    requests: int
    errors: int
    tokens: int
    spend: Decimal
    baseline: Decimal
    latency_avg_ms: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    by_day: tuple[DayPoint, ...]
    top: Mapping[str, tuple[TopRow, ...]]  # "model", "provider", "rule", "key"

    @property
    def saved(self) -> Decimal:
        return self.baseline - self.spend

    @property
    def saved_pct(self) -> str:
        found = checks.saved_pct(self.baseline, self.spend)
        return "—" if found is None else found + "%"

    @property
    def error_rate(self) -> str:
        return percent(self.errors, self.requests)

    def chart(self) -> dict[str, Any]:
        """The chart's data: days as unix seconds, dollars as numbers (a chart needs floats; the figures
        printed beside it stay exact)."""
        return {
            "days": [int(datetime.fromisoformat(p.day).replace(tzinfo=UTC).timestamp()) for p in self.by_day],
            "labels": [p.day for p in self.by_day],
            "spend": [float(p.spend) for p in self.by_day],
            "baseline": [float(p.baseline) for p in self.by_day],
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (`p` in 0..100) of `values`; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def days_of(days: int, today: date) -> list[str]:
    """The period's days, oldest first, ending today."""
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def overview(totals: Totals, records: Sequence[RequestRecord], days: int, now: float) -> Overview:
    """`totals`: the usage log's sums for the caller (as `/v1/metrics` reports them); `records`: the
    same requests, for what sums cannot give (latency percentiles, the audit's spend by day and key)."""
    spend_rows = checks.spend(records).rows
    by_dim: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in spend_rows:
        by_dim[row["by"]].append(row)
    per_day = {r["value"]: r for r in by_dim["day"]}
    today = datetime.fromtimestamp(now, UTC).date()
    by_day = tuple(
        DayPoint(
            d,
            Decimal(per_day[d]["spend_usd"]) if d in per_day else Decimal(0),
            Decimal(per_day[d]["baseline_usd"]) if d in per_day else Decimal(0),
        )
        for d in days_of(days, today)
    )
    top: dict[str, tuple[TopRow, ...]] = {}
    for dim in ("model", "provider", "key"):
        rows = [
            TopRow(r["value"], r["requests"], Decimal(r["spend_usd"]), Decimal(r["saved_usd"]))
            for r in by_dim[dim]
        ]
        top[dim] = _top(rows)
    top["rule"] = _top(_group(records, lambda r: r.rule or "(none)"))
    latencies = [r.latency_ms for r in records]
    return Overview(
        days=days,
        requests=totals.requests,
        errors=totals.errors,
        tokens=totals.prompt_tokens + totals.completion_tokens,
        spend=totals.spend_usd,
        baseline=totals.baseline_usd,
        latency_avg_ms=round(totals.latency_ms_sum / totals.requests, 2) if totals.requests else 0.0,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        by_day=by_day,
        top={k: top[k] for k in ("model", "provider", "rule", "key")},
    )


def _group(records: Iterable[RequestRecord], value_of: Any) -> list[TopRow]:
    acc: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for r in records:
        g = acc[value_of(r)]
        g[0] += 1
        g[1] += r.cost_usd
        g[2] += r.baseline_cost_usd - r.cost_usd
    return [TopRow(v, n, s, saved) for v, (n, s, saved) in acc.items()]


def _top(rows: Iterable[TopRow]) -> tuple[TopRow, ...]:
    return tuple(sorted(rows, key=lambda r: (-r.spend, -r.requests, r.value))[:TOP_N])


# --- usage log ----------------------------------------------------------------------------------------


@frozen
class UsageFilters:
    key: str = ""
    model: str = ""
    provider: str = ""
    rule: str = ""
    status: str = ""  # "", "ok" (< 400), "error" (>= 400) or an exact code
    since: str = ""  # YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)
    until: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> UsageFilters:
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        fields = ("key", "model", "provider", "rule", "status", "since", "until")
        return cls(**{f: query.get(f, "").strip() for f in fields}, page=page)

    def query(self, **changes: Any) -> str:
        """The filters as a query string (for paging links and the live refresh)."""
        from urllib.parse import urlencode

        values = {
            "key": self.key,
            "model": self.model,
            "provider": self.provider,
            "rule": self.rule,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == "1")})


def parse_moment(text: str, *, end: bool = False) -> float | None:
    """`2026-12-01` or `2026-12-01T13:45` (UTC) as unix time; a bare date's end is the next midnight."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


def usage_query(f: UsageFilters, key_id: str | None, admin: bool) -> UsageQuery:
    """The filters as the usage log's query, over what the viewer may see: the admin every key's rows, a
    key only its own (`key_id`)."""
    return UsageQuery(
        key_id=key_id,
        all_keys=admin and key_id is None,
        key=f.key,
        model=f.model,
        provider=f.provider,
        rule=f.rule,
        status=f.status,
        since=parse_moment(f.since),
        until=parse_moment(f.until, end=True),
    )


def saved_of(rec: RequestRecord) -> tuple[Decimal, str]:
    saved = rec.baseline_cost_usd - rec.cost_usd
    pct = checks.saved_pct(rec.baseline_cost_usd, rec.cost_usd)
    return saved, "—" if pct is None else pct + "%"


# --- models and prices --------------------------------------------------------------------------------


@frozen
class OfferingRow:
    model: str
    provider: str
    upstream_id: str
    name: str
    kind: str
    price: Price | None
    context: int
    max_output: int | None
    caps: tuple[str, ...]
    data_policy: str
    routable: bool
    why_not: tuple[str, ...]
    history: tuple[PriceRow, ...] = field(default=())

    @property
    def chart_id(self) -> str:
        return "hist-" + "".join(ch if ch.isalnum() else "-" for ch in f"{self.provider}-{self.upstream_id}")

    def history_chart(self) -> dict[str, Any]:
        """Input and output prices per 1M at each change, as steps over time (numbers for the chart)."""
        points = [
            (
                int(datetime.fromisoformat(h.valid_from).timestamp()),
                float(h.price.input),
                float(h.price.output),
            )
            for h in self.history
        ]
        return {
            "t": [p[0] for p in points],
            "input": [p[1] for p in points],
            "output": [p[2] for p in points],
        }


def why_not_routable(o: Offering, table: DecisionTable) -> tuple[str, ...]:
    """Why no request is sent to this offering (empty: it is routable)."""
    reasons: list[str] = []
    if o.retired:
        reasons.append(retired_text(o))
    if o.price is None:
        reasons.append("no price: declare input and output under models: in routes.yaml")
    if o.provider in table.inactive:
        reasons.append(f"{o.provider} inactive: {table.inactive[o.provider]}")
    channel = table.channels.get(f"{o.provider}:{o.upstream_id}")
    if channel is not None:
        excluded = static_exclusion(channel, table.preferences)
        if excluded:
            reasons.append(excluded)
    elif not reasons:
        reasons.append("no channel compiled for it")
    return tuple(reasons)


def offerings(
    merged: Merged, table: DecisionTable, history: Mapping[tuple[str, str], Sequence[PriceRow]]
) -> list[OfferingRow]:
    """Every offering of the enabled providers, by model then provider, with why it is not routable."""
    rows = []
    for o in sorted(merged.offerings, key=lambda o: (o.model_id, o.provider, o.upstream_id)):
        info = merged.providers.get(o.provider)
        policy = info.data_collection if info else "?"
        why = why_not_routable(o, table)
        rows.append(
            OfferingRow(
                model=o.model_id,
                provider=o.provider,
                upstream_id=o.upstream_id,
                name=o.name or o.model_id,
                kind=o.kind,
                price=o.price,
                context=o.context,
                max_output=o.max_output,
                caps=tuple(sorted(o.caps)),
                data_policy=policy,
                routable=not why,
                why_not=why,
                history=tuple(history.get((o.provider, o.upstream_id), ())),
            )
        )
    return rows


# --- keys ---------------------------------------------------------------------------------------------


@frozen
class KeyRow:
    key: ApiKey
    spent: Decimal

    @property
    def remaining(self) -> Decimal | None:
        return None if self.key.budget_usd is None else self.key.budget_usd - self.spent


def key_rows(keys: Iterable[ApiKey], spent: Mapping[str, Decimal]) -> list[KeyRow]:
    """Active keys first (newest first), then the revoked ones."""
    ordered = sorted(keys, key=lambda k: (k.revoked is not None, -k.created))
    return [KeyRow(k, spent.get(k.id, Decimal(0))) for k in ordered]


@frozen
class Limits:
    budget_usd: Decimal | None
    rpm: int | None
    tpm: int | None
    group: str | None


def parse_limits(form: Mapping[str, str]) -> Limits:
    """A key form's limits (empty: no limit). Raises ValueError with a message for the page."""

    def count(name: str) -> int | None:
        text = form.get(name, "").strip()
        if not text:
            return None
        if not text.isdigit() or int(text) <= 0:
            raise ValueError(f"{name} must be a whole number above 0")
        return int(text)

    budget_text = form.get("budget", "").strip().lstrip("$")
    budget = None
    if budget_text:
        try:
            budget = Decimal(budget_text)
        except InvalidOperation:
            raise ValueError("budget must be an amount in USD, e.g. 5 or 0.25") from None
        if not budget.is_finite() or budget < 0:
            raise ValueError("budget must be an amount in USD, e.g. 5 or 0.25")
    group = form.get("group", "").strip() or None
    return Limits(budget, count("rpm"), count("tpm"), group)


# --- audit --------------------------------------------------------------------------------------------

AUDIT_ROWS_SHOWN = 200


@frozen
class AuditSectionView:
    name: str
    title: str
    findings: int
    failing: bool
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    total_rows: int
    notes: tuple[str, ...]


def audit_view(result: AuditResult) -> list[AuditSectionView]:
    """`faregate audit`'s sections with their counts, rows cut at `AUDIT_ROWS_SHOWN` for the page."""
    failed = set(result.failed)
    return [
        AuditSectionView(
            s.name,
            s.title,
            s.findings,
            s.name in failed,
            s.columns,
            s.rows[:AUDIT_ROWS_SHOWN],
            len(s.rows),
            s.notes,
        )
        for s in result.sections
    ]


# --- explain form -------------------------------------------------------------------------------------


@frozen
class ExplainForm:
    """The routes page's explain form: a message and what the request carries, as an OpenAI chat body."""

    model: str = "auto"
    message: str = "Hello"
    images: bool = False
    tools: bool = False
    json_mode: bool = False
    stream: bool = False

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> ExplainForm:
        return cls(
            model=form.get("model", "").strip() or "auto",
            message=form.get("message", ""),
            images=form.get("images") == "on",
            tools=form.get("tools") == "on",
            json_mode=form.get("json_mode") == "on",
            stream=form.get("stream") == "on",
        )

    def body(self) -> dict[str, Any]:
        content: Any = self.message
        if self.images:
            content = [
                {"type": "text", "text": self.message},
                {"type": "image_url", "image_url": {"url": "https://example.com/image.png"}},
            ]
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        if self.tools:
            fn = {"name": "lookup", "description": "Look something up", "parameters": {"type": "object"}}
            body["tools"] = [{"type": "function", "function": fn}]
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        if self.stream:
            body["stream"] = True
        return body
