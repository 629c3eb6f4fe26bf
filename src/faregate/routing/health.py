"""Channel health: cooldowns after failures and observed latency. Mutable on purpose, kept apart.

Time comes in as an argument (seconds from a monotonic clock) so the logic is testable without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class HealthListener(Protocol):
    """Told of every change this process makes, to share it (state/redis_health.py); None: nothing shared."""

    def cooled(self, channel_id: str, cooldown_s: float) -> None: ...

    def recovered(self, channel_id: str, latency_ms: float, was_cooling: bool) -> None: ...


class HealthView(Protocol):
    def cooling(self, channel_id: str, now: float) -> bool: ...

    def latency_ms(self, channel_id: str) -> float | None: ...


@dataclass(slots=True)
class Health:
    cooldown_s: float = 30.0
    max_retry_after_s: float = 300.0  # an upstream's Retry-After sets the cooldown, up to this
    alpha: float = 0.2  # weight of the newest latency sample in the moving average
    _until: dict[str, float] = field(default_factory=dict)
    _latency: dict[str, float] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)
    listener: HealthListener | None = None

    def cooling(self, channel_id: str, now: float) -> bool:
        until = self._until.get(channel_id)
        if until is None:
            return False
        if now >= until:
            del self._until[channel_id]
            return False
        return True

    def cooldown_left_s(self, channel_id: str, now: float) -> float:
        return max(0.0, self._until.get(channel_id, now) - now)

    def failed(self, channel_id: str, now: float, retry_after_s: float | None = None) -> None:
        self._failures[channel_id] = self._failures.get(channel_id, 0) + 1
        wait = min(retry_after_s, self.max_retry_after_s) if retry_after_s is not None else 0.0
        cool = max(self.cooldown_s, wait)
        self._until[channel_id] = now + cool
        if self.listener is not None:
            self.listener.cooled(channel_id, cool)

    def succeeded(self, channel_id: str, latency_ms: float) -> None:
        was_cooling = self._until.pop(channel_id, None) is not None
        old = self._latency.get(channel_id)
        self._latency[channel_id] = latency_ms if old is None else old + self.alpha * (latency_ms - old)
        if self.listener is not None:
            self.listener.recovered(channel_id, latency_ms, was_cooling)

    # --- what other workers and instances saw (applied without telling the listener again) ---

    def apply_cooldown(self, channel_id: str, until: float) -> None:
        if until > self._until.get(channel_id, 0.0):
            self._until[channel_id] = until

    def clear_cooldown(self, channel_id: str) -> None:
        self._until.pop(channel_id, None)

    def apply_latency(self, channel_id: str, latency_ms: float) -> None:
        self._latency[channel_id] = latency_ms

    def latency_ms(self, channel_id: str) -> float | None:
        return self._latency.get(channel_id)

    def snapshot(self, now: float) -> dict[str, dict[str, float | int | None]]:
        ids = set(self._until) | set(self._latency) | set(self._failures)
        return {
            cid: {
                "cooldown_s": round(self.cooldown_left_s(cid, now), 3),
                "latency_ms": None if (lat := self._latency.get(cid)) is None else round(lat, 2),
                "failures": self._failures.get(cid, 0),
            }
            for cid in sorted(ids)
        }


class NoHealth:
    """For planning with no runtime history (check, explain, benchmarks)."""

    def cooling(self, channel_id: str, now: float) -> bool:
        return False

    def latency_ms(self, channel_id: str) -> float | None:
        return None
