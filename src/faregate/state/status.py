"""Whether Redis answers: logged on every change, exported to Prometheus, retried by itself.

While Redis is down, calls are not attempted on every request (each would wait for its timeout): one
probe is let through per `RETRY_S`; the first that succeeds marks it up again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("faregate.state")
RETRY_S = 1.0


class Reachability:
    def __init__(self, url: str) -> None:
        self.url = url
        self.up = True
        self.errors = 0
        self.degraded = 0  # requests served with this process's state because Redis was down
        self._retry_at = 0.0

    def should_try(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.up or now >= self._retry_at:
            self._retry_at = now + RETRY_S
            return True
        return False

    def failed(self, e: BaseException) -> None:
        self.errors += 1
        if self.up:
            log.error(
                "shared state: Redis at %s unreachable (%s): rate limits fall back to this process, keys"
                " with a budget are refused (503) until it answers again",
                self.url,
                e,
            )
        self.up = False
        self._retry_at = time.monotonic() + RETRY_S

    def ok(self) -> bool:
        """Mark up; True when this ends an outage."""
        if self.up:
            return False
        self.up = True
        log.warning("shared state: Redis at %s answers again", self.url)
        return True


class ReachabilityCollector(Collector):
    def __init__(self, reach: Reachability) -> None:
        self.reach = reach

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("faregate_state_up", "1 when the shared state (Redis) answers, else 0")
        up.add_metric([], 1.0 if self.reach.up else 0.0)
        yield up
        errors = CounterMetricFamily("faregate_state_errors", "Failed calls to the shared state (Redis)")
        errors.add_metric([], float(self.reach.errors))
        yield errors
        degraded = CounterMetricFamily(
            "faregate_state_degraded_requests", "Requests admitted on this process's own windows (Redis down)"
        )
        degraded.add_metric([], float(self.reach.degraded))
        yield degraded
