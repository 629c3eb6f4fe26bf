"""middle-out: which messages are kept (OpenRouter's semantics: the system prompt and both ends of the
conversation; turns removed from the middle outwards), with a token count of one token per character."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from faregate.canonical import ChatRequest, Message, TextPart, ToolCall
from faregate.errors import InvalidRequest
from faregate.routing.transforms import MiddleOut, floor_tokens, middle_out, parse_transforms


def msg(role: str, text: str, **kw: object) -> Message:
    return Message(role, (TextPart(text),) if text else (), **kw)  # type: ignore[arg-type]


def count(messages: Sequence[Message]) -> int:
    """One token per character, plus 1 per message and 1 for the reply: enough structure to test with."""
    return 1 + sum(1 + len(m.text) + sum(len(c.arguments) for c in m.tool_calls) for m in messages)


def texts(messages: Sequence[Message]) -> list[str]:
    return [m.text for m in messages]


CONVERSATION = (
    msg("system", "S" * 10),
    *(msg("user" if i % 2 == 0 else "assistant", f"{i:02d}" + "x" * 8) for i in range(10)),
)


def test_a_conversation_that_fits_is_kept_whole() -> None:
    fitted = middle_out(CONVERSATION, count(CONVERSATION), count)
    assert fitted is not None and fitted.removed == 0 and fitted.messages == CONVERSATION


def test_middle_turns_go_first_system_and_ends_stay() -> None:
    total = count(CONVERSATION)  # 1 + 11 * 11 = 122; each turn is 11
    fitted = middle_out(CONVERSATION, total - 11, count)
    assert fitted is not None and fitted.removed == 1
    assert [m.text[:2] for m in fitted.messages] == [
        "SS",
        "00",
        "01",
        "02",
        "03",
        "04",
        "06",
        "07",
        "08",
        "09",
    ]
    fitted = middle_out(CONVERSATION, total - 4 * 11, count)
    assert fitted is not None and fitted.removed == 4
    # the hole grows from the middle towards both ends
    assert [m.text[:2] for m in fitted.messages] == ["SS", "00", "01", "02", "07", "08", "09"]
    assert fitted.prompt_tokens == count(fitted.messages) <= total - 4 * 11


def test_at_most_the_system_prompt_and_both_ends_remain() -> None:
    floor = floor_tokens(CONVERSATION, count)
    fitted = middle_out(CONVERSATION, floor, count)
    assert fitted is not None
    assert [m.text[:2] for m in fitted.messages] == ["SS", "00", "09"]
    assert middle_out(CONVERSATION, floor - 1, count) is None  # cannot fit: nothing else to remove


def test_a_tool_call_and_its_results_are_removed_together() -> None:
    call = ToolCall("c1", "lookup", "{}")
    conversation = (
        msg("user", "first question"),
        msg("assistant", "", tool_calls=(call,)),
        msg("tool", "result one", tool_call_id="c1"),
        msg("assistant", "an answer in between"),
        msg("user", "the last question"),
    )
    budget = count(conversation) - 1
    fitted = middle_out(conversation, budget, count)
    assert fitted is not None
    roles = [m.role for m in fitted.messages]
    assert ("tool" in roles) == any(m.tool_calls for m in fitted.messages)  # never one without the other
    assert fitted.messages[0].text == "first question" and fitted.messages[-1].text == "the last question"


def test_the_middle_out_transform_per_channel_context() -> None:
    req = ChatRequest(model="m", messages=CONVERSATION, max_tokens=10)
    squeeze = MiddleOut(count, count(CONVERSATION))
    whole, note = squeeze.fit(req, "big", 10_000)
    assert whole is req and note is None  # a long-context channel needs none
    small, note = squeeze.fit(req, "small", 100)
    assert note is not None and note["channel"] == "small" and note["removed_messages"] == 3
    assert count(small.messages) + 10 <= 100


def test_transform_names() -> None:
    assert parse_transforms(["middle-out"]) == {"middle-out"}
    assert parse_transforms(None) == frozenset()
    with pytest.raises(InvalidRequest):
        parse_transforms(["middle-in"])
