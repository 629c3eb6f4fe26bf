"""The `/metrics` text from `PromMetrics`: what prometheus-client's own Counter and Histogram would write."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from faregate.accounting.prometheus import LATENCY_BUCKETS, PromMetrics
from faregate.accounting.record import Attempt, RequestRecord
from faregate.canonical import Usage
from faregate.routing.health import Health


def record(status: int, latency_ms: float, rule: str | None = None) -> RequestRecord:
    return RequestRecord(
        id=f"r{latency_ms}",
        created=0.0,
        endpoint="chat",
        requested="auto",
        status=status,
        rule=rule,
        model_id="openai/gpt-4o-mini",
        provider="openai",
        usage=Usage(10, 3),
        cost_usd=Decimal("0.0001"),
        latency_ms=latency_ms,
        attempts=(Attempt("openai:gpt-4o-mini", "openai", status, "ok", 1.0),),
    )


def without_created(text: str) -> list[str]:
    return [line for line in text.splitlines() if "_created" not in line]


def reference(records: list[RequestRecord]) -> str:
    """What prometheus-client's own metrics write for `records`, children made at their first add."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "faregate_requests",
        "Requests answered",
        ["endpoint", "provider", "model", "rule", "status"],
        registry=registry,
    )
    errors = Counter(
        "faregate_errors", "Requests answered with an error", ["endpoint", "status"], registry=registry
    )
    latency = Histogram(
        "faregate_request_latency_seconds",
        "Request latency",
        ["endpoint", "provider"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    tokens = Counter("faregate_tokens", "Tokens", ["provider", "model", "kind"], registry=registry)
    cost = Counter("faregate_cost_usd", "Cost in USD", ["provider", "model", "rule"], registry=registry)
    attempts = Counter(
        "faregate_upstream_attempts",
        "Upstream attempts",
        ["provider", "channel", "outcome"],
        registry=registry,
    )
    for r in records:
        provider, model, rule = r.provider or "", r.model_id or "", r.rule or ""
        requests.labels(r.endpoint, provider, model, rule, str(r.status)).inc()
        if r.status >= 400:
            errors.labels(r.endpoint, str(r.status)).inc()
        latency.labels(r.endpoint, provider).observe(r.latency_ms / 1000)
        if r.usage.prompt_tokens:
            tokens.labels(provider, model, "prompt").inc(r.usage.prompt_tokens)
        if r.usage.completion_tokens:
            tokens.labels(provider, model, "completion").inc(r.usage.completion_tokens)
        if r.cost_usd:
            cost.labels(provider, model, rule).inc(float(r.cost_usd))
        for a in r.attempts:
            attempts.labels(a.provider, a.channel, a.outcome).inc()
    return generate_latest(registry).decode()


def compare(records: list[RequestRecord]) -> None:
    """`PromMetrics` writes for `records` what prometheus-client's own metrics write, then its cooldowns;
    the `_created` samples name the same children in the same order."""
    ours = PromMetrics(Health(cooldown_s=1, max_retry_after_s=1))
    for r in records:
        ours.observe(r)
    ours_text, theirs = ours.render().decode(), reference(records)
    cooldown = [line for line in ours_text.splitlines() if "cooldown" in line]
    assert without_created(ours_text) == without_created(theirs) + cooldown
    created = [line.split(" ")[0] for line in ours_text.splitlines() if "_created{" in line]
    assert created == [line.split(" ")[0] for line in theirs.splitlines() if "_created{" in line]


def test_the_text_is_prometheus_clients_own() -> None:
    compare([record(200, 5.0), record(200, 10.0, "cheap"), record(502, 0.1), record(200, 250_000.0)])


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket() -> None:
    prom = PromMetrics(Health(cooldown_s=1, max_retry_after_s=1))
    prom.observe(record(200, 10.0))  # 0.01 s: exactly the `le="0.01"` bound
    families = {f.name: f for f in text_string_to_metric_families(prom.render().decode())}
    buckets = {
        s.labels["le"]: s.value
        for s in families["faregate_request_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.005"] == 0 and buckets["0.01"] == 1 and buckets["+Inf"] == 1


def test_a_child_appears_when_first_added_to_in_the_order_made() -> None:
    """Requests of one kind that add no tokens or cost at first, then do; failures with no channel."""
    quiet = replace(record(200, 5.0), usage=Usage(0, 0), cost_usd=Decimal(0))
    failed = replace(record(502, 1.0), provider=None, model_id=None, usage=Usage(), cost_usd=Decimal(0))
    other = replace(record(200, 7.0), provider="groq", model_id="meta/llama", usage=Usage(0, 9))
    compare([quiet, failed, quiet, other, record(200, 3.0), failed, replace(other, usage=Usage(4, 0))])
