"""`AnswerBound`: the largest answer a budget affords at the dearest channel, exactly; and `Limits` lowering
an adjustable bound instead of refusing, refusing below a minimal answer, never lowering a request's own."""

from __future__ import annotations

from decimal import Decimal

import hypothesis
import hypothesis.strategies as st
import pytest

from faregate.accounting.budget import MIN_ANSWER_TOKENS, AnswerBound
from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Limits
from faregate.catalog.model import Price
from faregate.errors import InsufficientCredits

D = Decimal
DEAR = Price(D(75), D(150))
DEARER = Price(D(75), D(300))
prices = st.builds(
    Price,
    st.decimals(min_value=0, max_value=200, places=3),
    st.decimals(min_value=0, max_value=400, places=3),
)


def key(budget: str) -> ApiKey:
    return ApiKey(id="key_b", label="b", hint="fg_abcd", budget_usd=D(budget))


@hypothesis.given(
    st.lists(prices, min_size=1, max_size=4),
    st.integers(0, 5000),
    st.integers(0, 8192),
    st.decimals(min_value=0, max_value=2, places=9),
)
def test_affordable_is_the_largest_answer_that_fits(ps: list[Price], prompt: int, cap: int, left: D) -> None:
    b = AnswerBound(prompt, tuple(ps), cap, adjustable=True)
    n = b.affordable(left)
    assert -1 <= n <= cap
    if n >= 0:
        assert b.worst_usd(n) <= left
    if n < cap:
        assert b.worst_usd(n + 1) > left  # one more token would not fit at some channel of the plan


def test_the_dearest_channel_decides() -> None:
    b = AnswerBound(100, (DEAR, DEARER), 4096, adjustable=True)
    # $0.50 less the prompt at $75 per 1M (0.0075), over $300 per 1M: 1641.66... tokens
    assert b.affordable(D("0.50")) == 1641
    assert AnswerBound(100, (DEAR,), 4096, adjustable=True).affordable(D("0.50")) == 3283
    assert b.affordable(D("0.0075")) == 0 and b.affordable(D("0.0074")) == -1


def test_limits_lower_an_adjustable_bound_and_reserve_what_it_may_cost() -> None:
    lim, k = Limits(), key("0.50")
    b = AnswerBound(100, (DEAR,), 4096, adjustable=True)
    t = lim.admit(k, 0.0, prompt_tokens=100, bound=b)
    assert t.max_tokens == 3283 and t.left_usd == D("0.50")
    assert t.reserved_usd == b.worst_usd(3283) <= D("0.50")
    assert lim.reserved_usd[k.id] == t.reserved_usd
    with pytest.raises(InsufficientCredits) as e:  # the rest is reserved: not even 16 tokens fit now
        lim.admit(k, 0.0, prompt_tokens=100, bound=b)
    assert f"minimal answer ({MIN_ANSWER_TOKENS} tokens)" in e.value.message
    lim.settle(t, 1.0, cost_usd=b.worst_usd(1000), completion_tokens=1000)
    again = lim.admit(k, 1.0, prompt_tokens=100, bound=b)
    assert again.max_tokens == b.affordable(D("0.50") - b.worst_usd(1000))


def test_a_bound_that_fits_is_not_lowered_and_a_requests_own_bound_never_is() -> None:
    lim, k = Limits(), key("10")
    t = lim.admit(k, 0.0, prompt_tokens=100, bound=AnswerBound(100, (DEAR,), 4096, adjustable=True))
    assert t.max_tokens is None and t.left_usd is None
    lim2, k2 = Limits(), key("0.50")
    with pytest.raises(InsufficientCredits) as e:
        lim2.admit(k2, 0.0, prompt_tokens=100, bound=AnswerBound(100, (DEAR,), 4096, adjustable=False))
    assert "send a smaller max_tokens" in e.value.message
    assert lim2.reserved_usd.get(k2.id, D(0)) == 0


def test_the_minimal_answer_is_the_threshold() -> None:
    b = AnswerBound(100, (DEAR,), 4096, adjustable=True)
    exactly = b.worst_usd(MIN_ANSWER_TOKENS)
    assert Limits().admit(key(str(exactly)), 0.0, prompt_tokens=100, bound=b).max_tokens == MIN_ANSWER_TOKENS
    with pytest.raises(InsufficientCredits):
        Limits().admit(key(str(exactly - D("1e-12"))), 0.0, prompt_tokens=100, bound=b)
