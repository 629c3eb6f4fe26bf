"""Stop sequences matched by faregate (providers/stops.py) and reasoning settings between formats
(providers/reasoning.py): a streamed answer, however it is cut into deltas, ends exactly where the whole
answer does; effort and budget stand for each other in one table."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    Reasoning,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
    collect_stream,
)
from faregate.errors import InvalidRequest
from faregate.providers.reasoning import (
    BUDGETS,
    budget_of,
    effort_of,
    parse_anthropic_thinking,
    parse_gemini_thinking,
    parse_openrouter,
)
from faregate.providers.stops import StopFilter, apply_stops, first_stop

ALPHABET = "ab c."
TEXTS = st.text(ALPHABET, max_size=40)
STOPS = st.lists(st.text(ALPHABET, min_size=1, max_size=4), min_size=1, max_size=4).map(tuple)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=400)
@given(TEXTS, STOPS, st.lists(st.integers(0, 60), max_size=12))
def test_a_streamed_answer_stops_where_the_whole_answer_does(
    text: str, stops: tuple[str, ...], cuts: list[int]
) -> None:
    whole = apply_stops(ChatResponse("r", "m", text, usage=Usage(1, 2)), stops)
    f = StopFilter(stops)
    events: list[StreamEvent] = []
    for piece in split(text, cuts):
        events += f.feed(TextDelta(piece))
    events += f.feed(Finish("stop", Usage(1, 2)))
    streamed = collect_stream(events)
    assert (streamed.text, streamed.stop_sequence, streamed.finish_reason) == (
        whole.text,
        whole.stop_sequence,
        whole.finish_reason,
    )
    assert streamed.usage == Usage(1, 2)  # the upstream's usage, read to the end, is kept


def test_the_stop_that_completes_first_wins() -> None:
    assert first_stop("one two three", ("three", "two")) == (4, "two")
    assert first_stop("abc", ("ab", "abc")) == (0, "ab")
    assert first_stop("abc", ("bc", "abc")) == (0, "abc")
    assert first_stop("abc", ("x",)) is None


def test_stops_are_left_to_faregate_only_for_clients_that_need_the_name() -> None:
    msgs = (Message("user", (TextPart("hi"),)),)
    anthropic_client = ChatRequest(None, msgs, stop=("X",), source_api="anthropic")
    openai_client = ChatRequest(None, msgs, stop=("X",), source_api="openai")
    assert anthropic_client.stops_for(names_stop=False) == ((), ("X",))
    assert anthropic_client.stops_for(names_stop=True) == (("X",), ())
    assert openai_client.stops_for(names_stop=False) == (("X",), ())


@pytest.mark.parametrize("effort", list(BUDGETS))
def test_effort_and_budget_round_trip(effort: str) -> None:
    r = Reasoning(effort=effort)  # type: ignore[arg-type]
    assert effort_of(Reasoning(budget_tokens=budget_of(r))) == effort


@given(st.integers(0, 200_000))
def test_every_budget_has_an_effort_whose_budget_it_reaches(budget: int) -> None:
    effort = effort_of(Reasoning(budget_tokens=budget))
    assert effort is not None
    assert budget >= BUDGETS[effort] or effort == "minimal"


def test_parsers_of_each_format() -> None:
    assert parse_anthropic_thinking({"type": "enabled", "budget_tokens": 2048}) == Reasoning(
        budget_tokens=2048
    )
    assert parse_anthropic_thinking({"type": "adaptive"}) == Reasoning()
    assert parse_anthropic_thinking({"type": "disabled"}) == Reasoning(effort="none")
    assert parse_gemini_thinking({"thinkingBudget": -1}) == Reasoning(include_thoughts=False)
    assert parse_gemini_thinking({"thinkingBudget": 0, "includeThoughts": True}) == Reasoning(
        budget_tokens=0, include_thoughts=True
    )
    assert parse_gemini_thinking({"thinkingLevel": "HIGH"}) == Reasoning(
        effort="high", include_thoughts=False
    )
    assert parse_openrouter({"effort": "low", "exclude": True}) == Reasoning(
        effort="low", include_thoughts=False
    )
    assert parse_openrouter({"enabled": False}) == Reasoning(effort="none")
    with pytest.raises(InvalidRequest):
        parse_anthropic_thinking({"type": "enabled", "budget_tokens": 10})
    with pytest.raises(InvalidRequest):
        parse_openrouter({"effort": "extreme"})
