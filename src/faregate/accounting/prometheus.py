"""`GET /metrics`: Prometheus text, from the finished request records and the channel health.

A registry per app (never prometheus-client's global one). `observe()` runs once per request, so it only
adds to plain numbers (no per-sample lock or label validation: one event loop thread feeds them): each
metric's children by label values, and per kind of request (endpoint, provider, model, rule, status) the
children it adds to, found with one lookup. A child is made when it is first added to, as
prometheus-client makes one at its first `labels()`. A collector turns them into metric families when
`/metrics` is scraped, in the text prometheus-client's own `Counter` and `Histogram` would write
(`_total`, `_created`, cumulative buckets).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from faregate.accounting.record import Recorder, RequestRecord
from faregate.routing.health import Health

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
Labels = tuple[str, ...]


class CooldownCollector(Collector):
    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "faregate_channel_cooldown_seconds", "Seconds left of a channel's cooldown", labels=["channel"]
        )
        for cid, snap in self.health.snapshot(time.monotonic()).items():
            g.add_metric([cid], float(snap["cooldown_s"] or 0))
        yield g


def _go_float(bound: float) -> str:
    """A bucket bound as prometheus-client writes `le` (`1.0`, `0.005`, `120.0`)."""
    return repr(float(bound))


@dataclass(slots=True)
class CounterChild:
    """One counter child: its value, and the unix time it was made."""

    value: float
    created: float


@dataclass(slots=True)
class CounterSeries:
    """One counter's children by label values, in the order they were made."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    children: dict[Labels, CounterChild] = field(default_factory=dict)

    def child(self, labels: Labels) -> CounterChild:
        found = self.children.get(labels)
        if found is None:
            found = self.children[labels] = CounterChild(0.0, time.time())
        return found

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        self.child(labels).value += amount

    def families(self) -> Iterator[Metric]:
        total = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        created = GaugeMetricFamily(f"{self.name}_created", self.documentation, labels=self.labels)
        for labels, child in list(self.children.items()):
            total.add_metric(labels, child.value)
            created.add_metric(labels, child.created)
        yield total
        if self.children:
            yield created


@dataclass(slots=True)
class HistogramChild:
    """One histogram child: per-bucket counts (not cumulative; the last is +Inf), sum, made at."""

    buckets: tuple[float, ...]
    counts: list[int]
    sum: float
    created: float

    def observe(self, amount: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, amount)] += 1  # `le`: a value on a bound counts in it
        self.sum += amount


