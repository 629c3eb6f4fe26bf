"""Money: the exact cost of a request from its channel's prices and token counts, and what it saved.

All amounts are `Decimal` USD, exact to a picodollar (1e-12 USD). Prices are per 1M tokens; cached prompt
tokens are billed at the cache price when the provider publishes one (else at the input price), cache
writes likewise. A price that is a whole number of picodollars per token (every published one) costs an
answer in integers (`Price.pusd_per_token`); any other in `Decimal`, rounded half-even to a picodollar.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from faregate.canonical import Usage
from faregate.catalog.model import Price
from faregate.values import frozen

ZERO = Decimal(0)
QUANTUM = Decimal("1e-12")  # a picodollar: finer than any provider bills, coarse enough to print exactly
PICO = Decimal(10**12)  # picodollars per USD
CENT = Decimal("0.01")  # a savings percentage's precision


def cost_usd(price: Price, usage: Usage) -> Decimal:
    """What `usage` costs at `price`: prompt tokens not cached at the input price, cache reads and writes at
    theirs, completion tokens at the output price. The amount has no trailing zeros and no exponent
    above 0 (`0.00045`, `10`), however it was computed."""
    pusd = price.pusd_per_token
    if pusd is not None:
        # Exact integers; dividing exactly by 10**12 gives the amount in that same form.
        return Decimal(cost_pusd(pusd, usage)) / PICO
    if not usage.cache_read_tokens and not usage.cache_write_tokens:  # most answers: two terms
        total = usage.prompt_tokens * price.input + usage.completion_tokens * price.output
        return total.scaleb(-6).quantize(QUANTUM, rounding=ROUND_HALF_EVEN).normalize() + ZERO
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
    return total.scaleb(-6).quantize(QUANTUM, rounding=ROUND_HALF_EVEN).normalize() + ZERO


def cost_pusd(pusd_per_token: tuple[int, int, int, int], usage: Usage) -> int:
    """`cost_usd` in picodollars, from prices in picodollars per token (input, output, cache read, write)."""
    inp, out, read, write = pusd_per_token
    if not usage.cache_read_tokens and not usage.cache_write_tokens:
        return usage.prompt_tokens * inp + usage.completion_tokens * out
    cached = min(usage.cache_read_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    plain = usage.prompt_tokens - cached - written
    return plain * inp + cached * read + written * write + usage.completion_tokens * out


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
    pct = (saved * 100 / alternative).quantize(CENT) if alternative else ZERO
    return Savings(actual, alternative, saved, pct)


def usd_number(amount: Decimal) -> float:
    """A JSON number for an amount already quantized to 1e-12: the float's shortest repr reads back as
    the same decimal (at most 15 significant digits), so the printed number is exact."""
    return float(amount)


def usd_text(amount: Decimal) -> str:
    """Exact decimal text for headers and logs, never in exponent form."""
    return format(amount.normalize(), "f")
