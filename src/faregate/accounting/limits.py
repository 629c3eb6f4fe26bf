"""Per-key limits: requests and tokens per minute (sliding window) and budgets (USD).

Budgets are checked before the upstream call against the plan's worst-case cost and reserved; the
reservation is settled with the real cost afterwards. A request that set no answer bound of its own gets
one lowered to what the remaining budget affords (`AnswerBound`), decided in the same step. Check and reserve happen with no `await` in
between, so concurrent requests on one event loop cannot together overspend. Time comes in as an
argument (monotonic seconds), so the logic is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from faregate.accounting.budget import MIN_ANSWER_TOKENS, AnswerBound
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
    max_tokens: int | None = None  # the answer bound the budget imposed, when it lowered the default
    left_usd: Decimal | None = None  # what the budget had left at admission, when it lowered the bound
    ref: str | None = None  # the reservation's id in shared state (state/redis_limits.py); None: this process


@dataclass(slots=True)
class Limits:
    spent_usd: dict[str, Decimal] = field(default_factory=dict)  # settled spend per key (from the usage log)
    reserved_usd: dict[str, Decimal] = field(default_factory=dict)
    requests: dict[str, Window] = field(default_factory=dict)
    tokens: dict[str, Window] = field(default_factory=dict)

    def admit(
        self,
        key: ApiKey,
        now: float,
        *,
        prompt_tokens: int,
        worst_cost_usd: Decimal | None = None,
        bound: AnswerBound | None = None,
    ) -> Ticket:
        """Raise `RateLimited` or `InsufficientCredits`, or reserve and return a ticket. The worst case is
        `worst_cost_usd`, or `bound`'s, lowered to fit the budget when the bound is adjustable."""
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
        lowered: int | None = None
        left: Decimal | None = None
        if key.budget_usd is not None:
            committed = self.spent_usd.get(key.id, Decimal(0)) + self.reserved_usd.get(key.id, Decimal(0))
            left = key.budget_usd - committed
            reserve, lowered = _reservation(key.budget_usd, left, worst_cost_usd, bound)
            self.reserved_usd[key.id] = self.reserved_usd.get(key.id, Decimal(0)) + reserve
        req.add(now, 1)
        tok.add(now, prompt_tokens)
        return Ticket(key.id, reserve, prompt_tokens, max_tokens=lowered, left_usd=left if lowered else None)

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


def _reservation(
    budget: Decimal, left: Decimal, worst_cost_usd: Decimal | None, bound: AnswerBound | None
) -> tuple[Decimal, int | None]:
    """(what to reserve, the lowered answer bound or None), or raise `InsufficientCredits`."""
    worst = bound.worst_usd() if bound is not None else (worst_cost_usd or Decimal(0))
    if worst <= left:
        return worst, None
    shown = max(Decimal(0), left)
    if bound is not None and bound.adjustable:
        n = bound.affordable(left)
        if n >= MIN_ANSWER_TOKENS:
            return bound.worst_usd(n), n
        minimal = bound.worst_usd(MIN_ANSWER_TOKENS)
        raise InsufficientCredits(
            f"budget exhausted: ${_usd(shown)} left of ${_usd(budget)}, and this request's prompt with a minimal"
            f" answer ({MIN_ANSWER_TOKENS} tokens) may cost up to ${_usd(minimal)}"
        )
    raise InsufficientCredits(
        f"budget exhausted: ${_usd(shown)} left of ${_usd(budget)}, this request may"
        f" cost up to ${_usd(worst)} (at its max_tokens; send a smaller max_tokens)"
    )


def _usd(amount: Decimal) -> str:
    return format(amount, "f")
