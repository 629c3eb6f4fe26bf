"""What a Responses upstream adds to an answer reaches a Responses client unchanged, with the official
`openai` SDK against gateway + simulator: a built-in tool's output items (`web_search_call`) and its
streamed events, the `url_citation` annotations of the text, and reasoning items (summary, and
`encrypted_content` passed back to the same upstream only); all kept in the stored response, so
`previous_response_id` continues on any channel."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Demo
from tests.server.conftest import RESPONSES_MODEL as MODEL
from tests.server.helpers import client, decimal_json

ANTHROPIC = "anthropic/claude-haiku-4.5"
SEARCH: Any = [{"type": "web_search"}]
SUMMARY: Any = {"effort": "low", "summary": "auto"}
ENCRYPTED: Any = ["reasoning.encrypted_content"]


@pytest.fixture
def demo(responses_demo: Demo) -> Demo:
    return responses_demo


def sent_to(demo: Demo, provider: str) -> list[dict[str, Any]]:
    return [r.json() for r in demo.sim.received_for(provider) if r.body]


def check_citation(message: Any) -> None:
    part = message["content"][0]
    [note] = part["annotations"]
    assert note["type"] == "url_citation" and note["url"].startswith("https://search.simulator.invalid/")
    assert (
        part["text"][note["start_index"] : note["end_index"]] == f"[search.simulator.invalid]({note['url']})"
    )


async def test_a_web_search_answer_carries_its_call_and_citation(demo: Demo) -> None:
    async with client(demo) as c:
        raw = await c.responses.with_raw_response.create(
            model="auto",
            input="Search the web for faregate",
            tools=SEARCH,
            include=["web_search_call.action.sources"],
        )
        resp = raw.parse()
        stored = await c.responses.retrieve(resp.id)
    body = decimal_json(raw.text)
    assert [i["type"] for i in body["output"]] == ["web_search_call", "message"]
    call = body["output"][0]
    assert call["id"].startswith("ws_") and call["status"] == "completed"
    assert call["action"]["type"] == "search" and call["action"]["query"] == "Search the web for faregate"
    url = body["output"][1]["content"][0]["annotations"][0]["url"]
    assert call["action"]["sources"] == [{"type": "url", "url": url}]
    check_citation(body["output"][1])
    assert resp.output[0].type == "web_search_call"  # the SDK reads the item as its own type
    assert stored.model_dump()["output"] == resp.model_dump()["output"]
    [upstream] = sent_to(demo, "openai")
    assert upstream["tools"] == SEARCH and upstream["include"][0] == "web_search_call.action.sources"


async def test_a_streamed_web_search_relays_its_events_in_order(demo: Demo) -> None:
    async with client(demo) as c:
        stream = await c.responses.create(
            model="auto", input="Please search for the weather", tools=SEARCH, stream=True
        )
        events = [ev async for ev in stream]
    kinds = [ev.type for ev in events]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    search = [k for k in kinds if "web_search_call" in k or k.startswith("response.output_item")]
    assert search[:5] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    added = next(ev for ev in events if ev.type == "response.output_item.added" and ev.output_index == 0)  # type: ignore[union-attr]
    call_id = added.item.id  # type: ignore[union-attr]
    assert added.item.type == "web_search_call"  # type: ignore[union-attr]
    for ev in events:
        if ev.type.startswith("response.web_search_call."):
            assert ev.item_id == call_id and ev.output_index == 0  # type: ignore[union-attr]
    note = events[kinds.index("response.output_text.annotation.added")]
    assert note.output_index == 1 and note.annotation_index == 0  # type: ignore[union-attr]
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed"
    output = final.model_dump()["output"]
    assert [i["type"] for i in output] == ["web_search_call", "message"]
    assert output[0]["id"] == call_id
    check_citation(output[1])
    async with client(demo) as c:
        assert (await c.responses.retrieve(final.id)).model_dump()["output"] == output


@pytest.mark.parametrize("model", [MODEL, ANTHROPIC])
async def test_a_conversation_with_a_search_continues_on_any_channel(demo: Demo, model: str) -> None:
    async with client(demo) as c:
        first = await c.responses.create(model="auto", input="Search for Ada Lovelace", tools=SEARCH)
        second = await c.responses.create(model=model, input="Who was she?", previous_response_id=first.id)
    assert second.status == "completed" and "You said: Who was she" in second.output_text
    history = json.dumps(sent_to(demo, model.split("/")[0])[-1])
    assert "Search for Ada Lovelace" in history and "search.simulator.invalid" in history


@pytest.mark.parametrize("by", ["previous_response_id", "input"])
async def test_built_in_tool_items_go_back_to_a_responses_upstream_only(demo: Demo, by: str) -> None:
    """A `web_search_call` item of the history (stored, or passed back in `input` as a stateless client
    does) reaches a Responses upstream unchanged, before the answer it led to; a chat-completions channel
    gets the answer's text and no such item."""
    async with client(demo) as c:
        first = await c.responses.create(model="auto", input="Search for Ada Lovelace", tools=SEARCH)
        output = first.model_dump(exclude_none=True)["output"]
        call, message = output
        assert call["type"] == "web_search_call"
        for model in (MODEL, "openai/gpt-4o-mini"):
            if by == "previous_response_id":
                nxt = await c.responses.create(
                    model=model, input="Who was she?", previous_response_id=first.id
                )
            else:
                turns: Any = [{"role": "user", "content": "Search for Ada Lovelace"}, *output]
                nxt = await c.responses.create(
                    model=model, input=[*turns, {"role": "user", "content": "Who was she?"}], store=False
                )
            assert nxt.status == "completed" and "You said: Who was she" in nxt.output_text
    _, to_responses, to_chat = sent_to(demo, "openai")
    kinds = [i.get("type", "message") for i in to_responses["input"]]
    assert kinds == ["message", "web_search_call", "message", "message"]
    assert to_responses["input"][1] == call
    assert to_responses["input"][2]["content"][0]["text"] == message["content"][0]["text"]
    assert "messages" in to_chat and "web_search_call" not in json.dumps(to_chat)
    assert message["content"][0]["text"] in json.dumps(to_chat["messages"])


