"""Fault and latency injection, per provider: fail with a status, answer slowly, hang, drop a stream.

A `FaultBook` belongs to one `Simulator`; `apply()` runs before a provider request is handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiohttp import web

from faregate.simulator.model import SimError

RETRY_AFTER_S = "1"
HANG_POLL_S = 0.05  # how often a hung request checks whether its client went away


@dataclass(slots=True)
class Faults:
    """What is currently wrong with one provider."""

    fail_status: int | None = None
    fail_times: int | None = None  # None: until cleared
    fail_type: str | None = None
    delay_s: float = 0.0
    hang: asyncio.Event | None = None  # set when the hang is cleared
    drop_after: int | None = None


class FaultBook:
    """Faults by provider name; cleared per provider or all at once."""

    __slots__ = ("_by_provider",)

    def __init__(self) -> None:
        self._by_provider: dict[str, Faults] = {}

    def _get(self, provider: str) -> Faults:
        return self._by_provider.setdefault(provider, Faults())

    def fail(
        self, provider: str, status: int = 500, times: int | None = None, error_type: str | None = None
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"fail status must be a 4xx or 5xx, not {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None: until cleared)")
        faults = self._get(provider)
        faults.fail_status, faults.fail_times, faults.fail_type = status, times, error_type

    def slow(self, provider: str, delay_s: float) -> None:
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        self._get(provider).delay_s = delay_s

    def hang(self, provider: str) -> None:
        faults = self._get(provider)
        if faults.hang is None:
            faults.hang = asyncio.Event()

    def drop_stream(self, provider: str, after_events: int) -> None:
        if after_events < 0:
            raise ValueError("after_events must not be negative")
        self._get(provider).drop_after = after_events

    def drop_after(self, provider: str) -> int | None:
        faults = self._by_provider.get(provider)
        return faults.drop_after if faults else None

    def clear(self, provider: str | None = None) -> None:
        names = list(self._by_provider) if provider is None else [provider]
        for name in names:
            faults = self._by_provider.pop(name, None)
            if faults is not None and faults.hang is not None:
                faults.hang.set()  # release the requests held by the hang

    def release_hangs(self) -> None:
        """Let every held request go on (at shutdown); the hang faults themselves stay cleared."""
        for faults in self._by_provider.values():
            if faults.hang is not None:
                faults.hang.set()
                faults.hang = None

    async def apply(self, provider: str, request: web.Request) -> None:
        """Delay, hang, then fail: in that order, so a slow provider can also be a failing one."""
        faults = self._by_provider.get(provider)
        if faults is None:
            return
        if faults.delay_s > 0:
            await asyncio.sleep(faults.delay_s)
        if faults.hang is not None:
            await _hold(faults.hang, request)
        if faults.fail_status is not None:
            error = _failure(provider, faults.fail_status, faults.fail_type)
            if faults.fail_times is not None:
                faults.fail_times -= 1
                if faults.fail_times <= 0:
                    faults.fail_status = faults.fail_times = faults.fail_type = None
            raise error


async def _hold(released: asyncio.Event, request: web.Request) -> None:
    """Wait until the hang is cleared or the client has gone (aiohttp need not cancel the handler)."""
    while not released.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            raise SimError(499, "Client closed the request.")  # nobody reads this answer
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), HANG_POLL_S)


def _failure(provider: str, status: int, error_type: str | None) -> SimError:
    headers = {"Retry-After": RETRY_AFTER_S} if status == 429 else None
    message = f"Simulated {status} from {provider} (fault injected by the faregate simulator)."
    return SimError(status, message, error_type=error_type, headers=headers)
