"""Cost and savings: exact Decimal money from a price table and token counts, cached tokens included."""

from __future__ import annotations

import json
from decimal import Decimal

import hypothesis
import hypothesis.strategies as st
import pytest

from faregate.accounting.pricing import QUANTUM, cost_pusd, cost_usd, savings, usd_number, usd_text
from faregate.canonical import Usage
from faregate.catalog.model import MILLION, Price

D = Decimal
SONNET = Price(input=D("3"), output=D("15"), cached_input=D("0.30"), cache_write=D("3.75"))
NO_CACHE_PRICES = Price(input=D("3"), output=D("15"))
MINI = Price(input=D("0.15"), output=D("0.60"))
GPT_4O = Price(input=D("2.5"), output=D("10"))


def test_plain_tokens_at_the_input_and_output_prices() -> None:
    assert cost_usd(MINI, Usage(1000, 500)) == D("0.00045")  # 1000 * 0.15/1M + 500 * 0.60/1M
    assert cost_usd(MINI, Usage(0, 0)) == 0
    assert cost_usd(MINI, Usage(1, 0)) == D("0.00000015")


def test_cache_reads_and_writes_at_their_own_prices() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500, cache_read_tokens=600, cache_write_tokens=200)
    # 200 plain * 3 + 600 read * 0.30 + 200 written * 3.75 + 500 out * 15, per 1M
    assert cost_usd(SONNET, usage) == D("0.00903")
    assert cost_usd(SONNET, usage) == (200 * D(3) + 600 * D("0.30") + 200 * D("3.75") + 500 * D(15)) / MILLION


def test_cache_prices_fall_back_to_the_input_price() -> None:
    cached = Usage(prompt_tokens=1000, completion_tokens=500, cache_read_tokens=600, cache_write_tokens=200)
    assert cost_usd(NO_CACHE_PRICES, cached) == cost_usd(NO_CACHE_PRICES, Usage(1000, 500))
    only_read = Price(input=D("3"), output=D("15"), cached_input=D("0.30"))
    # the write falls back to the input price, the read does not
    assert cost_usd(only_read, cached) == (400 * D(3) + 600 * D("0.30") + 500 * D(15)) / MILLION


def test_cached_counts_larger_than_the_prompt_are_clamped() -> None:
    odd = Usage(prompt_tokens=100, completion_tokens=0, cache_read_tokens=80, cache_write_tokens=50)
    # 80 read, 20 written (what is left), 0 plain
    assert cost_usd(SONNET, odd) == (80 * D("0.30") + 20 * D("3.75")) / MILLION
    assert cost_usd(SONNET, Usage(10, 0, cache_read_tokens=50)) == 10 * D("0.30") / MILLION


def test_costs_are_quantized_to_a_picodollar_and_print_without_exponent() -> None:
    tiny = cost_usd(Price(input=D("0.0000001"), output=D(0)), Usage(1, 0))  # 1e-13 USD rounds to 0
    assert tiny == 0
    c = cost_usd(Price(input=D("0.123456789"), output=D(0)), Usage(7, 0))  # 8.64197523e-7
    assert c == D("8.64198e-7") and c == c.quantize(QUANTUM)
    assert usd_text(c) == "0.000000864198"
    assert usd_text(D("1E+1")) == "10"


def test_decimal_sums_do_not_drift() -> None:
    one = cost_usd(Price(input=D("0.1"), output=D("0.3")), Usage(1, 1))  # 0.0000004 USD
    total, as_float = D(0), 0.0
    for _ in range(100_000):
        total += one
        as_float += float(one)
    assert total == D("0.04")  # exact
    assert as_float != 0.04  # what floats would have recorded
    assert sum([cost_usd(MINI, Usage(n, n)) for n in range(1, 1001)], D(0)) == cost_usd(
        MINI, Usage(sum(range(1, 1001)), sum(range(1, 1001)))
    )


prices = st.builds(
    Price,
    input=st.decimals(0, 100, places=3),
    output=st.decimals(0, 100, places=3),
    cached_input=st.none() | st.decimals(0, 100, places=3),
    cache_write=st.none() | st.decimals(0, 100, places=3),
)
counts = st.integers(0, 2_000_000)


@hypothesis.given(prices, counts, counts, counts, counts, st.integers(1, 10_000), st.sampled_from(["p", "c"]))
def test_cost_never_goes_down_as_tokens_go_up(
    price: Price, prompt: int, completion: int, read: int, write: int, more: int, which: str
) -> None:
    before = Usage(prompt, completion, read, write)
    after = (
        Usage(prompt + more, completion, read, write)
        if which == "p"
        else Usage(prompt, completion + more, read, write)
    )
    assert cost_usd(price, after) >= cost_usd(price, before) >= 0