async def test_reasoning_items_from_a_responses_upstream(demo: Demo) -> None:
    """The upstream's reasoning item reaches the client with its summary and, included, its own
    `encrypted_content`; given back (stateless, as the Agents SDK does), it returns to that upstream."""
    async with client(demo) as c:
        first = await c.responses.create(
            model=MODEL, input="Hello there", reasoning=SUMMARY, include=ENCRYPTED, store=False
        )
        dumped = first.model_dump(exclude_none=True)
        reasoning, message = dumped["output"]
        assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
        assert "The user said: Hello there" in reasoning["summary"][0]["text"]
        assert reasoning["encrypted_content"].startswith("gAAAAAsim")
        assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens > 0
        second = await c.responses.create(
            model=MODEL,
            input=[
                {"role": "user", "content": "Hello there"},
                reasoning,
                message,
                {"role": "user", "content": "again"},
            ],
            reasoning=SUMMARY,
            include=ENCRYPTED,
            store=False,
        )
        hidden = await c.responses.create(model=MODEL, input="Hello there", reasoning={"effort": "low"})
    assert second.status == "completed"
    sent = sent_to(demo, "openai")
    assert sent[0]["include"] == ENCRYPTED and sent[0]["reasoning"] == {"effort": "low", "summary": "auto"}
    [passed] = [i for i in sent[1]["input"] if i["type"] == "reasoning"]
    assert passed["encrypted_content"] == reasoning["encrypted_content"]
    # No summary asked and nothing included: the item is there (as on OpenAI), its text and content are not.
    assert [i.type for i in hidden.output] == ["reasoning", "message"]
    assert hidden.output[0].model_dump(exclude_none=True) == {
        "id": hidden.output[0].id,
        "type": "reasoning",
        "summary": [],
    }


async def test_streamed_reasoning_summary_events(demo: Demo) -> None:
    async with client(demo) as c:
        stream = await c.responses.create(
            model=MODEL, input="Hello there", reasoning=SUMMARY, include=ENCRYPTED, stream=True
        )
        events = [ev async for ev in stream]
    kinds = [ev.type for ev in events]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    first = kinds.index("response.output_item.added")
    assert events[first].item.type == "reasoning" and events[first].output_index == 0  # type: ignore[union-attr]
    reasoning = [k for k in kinds[first:] if "reasoning_summary" in k or "output_item" in k]
    deltas = kinds.count("response.reasoning_summary_text.delta")
    assert deltas > 1
    assert reasoning[: deltas + 5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * deltas,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    done = events[kinds.index("response.output_item.done")].item  # type: ignore[union-attr]
    text = "".join(ev.delta for ev in events if ev.type == "response.reasoning_summary_text.delta")  # type: ignore[union-attr]
    assert done.summary[0].text == text and done.encrypted_content.startswith("gAAAAAsim")  # type: ignore[union-attr]
    message = events[kinds.index("response.content_part.added")]
    assert message.output_index == 1  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert [i.type for i in final.output] == ["reasoning", "message"]


async def test_a_stored_response_shows_encrypted_content_when_retrieved_with_include(demo: Demo) -> None:
    async with client(demo) as c:
        first = await c.responses.create(model=MODEL, input="Hello there", reasoning=SUMMARY)
        plain = await c.responses.retrieve(first.id)
        full = await c.responses.retrieve(first.id, include=ENCRYPTED)
    assert first.output[0].type == "reasoning" and first.output[0].encrypted_content is None
    assert plain.output[0].encrypted_content is None  # type: ignore[union-attr]
    assert plain.output[0].summary == first.output[0].summary  # type: ignore[union-attr]  # as asked: shown
    assert (full.output[0].encrypted_content or "").startswith("gAAAAAsim")  # type: ignore[union-attr]
