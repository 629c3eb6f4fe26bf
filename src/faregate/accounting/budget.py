"""What an answer may cost, and how long an answer a budget affords.

A request's worst case is the dearest channel of its plan at the prompt bound and the answer bound. When
the request set no bound itself (`adjustable`), a budget that cannot cover the default bound lowers it to
the largest answer the remaining budget affords at every channel of the plan, down to `MIN_ANSWER_TOKENS`;
below that the request is refused. Pure arithmetic on `Decimal`: exact, no I/O.
"""

from __future__ import annotations

from decimal import Decimal

from faregate.catalog.model import MILLION, Price
from faregate.values import frozen

MIN_ANSWER_TOKENS = 16  # the shortest answer worth sending a request for


@frozen
class AnswerBound:
    """One request's cost shape: the prompt tokens to reserve for, the plan's prices, the answer bound."""

    prompt_tokens: int
    prices: tuple[Price, ...]
    max_tokens: int
    adjustable: bool  # the request set no max_tokens of its own: a budget may lower `max_tokens`

    def worst_usd(self, completion_tokens: int | None = None) -> Decimal:
        """The dearest channel's cost at the prompt bound and `completion_tokens` (default: the bound)."""
        n = self.max_tokens if completion_tokens is None else completion_tokens
        return max(
            ((p.input * self.prompt_tokens + p.output * n) / MILLION for p in self.prices), default=Decimal(0)
        )

    def affordable(self, left_usd: Decimal) -> int:
        """The largest answer, at most `max_tokens`, whose worst case fits in `left_usd` (-1: not even an
        empty answer fits)."""
        budget = left_usd * MILLION  # USD·(tokens per 1M): compared with prices times tokens, exactly
        best = self.max_tokens
        for p in self.prices:
            room = budget - p.input * self.prompt_tokens
            if room < 0:
                return -1
            if p.output > 0:
                best = min(best, int(room // p.output))
        while best >= 0 and self.worst_usd(best) > left_usd:  # guards a rounded division; never loops long
            best -= 1
        return best
