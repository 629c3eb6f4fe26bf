"""Money: the exact cost of a request from its channel's prices and token counts, and what it saved.

All amounts are `Decimal` USD. Prices are per 1M tokens; cached prompt tokens are billed at the cache
price when the provider publishes one (else at the input price), cache writes likewise.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from faregate.canonical import Usage
from faregate.catalog.model import MILLION, Price
from faregate.values import frozen

ZERO = Decimal(0)
QUANTUM = Decimal("1e-12")
CENT = Decimal(
    "0.01"
)  # a savings percentage's precision  # a picodollar: finer than any provider bills, coarse enough to print exactly


def cost_usd(price: Price, usage: Usage) -> Decimal:
    """What `usage` costs at `price`: prompt tokens not cached at the input price, cache reads and writes at
    theirs, completion tokens at the output price."""
    if not usage.cache_read_tokens and not usage.cache_write_tokens:  # most answers: two terms
        total = usage.prompt_tokens * price.input + usage.completion_tokens * price.output
        return (total / MILLION).quantize(QUANTUM, rounding=ROUND_HALF_EVEN).normalize() + ZERO
    cached = min(usage.cache_read_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    plain = usage.prompt_tokens - cached - written
    read_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    total = (
        plain * price.input
        + cached * read_price
        + written * write_price
        + usage.completion_tokens * price.output
    )
    return (total / MILLION).quantize(QUANTUM, rounding=ROUND_HALF_EVEN).normalize() + ZERO


@frozen
class Savings:
    actual_cost: Decimal
    alternative_cost: Decimal  # the baseline model at the same token counts
    amount_saved: Decimal
    savings_percentage: Decimal  # of the alternative cost; 0 when it is 0

    def as_json(self) -> dict[str, float]:
        return {
            "actual_cost": usd_number(self.actual_cost),
            "alternative_cost": usd_number(self.alternative_cost),
            "amount_saved": usd_number(self.amount_saved),
            "savings_percentage": float(self.savings_percentage),
        }


def savings(actual: Decimal, baseline: Price | None, usage: Usage) -> Savings:
    """Savings against the baseline model at the same token counts (no baseline: nothing saved)."""
    alternative = actual if baseline is None else cost_usd(baseline, usage)
    saved = alternative - actual
    pct = ZERO if alternative == 0 else (saved * 100 / alternative).quantize(CENT)
    return Savings(actual, alternative, saved, pct)


def usd_number(amount: Decimal) -> float:
    """A JSON number for an amount already quantized to 1e-12: the float's shortest repr reads back as
    the same decimal (at most 15 significant digits), so the printed number is exact."""
    return float(amount)


def usd_text(amount: Decimal) -> str:
    """Exact decimal text for headers and logs, never in exponent form."""
    return format(amount.normalize(), "f")
