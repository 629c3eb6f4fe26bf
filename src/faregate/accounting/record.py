"""The finished record of one request: what the usage log stores and `/v1/requests/{id}` shows."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, field, replace
from decimal import Decimal
from typing import Any, Protocol

from faregate.canonical import Usage
from faregate.secrets import Scrubber
from faregate.values import frozen


@frozen
class Attempt:
    channel: str
    provider: str
    status: int | None  # upstream HTTP status; None for connect errors and timeouts
    outcome: str  # "ok" | "connect" | "timeout" | "status" | "protocol" | "dropped"
    latency_ms: float
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "provider": self.provider,
            "status": self.status,
            "outcome": self.outcome,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


@frozen
class RequestRecord:
    id: str
    created: float  # unix time
    endpoint: str  # "chat" | "messages" | "embeddings"
    requested: str
    status: int  # HTTP status returned to the client
    key_id: str | None = None
    route: str | None = None
    rule: str | None = None
    model_id: str | None = None
    provider: str | None = None
    channel: str | None = None
    stream: bool = False
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    baseline_cost_usd: Decimal = Decimal(0)
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempts: tuple[Attempt, ...] = ()
    plan: tuple[str, ...] = ()
    features: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    app: str | None = None  # X-Title, else the referer's host (a label, never an identity)
    app_url: str | None = None  # HTTP-Referer as sent, bounded
    finish_reason: str | None = None  # why the answer ended (canonical: stop, length, tool_calls, ...)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cost_usd"] = str(self.cost_usd)
        d["baseline_cost_usd"] = str(self.baseline_cost_usd)
        d["usage"] = {
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total_tokens,
            "cached_tokens": self.usage.cache_read_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "estimated": self.usage.estimated,
        }
        d["features"] = dict(self.features)
        return d


class Recorder(Protocol):
    """Where finished records go (the usage log). `record` must not block the event loop. `provisional`
    is a record as it stands before the answer's last bytes, superseded by `record` (kept only where a
    crash could lose it: the usage log's journal)."""

    def record(self, rec: RequestRecord) -> None: ...

    def provisional(self, rec: RequestRecord) -> None: ...

    def get(self, request_id: str) -> RequestRecord | None: ...


class MemoryRecorder:
    """Keeps the last `capacity` records in memory: traces without a store."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()

    def record(self, rec: RequestRecord) -> None:
        self._records[rec.id] = rec
        while len(self._records) > self.capacity:
            self._records.popitem(last=False)

    def provisional(self, rec: RequestRecord) -> None:
        pass  # memory does not outlive a crash: nothing to keep

    def get(self, request_id: str) -> RequestRecord | None:
        return self._records.get(request_id)

    def all(self) -> list[RequestRecord]:
        return list(self._records.values())


def has_errors(rec: RequestRecord) -> bool:
    """Does the record carry an error message (its own, or an attempt's)?"""
    return rec.error is not None or any(a.error for a in rec.attempts)


def scrub_record(rec: RequestRecord, scrubber: Scrubber) -> RequestRecord:
    """The record with every error message scrubbed of keys (the upstream's words end up in them); the
    record itself when it carries none."""
    if not has_errors(rec):
        return rec
    return replace(
        rec,
        error=scrubber.scrub(rec.error) if rec.error else rec.error,
        attempts=tuple(replace(a, error=scrubber.scrub(a.error)) if a.error else a for a in rec.attempts),
    )


class ScrubbingRecorder:
    """Scrubs every record of the current configured keys before the usage log or memory sees it."""

    def __init__(self, inner: Recorder, scrubber: Callable[[], Scrubber]) -> None:
        self.inner, self.scrubber = inner, scrubber

    def record(self, rec: RequestRecord) -> None:
        self.inner.record(scrub_record(rec, self.scrubber()) if has_errors(rec) else rec)

    def provisional(self, rec: RequestRecord) -> None:
        self.inner.provisional(scrub_record(rec, self.scrubber()) if has_errors(rec) else rec)

    def get(self, request_id: str) -> RequestRecord | None:
        return self.inner.get(request_id)
