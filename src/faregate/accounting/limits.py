"""Per-key limits: requests and tokens per minute (sliding window) and budgets (USD).

Budgets are checked before the upstream call against the plan's worst-case cost and reserved; the
reservation is settled with the real cost afterwards. Check and reserve happen with no `await` in
between, so concurrent requests on one event loop cannot together overspend. Time comes in as an
argument (monotonic seconds), so the logic is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from faregate.accounting.keys import ApiKey
from faregate.errors import InsufficientCredits, RateLimited

WINDOW_S = 60.0


@dataclass(slots=True)
class Window:
    """Events in the last minute: (time, amount)."""

    events: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def trim(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW_S:
            self.total -= self.events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        if amount:
            self.events.append((now, amount))
            self.total += amount

    def wait_s(self, now: float, need: int, limit: int) -> float:
        """Seconds until `need` more fits under `limit` (events leave as they age past the window)."""
        excess = self.total + need - limit
        freed = 0
        for t, amount in self.events:
            freed += amount
            if freed >= excess:
                return max(0.0, t + WINDOW_S - now)
        return WINDOW_S


@dataclass(slots=True)
class Ticket:
    """One admitted request: its reservation, settled once."""

    key_id: str
    reserved_usd: Decimal
    prompt_tokens: int
    settled: bool = False


@dataclass(slots=True)
class Limits:
    spent_usd: dict[str, Decimal] = field(default_factory=dict)  # settled spend per key (from the usage log)
    reserved_usd: dict[str, Decimal] = field(default_factory=dict)
    requests: dict[str, Window] = field(default_factory=dict)
    tokens: dict[str, Window] = field(default_factory=dict)

    def admit(self, key: ApiKey, now: float, *, prompt_tokens: int, worst_cost_usd: Decimal) -> Ticket:
        """Raise `RateLimited` or `InsufficientCredits`, or reserve and return a ticket."""
        req = self.requests.setdefault(key.id, Window())
        tok = self.tokens.setdefault(key.id, Window())
        req.trim(now)
        tok.trim(now)
        if key.rpm is not None and req.total + 1 > key.rpm:
            wait = req.wait_s(now, 1, key.rpm)
            raise RateLimited(
                f"rate limit: {key.rpm} requests per minute for this key", retry_after_s=math.ceil(wait)
            )
        if key.tpm is not None and tok.total + prompt_tokens > key.tpm:
            if prompt_tokens > key.tpm:
                raise RateLimited(
                    f"this request's {prompt_tokens} prompt tokens exceed the key's {key.tpm} tokens per minute",
                    retry_after_s=60,
                )
            wait = tok.wait_s(now, prompt_tokens, key.tpm)
            raise RateLimited(
                f"rate limit: {key.tpm} tokens per minute for this key", retry_after_s=math.ceil(wait)
            )
        reserve = Decimal(0)
        if key.budget_usd is not None:
            committed = self.spent_usd.get(key.id, Decimal(0)) + self.reserved_usd.get(key.id, Decimal(0))
            if committed + worst_cost_usd > key.budget_usd:
                left = max(Decimal(0), key.budget_usd - committed)
                raise InsufficientCredits(
                    f"budget exhausted: ${format(left, 'f')} left of ${format(key.budget_usd, 'f')}, this request may"
                    f" cost up to ${format(worst_cost_usd, 'f')} (at its max_tokens; send a smaller max_tokens)"
                )
            reserve = worst_cost_usd
            self.reserved_usd[key.id] = self.reserved_usd.get(key.id, Decimal(0)) + reserve
        req.add(now, 1)
        tok.add(now, prompt_tokens)
        return Ticket(key.id, reserve, prompt_tokens)

    def settle(self, ticket: Ticket, now: float, *, cost_usd: Decimal, completion_tokens: int) -> None:
        """Release the reservation and book the real cost and the completion tokens."""
        if ticket.settled:
            return
        ticket.settled = True
        if ticket.reserved_usd:
            self.reserved_usd[ticket.key_id] -= ticket.reserved_usd
        if cost_usd:
            self.spent_usd[ticket.key_id] = self.spent_usd.get(ticket.key_id, Decimal(0)) + cost_usd
        self.tokens.setdefault(ticket.key_id, Window()).add(now, completion_tokens)

    def remaining_usd(self, key: ApiKey) -> Decimal | None:
        if key.budget_usd is None:
            return None
        return max(Decimal(0), key.budget_usd - self.spent_usd.get(key.id, Decimal(0)))
