"""The shared-state interface and its in-process implementation (today's `Limits`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from faregate.accounting.budget import AnswerBound
from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Limits, Ticket
from faregate.errors import FaregateError


class StateUnavailable(FaregateError):
    """The shared state cannot be reached and this key's budget cannot be checked: refused, not guessed."""

    status, error_type, code = 503, "server_error", "shared_state_unavailable"


class LimitState(Protocol):
    """Rate windows and budgets. `admit` checks and reserves in one atomic step (or raises `RateLimited`,
    `InsufficientCredits`, `StateUnavailable`); `settle` books the real cost once, never blocking."""

    @property
    def shared(self) -> bool: ...

    async def admit(self, key: ApiKey, now: float, *, prompt_tokens: int, bound: AnswerBound) -> Ticket: ...

    def settle(self, ticket: Ticket, now: float, *, cost_usd: Decimal, completion_tokens: int) -> None: ...

    async def spent_usd(self, key_id: str) -> Decimal: ...

    async def drain(self) -> None:
        """Wait for settlements still on their way (graceful stop)."""
        ...


class LocalState:
    """This process's memory. No `await` between check and reserve: atomic on one event loop."""

    shared = False

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    async def admit(self, key: ApiKey, now: float, *, prompt_tokens: int, bound: AnswerBound) -> Ticket:
        return self.limits.admit(key, now, prompt_tokens=prompt_tokens, bound=bound)

    def settle(self, ticket: Ticket, now: float, *, cost_usd: Decimal, completion_tokens: int) -> None:
        self.limits.settle(ticket, now, cost_usd=cost_usd, completion_tokens=completion_tokens)

    async def spent_usd(self, key_id: str) -> Decimal:
        return self.limits.spent_usd.get(key_id, Decimal(0))

    async def drain(self) -> None:
        return None
