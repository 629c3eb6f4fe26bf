"""Settle: price an answer (`charge` → `Charge`, with the `x-faregate` object that reports it), and once the
request is over, whatever happened, settle its budget reservation and write exactly one `RequestRecord`
(`settle`). `Exchange` is who asked and when; the other stages' values come in as they were returned.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Ticket
from faregate.accounting.pricing import cost_usd, savings, usd_text
from faregate.accounting.record import RequestRecord
from faregate.canonical import Usage
from faregate.pipeline.accounts import DEFAULT_MAX_OUTPUT
from faregate.pipeline.execute import NO_TRACE, Trace
from faregate.pipeline.runtime import Runtime
from faregate.routing.features import Features
from faregate.routing.plan import Plan
from faregate.routing.table import Baseline, Channel
from faregate.values import frozen


@frozen
class Exchange:
    """One request's identity: its id, endpoint, the caller's key and app, when it started."""

    id: str
    endpoint: str
    created: float  # unix time
    started: float  # perf_counter, for the latency
    key: ApiKey | None = None
    app: str | None = None  # app attribution (HTTP-Referer / X-Title): a label, never an identity
    app_url: str | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def key_group(self) -> str | None:
        return (self.key.group or None) if self.key else None


@frozen
class Charge:
    """What an answer cost: the channel and usage priced, the baseline's cost, and `extras`, the `cost` and
    `x-faregate` fields the answer carries."""

    channel: Channel
    usage: Usage
    cost: Decimal
    baseline_cost: Decimal
    extras: dict[str, Any]


@frozen
class Ended:
    """How the request ended, for the record: the status the client got, the error, the answer's finish."""

    status: int = 200
    error: str | None = None
    finish_reason: str | None = None


def charge(
    rt: Runtime,
    ex: Exchange,
    ch: Channel,
    usage: Usage,
    plan: Plan | None,
    trace: Trace,
    ticket: Ticket | None,
    *,
    baseline: Baseline | None,
) -> Charge:
    """Cost and savings of the answer, and the `x-faregate` object that reports them. `baseline`: what
    savings are measured against (None: nothing, e.g. for embeddings)."""
    cost = cost_usd(ch.price, usage)
    saved = savings(cost, baseline.price if baseline else None, usage)
    saved_json: dict[str, Any] = saved.as_json()
    saved_json["baseline"] = baseline.model_id if baseline else None
    reason = ""
    if plan is not None:
        for e in plan.entries:
            if e.channel.id == ch.id:
                reason = e.reason
                break
    routing = {
        "provider": ch.provider,
        "model": ch.model_id,
        "channel": ch.id,
        "route": plan.route if plan else None,
        "rule": plan.rule if plan else None,
        "reason": reason,
        "attempts": [a.as_json() for a in trace.attempts],
        "transforms": list(trace.transforms),
        "dropped_params": [*plan.ignored, *trace.dropped] if plan else list(trace.dropped),
    }
    report: dict[str, Any] = {"request_id": ex.id, "routing": routing, "savings": saved_json}
    if ticket is not None and ticket.max_tokens is not None:
        report.update(budget_json(ticket))
    report["usage_estimated"] = usage.estimated
    report["simulated"] = rt.simulated
    extras = {"cost": saved_json["actual_cost"], "x-faregate": report}  # usd_number(cost), made once
    return Charge(ch, usage, cost, saved.alternative_cost, extras)


def budget_json(t: Ticket | None) -> dict[str, Any]:
    """`budget` in `x-faregate`, when the key's remaining budget lowered the answer's bound."""
    if t is None or t.max_tokens is None:
        return {}
    left = t.left_usd if t.left_usd is not None else Decimal(0)
    return {
        "budget": {
            "max_tokens": t.max_tokens,
            "default_max_tokens": DEFAULT_MAX_OUTPUT,
            "remaining_usd": usd_text(left),
            "reason": f"max_tokens lowered from {DEFAULT_MAX_OUTPUT} to {t.max_tokens}: what the key's"
            f" remaining budget (${usd_text(left)}) affords at the dearest channel of the plan",
        }
    }


def response_headers(ex: Exchange, ch: Channel, plan: Plan | None, cost: Decimal | None) -> dict[str, str]:
    """The `X-Faregate-*` headers of an answer (`cost` None: a stream, whose cost is not known yet)."""
    h = {
        "X-Faregate-Request-Id": ex.id,  # a stream is prepared before the middleware could add it
        "X-Faregate-Provider": ch.provider,
        "X-Faregate-Model": ch.model_id,
        "X-Faregate-Channel": ch.id,
    }
    if plan and plan.rule:
        h["X-Faregate-Rule"] = plan.rule
    if cost is not None:
        h["X-Faregate-Cost"] = usd_text(cost)
    return h


def record(
    ex: Exchange,
    *,
    requested: str,
    stream: bool,
    features: Features | None,
    plan: Plan | None,
    trace: Trace = NO_TRACE,
    charged: Charge | None,
    ended: Ended,
    ttft_ms: float | None,
) -> RequestRecord:
    ch = charged.channel if charged else None
    return RequestRecord(
        id=ex.id,
        created=ex.created,
        endpoint=ex.endpoint,
        requested=requested,
        status=ended.status,
        key_id=ex.key_id,
        route=plan.route if plan else None,
        rule=plan.rule if plan else None,
        model_id=ch.model_id if ch else None,
        provider=ch.provider if ch else None,
        channel=ch.id if ch else None,
        stream=stream,
        usage=charged.usage if charged else Usage(),
        cost_usd=charged.cost if charged else Decimal(0),
        baseline_cost_usd=charged.baseline_cost if charged else Decimal(0),
        latency_ms=round((time.perf_counter() - ex.started) * 1000, 2),
        ttft_ms=None if ttft_ms is None else round(ttft_ms, 2),
        attempts=trace.attempts,
        plan=tuple([e.channel.id for e in plan.entries]) if plan else (),
        features={} if features is None else features.as_json(),
        error=ended.error,
        app=ex.app,
        app_url=ex.app_url,
        finish_reason=ended.finish_reason,
    )


def settle(rt: Runtime, ticket: Ticket | None, charged: Charge | None, row: RequestRecord) -> None:
    """Settle the budget reservation with the cost recorded (zero when nothing was billed), so the budget
    and the usage log always agree, then write the request's one record. Called once, whatever happened:
    before a plain answer's bytes go out (aiohttp sends them once the handler returns), so the row reaches
    the journal first; a stream has journaled its row (`provisional`) before its closing events."""
    if ticket is not None and rt.accounts is not None:
        cost = charged.cost if charged else Decimal(0)
        rt.accounts.settle(ticket, cost, charged.usage.completion_tokens if charged else 0)
    rt.recorder.record(row)


def provisional(rt: Runtime, row: RequestRecord) -> None:
    """A stream's row as it stands before its closing events are written; the final record replaces it."""
    rt.recorder.provisional(row)
