"""The model's reasoning text in the canonical model (canonical.py `Thought`, `ReasoningDelta`): streamed
deltas fold into the thoughts a whole answer carries, and a signature goes back only to its own format."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from faregate.canonical import (
    Finish,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    Thought,
    ToolArgsDelta,
    ToolCallStart,
    collect_stream,
    signed_for,
)
from faregate.providers.stops import StopFilter


def test_a_signature_closes_a_thought_and_the_answer_moving_on_closes_an_unsigned_one() -> None:
    events: list[StreamEvent] = [
        Start("r", "m"),
        ReasoningDelta("Let me "),
        ReasoningDelta("think.", origin="anthropic"),
        ReasoningDelta("", "sig-1", origin="anthropic"),
        ReasoningDelta("", "opaque", origin="anthropic", redacted=True),
        TextDelta("Hi"),
        ReasoningDelta("more"),
        ToolCallStart(0, "call_1", "f"),
        ToolArgsDelta(0, "{}"),
        ReasoningDelta("after"),
        Finish("tool_calls"),
    ]
    resp = collect_stream(events)
    assert resp.thoughts == (
        Thought("Let me think.", "sig-1", "anthropic"),
        Thought("", "opaque", "anthropic", redacted=True),
        Thought("more"),
        Thought("after"),
    )
    assert resp.reasoning_text == "Let me think.moreafter"
    assert resp.text == "Hi"


def test_only_a_formats_own_signed_thoughts_go_back_to_it() -> None:
    thoughts = (
        Thought("a", "sig", "anthropic"),
        Thought("b", "gsig", "gemini"),
        Thought("c"),
        Thought("", "data", "anthropic", redacted=True),
    )
    assert signed_for(thoughts, "anthropic") == (thoughts[0], thoughts[3])
    assert signed_for(thoughts, "gemini") == (thoughts[1],)
    assert signed_for(thoughts, "openai") == ()


@given(st.lists(st.text("ab ", max_size=6), max_size=8))
def test_reasoning_is_not_answer_text_for_stop_sequences(pieces: list[str]) -> None:
    f = StopFilter(("b",))
    events: list[StreamEvent] = []
    for piece in pieces:
        events += f.feed(ReasoningDelta(piece))
    events += f.feed(TextDelta("xbz"))
    events += f.feed(ReasoningDelta("late"))  # after the match: not shown, like the rest of the answer
    events += f.feed(Finish("stop"))
    resp = collect_stream(events)
    assert resp.reasoning_text == "".join(pieces)
    assert (resp.text, resp.stop_sequence) == ("x", "b")
