"""`GET /metrics`: Prometheus text, from the finished request records and the channel health.

A registry per app (never prometheus-client's global one), fed by `observe()` as records are made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from faregate.accounting.record import Recorder, RequestRecord
from faregate.routing.health import Health

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


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


class PromMetrics:
    def __init__(self, health: Health) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["endpoint", "provider", "model", "rule", "status"]
        self.requests = Counter("faregate_requests", "Requests answered", labels, registry=self.registry)
        self.errors = Counter(
            "faregate_errors",
            "Requests answered with an error",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "faregate_request_latency_seconds",
            "Request latency",
            ["endpoint", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "faregate_tokens", "Tokens", ["provider", "model", "kind"], registry=self.registry
        )
        self.cost = Counter(
            "faregate_cost_usd", "Cost in USD", ["provider", "model", "rule"], registry=self.registry
        )
        self.attempts = Counter(
            "faregate_upstream_attempts",
            "Upstream attempts",
            ["provider", "channel", "outcome"],
            registry=self.registry,
        )
        self.registry.register(CooldownCollector(health))
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(...)`, cached: prometheus-client validates and locks on every call."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, r: RequestRecord) -> None:
        provider, model, rule = r.provider or "", r.model_id or "", r.rule or ""
        status = str(r.status)
        self._child(self.requests, r.endpoint, provider, model, rule, status).inc()
        if r.status >= 400:
            self._child(self.errors, r.endpoint, status).inc()
        self._child(self.latency, r.endpoint, provider).observe(r.latency_ms / 1000)
        if r.usage.prompt_tokens:
            self._child(self.tokens, provider, model, "prompt").inc(r.usage.prompt_tokens)
        if r.usage.completion_tokens:
            self._child(self.tokens, provider, model, "completion").inc(r.usage.completion_tokens)
        if r.cost_usd:
            self._child(self.cost, provider, model, rule).inc(float(r.cost_usd))
        for a in r.attempts:
            self._child(self.attempts, a.provider, a.channel, a.outcome).inc()

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
