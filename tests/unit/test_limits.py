"""`Limits` with explicit times: the sliding minute, Retry-After, tokens at admission and completion,
budget reservations settled with the real cost."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import hypothesis
import hypothesis.strategies as st
import pytest

from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import WINDOW_S, Limits, Ticket
from faregate.errors import InsufficientCredits, RateLimited

ZERO = Decimal(0)


def key(**limits: object) -> ApiKey:
    return ApiKey(id="key_test", label="test", hint="fg_abcd", **limits)  # type: ignore[arg-type]


def admit(lim: Limits, k: ApiKey, now: float, prompt: int = 10, worst: str = "0") -> Ticket:
    return lim.admit(k, now, prompt_tokens=prompt, worst_cost_usd=Decimal(worst))


def retry_after(e: pytest.ExceptionInfo[RateLimited]) -> int:
    value = e.value.headers["Retry-After"]
    assert value.isdigit(), value  # an integer number of seconds, as HTTP says
    return int(value)


def test_rpm_window_slides_and_retry_after_counts_down() -> None:
    lim, k = Limits(), key(rpm=3)
    for t in (0.0, 10.0, 20.0):
        admit(lim, k, t)
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 30.0)
    assert retry_after(e) == 30  # the request at t=0 leaves the window at t=60
    assert (e.value.status, e.value.code, e.value.error_type) == (
        429,
        "rate_limit_exceeded",
        "rate_limit_error",
    )
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 59.9)
    assert retry_after(e) == 1  # 0.1 s rounds up: never 0
    admit(lim, k, 60.0)  # the t=0 request has aged out
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 60.5)
    assert retry_after(e) == 10  # now the t=10 request is the oldest: 9.5 s, rounded up
    admit(lim, k, 70.0)
    admit(lim, k, 80.0)
    assert lim.requests[k.id].total == 3


def test_a_refused_request_does_not_use_up_the_window() -> None:
    lim, k = Limits(), key(rpm=1, tpm=100)
    admit(lim, k, 0.0, prompt=10)
    for t in (1.0, 2.0, 3.0):
        with pytest.raises(RateLimited):
            admit(lim, k, t, prompt=10)
    assert lim.requests[k.id].total == 1
    assert lim.tokens[k.id].total == 10
    admit(lim, k, WINDOW_S, prompt=10)


def test_tokens_are_counted_at_admission_and_at_completion() -> None:
    lim, k = Limits(), key(tpm=100)
    ticket = admit(lim, k, 0.0, prompt=40)
    assert lim.tokens[k.id].total == 40  # the prompt counts as soon as the request is admitted
    lim.settle(ticket, 5.0, cost_usd=ZERO, completion_tokens=30)
    assert lim.tokens[k.id].total == 70  # the completion when it is known
    admit(lim, k, 6.0, prompt=30)  # exactly at the limit: 100 of 100
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 7.0, prompt=1)
    assert retry_after(e) == 53  # the 40 prompt tokens from t=0 leave at t=60
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 7.0, prompt=50)
    assert retry_after(e) == 58  # 50 more need the t=0 and the t=5 events gone: t=65
    assert lim.tokens[k.id].total == 100
    admit(lim, k, 60.0, prompt=40)  # t=0's 40 tokens have left; 30 + 30 + 40 = 100
    assert lim.tokens[k.id].total == 100


def test_a_prompt_larger_than_the_tpm_limit_waits_a_full_window() -> None:
    lim, k = Limits(), key(tpm=100)
    with pytest.raises(RateLimited) as e:
        admit(lim, k, 0.0, prompt=101)
    assert retry_after(e) == 60
    assert "101 prompt tokens" in e.value.message


def test_no_limits_admit_everything_and_reserve_nothing() -> None:
    lim, k = Limits(), key()
    for t in range(1000):
        ticket = admit(lim, k, float(t) / 100, prompt=10_000, worst="1000")
        assert ticket.reserved_usd == 0
    assert lim.reserved_usd == {}
    assert lim.remaining_usd(k) is None


def test_budget_reserves_the_worst_case_and_settles_the_real_cost() -> None:
    lim, k = Limits(), key(budget_usd=Decimal("1.00"))
    tickets = [admit(lim, k, 0.0, worst="0.30") for _ in range(3)]
    assert lim.reserved_usd[k.id] == Decimal("0.90")
    with pytest.raises(InsufficientCredits) as e:
        admit(lim, k, 0.0, worst="0.30")  # 0.90 reserved + 0.30 > 1.00
    assert (e.value.status, e.value.code) == (402, "insufficient_credits")
    assert "$0.10 left of $1.00" in e.value.message and "max_tokens" in e.value.message
    admit(lim, k, 0.0, worst="0.10")  # exactly the last 0.10 fits
    lim.settle(tickets[0], 1.0, cost_usd=Decimal("0.05"), completion_tokens=5)
    assert lim.spent_usd[k.id] == Decimal("0.05")
    assert lim.reserved_usd[k.id] == Decimal("0.70")
    assert lim.remaining_usd(k) == Decimal("0.95")  # what is settled, not what is reserved
    admit(lim, k, 1.0, worst="0.25")  # 0.05 + 0.70 + 0.25 = 1.00
    with pytest.raises(InsufficientCredits):
        admit(lim, k, 1.0, worst="0.000001")


def test_settling_twice_and_failed_requests() -> None:
    lim, k = Limits(), key(budget_usd=Decimal("1"))
    t = admit(lim, k, 0.0, worst="0.5")
    lim.settle(t, 1.0, cost_usd=Decimal("0.2"), completion_tokens=3)
    lim.settle(t, 1.0, cost_usd=Decimal("0.2"), completion_tokens=3)  # a second settle changes nothing
    assert (lim.spent_usd[k.id], lim.reserved_usd[k.id]) == (Decimal("0.2"), ZERO)
    failed = admit(lim, k, 2.0, worst="0.5")
    lim.settle(failed, 3.0, cost_usd=ZERO, completion_tokens=0)  # a failed request costs nothing
    assert (lim.spent_usd[k.id], lim.reserved_usd[k.id]) == (Decimal("0.2"), ZERO)


def test_spend_from_the_usage_log_counts_against_the_budget() -> None:
    k = key(budget_usd=Decimal("2"))
    lim = Limits(spent_usd={k.id: Decimal("1.999")})  # what `Accounts` reads back after a restart
    with pytest.raises(InsufficientCredits):
        admit(lim, k, 0.0, worst="0.002")
    admit(lim, k, 0.0, worst="0.001")
    assert lim.remaining_usd(k) == Decimal("0.001")


def test_keys_are_limited_separately() -> None:
    lim = Limits()
    a = ApiKey(id="key_a", label="a", hint="fg_a", rpm=1)
    b = ApiKey(id="key_b", label="b", hint="fg_b", rpm=1)
    admit(lim, a, 0.0)
    admit(lim, b, 0.0)
    with pytest.raises(RateLimited):
        admit(lim, a, 1.0)


# A schedule of operations on one key: admit (with a worst case) or settle the oldest open ticket
# (at a real cost at most its worst case). Whatever the interleaving, the budget is never overspent.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.integers(0, 400)),
        st.tuples(st.just("settle"), st.integers(0, 100)),  # percent of the reservation actually spent
    ),
    max_size=60,
)


@hypothesis.given(ops, st.integers(0, 2000))
def test_interleaved_requests_never_overspend(schedule: list[tuple[str, int]], budget_cents: int) -> None:
    budget = Decimal(budget_cents) / 100
    lim, k = Limits(), key(budget_usd=budget)
    open_tickets: list[Ticket] = []
    for op, n in schedule:
        if op == "admit":
            with contextlib.suppress(InsufficientCredits):
                open_tickets.append(admit(lim, k, 0.0, worst=str(Decimal(n) / 100)))
        elif open_tickets:
            t = open_tickets.pop(0)
            lim.settle(t, 0.0, cost_usd=t.reserved_usd * n / 100, completion_tokens=0)
        spent, reserved = lim.spent_usd.get(k.id, ZERO), lim.reserved_usd.get(k.id, ZERO)
        assert spent + reserved <= budget
        assert reserved == sum((t.reserved_usd for t in open_tickets), ZERO)