@dataclass(slots=True)
class HistogramSeries:
    """One histogram's children by label values, in the order they were made."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]
    children: dict[Labels, HistogramChild] = field(default_factory=dict)

    def child(self, labels: Labels) -> HistogramChild:
        found = self.children.get(labels)
        if found is None:
            counts = [0] * (len(self.buckets) + 1)
            found = self.children[labels] = HistogramChild(self.buckets, counts, 0.0, time.time())
        return found

    def observe(self, labels: Labels, amount: float) -> None:
        self.child(labels).observe(amount)

    def families(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        created = GaugeMetricFamily(f"{self.name}_created", self.documentation, labels=self.labels)
        bounds = [_go_float(b) for b in self.buckets] + ["+Inf"]
        for labels, child in list(self.children.items()):
            cumulative, running = [], 0
            for bound, n in zip(bounds, child.counts, strict=True):
                running += n
                cumulative.append((bound, float(running)))
            family.add_metric(labels, cumulative, child.sum)
            created.samples.append(
                Sample(f"{self.name}_created", dict(zip(self.labels, labels, strict=True)), child.created)
            )
        yield family
        if self.children:
            yield created


@dataclass(slots=True)
class Children:
    """The children one kind of request (endpoint, provider, model, rule, status) adds to, found once:
    made when the kind is first seen, except the ones only some of its requests add to (tokens, cost),
    made when first needed, so that no child appears before it is added to."""

    metrics: PromMetrics
    provider: str
    model: str
    rule: str
    requests: CounterChild
    errors: CounterChild | None
    latency: HistogramChild
    prompt: CounterChild | None = None
    completion: CounterChild | None = None
    cost: CounterChild | None = None

    def prompt_tokens(self) -> CounterChild:
        if self.prompt is None:
            self.prompt = self.metrics.tokens.child((self.provider, self.model, "prompt"))
        return self.prompt

    def completion_tokens(self) -> CounterChild:
        if self.completion is None:
            self.completion = self.metrics.tokens.child((self.provider, self.model, "completion"))
        return self.completion

    def cost_usd(self) -> CounterChild:
        if self.cost is None:
            self.cost = self.metrics.cost.child((self.provider, self.model, self.rule))
        return self.cost


class RequestCollector(Collector):
    def __init__(self, series: tuple[CounterSeries | HistogramSeries, ...]) -> None:
        self.series = series

    def collect(self) -> Iterator[Metric]:
        for s in self.series:
            yield from s.families()


class PromMetrics:
    def __init__(self, health: Health) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = CounterSeries(
            "faregate_requests", "Requests answered", ("endpoint", "provider", "model", "rule", "status")
        )
        self.errors = CounterSeries(
            "faregate_errors", "Requests answered with an error", ("endpoint", "status")
        )
        self.latency = HistogramSeries(
            "faregate_request_latency_seconds", "Request latency", ("endpoint", "provider"), LATENCY_BUCKETS
        )
        self.tokens = CounterSeries("faregate_tokens", "Tokens", ("provider", "model", "kind"))
        self.cost = CounterSeries("faregate_cost_usd", "Cost in USD", ("provider", "model", "rule"))
        self.attempts = CounterSeries(
            "faregate_upstream_attempts", "Upstream attempts", ("provider", "channel", "outcome")
        )
        self.registry.register(
            RequestCollector(
                (self.requests, self.errors, self.latency, self.tokens, self.cost, self.attempts)
            )
        )
        self.registry.register(CooldownCollector(health))
        self.kinds: dict[tuple[str, str | None, str | None, str | None, int], Children] = {}

    def observe(self, r: RequestRecord) -> None:
        key = (r.endpoint, r.provider, r.model_id, r.rule, r.status)
        kind = self.kinds.get(key)
        if kind is None:
            kind = self.kinds[key] = self._kind(r)
        kind.requests.value += 1
        if kind.errors is not None:
            kind.errors.value += 1
        kind.latency.observe(r.latency_ms / 1000)
        usage = r.usage
        if usage.prompt_tokens:
            (kind.prompt or kind.prompt_tokens()).value += usage.prompt_tokens
        if usage.completion_tokens:
            (kind.completion or kind.completion_tokens()).value += usage.completion_tokens
        if r.cost_usd:
            (kind.cost or kind.cost_usd()).value += float(r.cost_usd)
        for a in r.attempts:
            self.attempts.inc((a.provider, a.channel, a.outcome))

    def _kind(self, r: RequestRecord) -> Children:
        provider, model, rule = r.provider or "", r.model_id or "", r.rule or ""
        status = str(r.status)
        return Children(
            self,
            provider,
            model,
            rule,
            requests=self.requests.child((r.endpoint, provider, model, rule, status)),
            errors=self.errors.child((r.endpoint, status)) if r.status >= 400 else None,
            latency=self.latency.child((r.endpoint, provider)),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObservedRecorder:
    """Records to the usage log (or memory) and feeds the Prometheus counters."""

    def __init__(self, inner: Recorder, prom: PromMetrics) -> None:
        self.inner, self.prom = inner, prom

    def record(self, rec: RequestRecord) -> None:
        self.inner.record(rec)
        self.prom.observe(rec)

    def provisional(self, rec: RequestRecord) -> None:
        self.inner.provisional(rec)  # observed once, when recorded

    def get(self, request_id: str) -> RequestRecord | None:
        return self.inner.get(request_id)
