"""`GET /metrics`: Prometheus text, from the finished request records and the channel health.

A registry per app (never prometheus-client's global one). `observe()` runs once per request, so it only
adds to plain dicts keyed by label values (no per-sample lock or label validation: one event loop thread
feeds them); a collector turns them into metric families when `/metrics` is scraped, in the text
prometheus-client's own `Counter` and `Histogram` would write (`_total`, `_created`, cumulative buckets).
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
class CounterSeries:
    """One counter's children: label values → (value, the unix time the child was made)."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    values: dict[Labels, float] = field(default_factory=dict)
    created: dict[Labels, float] = field(default_factory=dict)

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        values = self.values
        if labels in values:
            values[labels] += amount
        else:
            values[labels] = amount
            self.created[labels] = time.time()

    def families(self) -> Iterator[Metric]:
        total = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        created = GaugeMetricFamily(f"{self.name}_created", self.documentation, labels=self.labels)
        for labels, value in list(self.values.items()):
            total.add_metric(labels, value)
            created.add_metric(labels, self.created[labels])
        yield total
        if self.values:
            yield created


@dataclass(slots=True)
class HistogramSeries:
    """One histogram's children: label values → per-bucket counts (not cumulative), sum, made at."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=dict)
    created: dict[Labels, float] = field(default_factory=dict)

    def observe(self, labels: Labels, amount: float) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(self.buckets) + 1)  # the last one is +Inf
            self.sums[labels] = 0.0
            self.created[labels] = time.time()
        counts[bisect.bisect_left(self.buckets, amount)] += 1  # `le`: a value on a bound counts in it
        self.sums[labels] += amount

    def families(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        created = GaugeMetricFamily(f"{self.name}_created", self.documentation, labels=self.labels)
        bounds = [_go_float(b) for b in self.buckets] + ["+Inf"]
        for labels, counts in list(self.counts.items()):
            cumulative, running = [], 0
            for bound, n in zip(bounds, counts, strict=True):
                running += n
                cumulative.append((bound, float(running)))
            family.add_metric(labels, cumulative, self.sums[labels])
            created.samples.append(
                Sample(
                    f"{self.name}_created", dict(zip(self.labels, labels, strict=True)), self.created[labels]
                )
            )
        yield family
        if self.counts:
            yield created


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

    def observe(self, r: RequestRecord) -> None:
        provider, model, rule = r.provider or "", r.model_id or "", r.rule or ""
        status = str(r.status)
        self.requests.inc((r.endpoint, provider, model, rule, status))
        if r.status >= 400:
            self.errors.inc((r.endpoint, status))
        self.latency.observe((r.endpoint, provider), r.latency_ms / 1000)
        usage = r.usage
        if usage.prompt_tokens:
            self.tokens.inc((provider, model, "prompt"), usage.prompt_tokens)
        if usage.completion_tokens:
            self.tokens.inc((provider, model, "completion"), usage.completion_tokens)
        if r.cost_usd:
            self.cost.inc((provider, model, rule), float(r.cost_usd))
        for a in r.attempts:
            self.attempts.inc((a.provider, a.channel, a.outcome))

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