def test_savings_against_the_baseline_at_the_same_token_counts() -> None:
    usage = Usage(1000, 500)
    actual = cost_usd(MINI, usage)
    s = savings(actual, GPT_4O, usage)
    assert s.alternative_cost == D("0.0075")  # 1000 * 2.5/1M + 500 * 10/1M
    assert s.actual_cost == D("0.00045")
    assert s.amount_saved == s.alternative_cost - s.actual_cost == D("0.00705")
    assert s.savings_percentage == D("94.00")


def test_savings_edge_cases() -> None:
    usage = Usage(1000, 500)
    none = savings(D("0.01"), None, usage)  # no baseline: nothing saved
    assert (none.alternative_cost, none.amount_saved, none.savings_percentage) == (D("0.01"), D(0), D(0))
    free = savings(D(0), Price(D(0), D(0)), usage)  # a free baseline: no division by zero
    assert (free.amount_saved, free.savings_percentage) == (D(0), D(0))
    dearer = savings(cost_usd(GPT_4O, usage), MINI, usage)  # routed to something dearer: negative
    assert dearer.amount_saved == D("-0.00705")
    assert dearer.savings_percentage == D("-1566.67")


@hypothesis.given(prices, prices, counts, counts)
def test_savings_identities(actual_price: Price, baseline: Price, prompt: int, completion: int) -> None:
    usage = Usage(prompt, completion)
    s = savings(cost_usd(actual_price, usage), baseline, usage)
    assert s.amount_saved == s.alternative_cost - s.actual_cost
    if s.alternative_cost:
        assert s.savings_percentage == (s.amount_saved * 100 / s.alternative_cost).quantize(D("0.01"))
        assert abs(s.savings_percentage - s.amount_saved * 100 / s.alternative_cost) <= D("0.005")
    else:
        assert s.savings_percentage == 0


@hypothesis.given(st.decimals(0, D("999.999999999999"), places=12))
def test_json_numbers_read_back_as_the_same_decimal(amount: Decimal) -> None:
    text = json.dumps(usd_number(amount))
    assert json.loads(text, parse_float=Decimal) == amount


def test_savings_json_shape() -> None:
    s = savings(D("0.00045"), GPT_4O, Usage(1000, 500)).as_json()
    assert s == pytest.approx(
        {
            "actual_cost": 0.00045,
            "alternative_cost": 0.0075,
            "amount_saved": 0.00705,
            "savings_percentage": 94.0,
        }
    )
    assert D(json.dumps(s["amount_saved"])) == D("0.00705")


@hypothesis.given(prices, counts, counts)
def test_an_answer_without_cache_tokens_costs_what_the_whole_formula_says(
    price: Price, prompt: int, completion: int
) -> None:
    """`cost_usd` takes a two-term shortcut when nothing was cached: the same Decimal, digit for digit."""
    whole = (
        prompt * price.input + 0 * (price.cached_input or price.input) + completion * price.output
    ) / MILLION
    expected = whole.quantize(QUANTUM).normalize() + D(0)
    got = cost_usd(price, Usage(prompt, completion))
    assert got == expected and str(got) == str(expected)


def reference_cost(price: Price, usage: Usage) -> Decimal:
    """The cost as the whole formula says, in Decimal, rounded half-even to a picodollar."""
    cached = min(usage.cache_read_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    read = price.input if price.cached_input is None else price.cached_input
    write = price.input if price.cache_write is None else price.cache_write
    total = (
        (usage.prompt_tokens - cached - written) * price.input
        + cached * read
        + written * write
        + usage.completion_tokens * price.output
    ) / MILLION
    return total.quantize(QUANTUM).normalize() + D(0)


whole = st.decimals(0, 1000, places=6)  # a whole number of picodollars per token: costed in integers
finer = st.decimals(0, 1000, places=9)  # maybe not: costed in Decimal


@hypothesis.given(
    st.one_of(
        st.builds(Price, whole, whole, st.none() | whole, st.none() | whole),
        st.builds(Price, finer, finer, st.none() | finer, st.none() | finer),
    ),
    counts,
    counts,
    counts,
    counts,
)
def test_every_price_costs_what_the_whole_formula_says(
    price: Price, prompt: int, completion: int, read: int, write: int
) -> None:
    usage = Usage(prompt, completion, read, write)
    got, expected = cost_usd(price, usage), reference_cost(price, usage)
    assert got == expected and str(got) == str(expected)


def test_whole_picodollar_prices_are_costed_in_integers() -> None:
    assert SONNET.pusd_per_token == (3_000_000, 15_000_000, 300_000, 3_750_000)
    assert MINI.pusd_per_token == (150_000, 600_000, 150_000, 150_000)  # no cache prices: the input's
    assert Price(D("0.123456789"), D(0)).pusd_per_token is None
    assert cost_pusd(SONNET.pusd_per_token, Usage(1000, 500, 600, 200)) == 9_030_000_000
