"""The model's reasoning text from any upstream to any client (issue 13), with the official SDKs against the
gateway and the simulator: Anthropic thinking blocks (signed) and OpenAI-compatible `reasoning_content` in,
Anthropic thinking blocks and OpenRouter's `message.reasoning` / `reasoning_details` out, streaming included,
and a tool round trip with the thinking passed back. The simulated Anthropic API checks every signature it
is sent back and the thinking-first rule of tool use, so a 200 there shows no foreign signature reached it.
"""

from __future__ import annotations

import json
from typing import Any, Final

import anthropic
import openai
import pytest

from faregate.providers.reasoning import BUDGETS
from faregate.simulator.behaviour import signed_thought
from tests.conftest import Demo
from tests.server.translation_helpers import (
    UPSTREAMS,
    Upstream,
    anth,
    anthropic_tool,
    last_body,
    oai,
    openai_tool,
)

CLAUDE: Final = UPSTREAMS["anthropic"]
REASONER: Final = "openai/gpt-6-luna"  # an OpenAI-format reasoning model: takes reasoning_effort
LUNA: Final = Upstream("openai", REASONER, "openai", "gpt-6-luna")
ON_OPENAI: Final = {"Faregate-Provider": "openai"}
HELLO: Any = [{"role": "user", "content": "Hello there"}]
THINKING: Any = {"type": "enabled", "budget_tokens": 2048}
WEATHER: Any = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
ASK_WEATHER: Any = [{"role": "user", "content": "What is the weather in Oslo?"}]


def thinking_of(blocks: list[Any]) -> list[Any]:
    return [b for b in blocks if b.type == "thinking"]


def tool_turns(first: Any) -> Any:
    """The conversation after an answer that thought, then called the weather tool: that answer passed
    back whole (its thinking block first), then the tool's result."""
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}
    return [
        *ASK_WEATHER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]},
    ]


# -- Anthropic clients -----------------------------------------------------------------------------------


async def test_anthropic_client_gets_claudes_signed_thinking_first(demo: Demo) -> None:
    async with anth(demo) as c:
        message = await c.messages.create(
            model=CLAUDE.model, max_tokens=4096, messages=HELLO, thinking=THINKING
        )
    assert [b.type for b in message.content] == ["thinking", "text"]
    thought = message.content[0]
    assert thought.type == "thinking"
    assert thought.thinking.startswith(CLAUDE.head) and "Hello there" in thought.thinking
    assert signed_thought(thought.signature) == thought.thinking  # Claude's own signature, unchanged


async def test_anthropic_client_streams_thinking_in_anthropics_event_order(demo: Demo) -> None:
    async with (
        anth(demo) as c,
        c.messages.stream(model=CLAUDE.model, max_tokens=4096, messages=HELLO, thinking=THINKING) as stream,
    ):
        events = [ev async for ev in stream]
        final = await stream.get_final_message()

    def kind(e: Any) -> tuple[str, str | None]:
        if e.type == "content_block_start":
            return e.type, e.content_block.type
        return e.type, e.delta.type if e.type == "content_block_delta" else None

    thinking_part = [kind(e) for e in events if getattr(e, "index", None) == 0]
    assert thinking_part[0] == ("content_block_start", "thinking")
    assert thinking_part[-2:] == [("content_block_delta", "signature_delta"), ("content_block_stop", None)]
    assert set(thinking_part[1:-2]) == {("content_block_delta", "thinking_delta")}
    assert [b.type for b in final.content] == ["thinking", "text"]
    async with anth(demo) as c:
        whole = await c.messages.create(
            model=CLAUDE.model, max_tokens=4096, messages=HELLO, thinking=THINKING
        )
    assert final.content[0] == whole.content[0]  # the same thought, text and signature, streamed or not


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_client_gets_an_openai_format_models_reasoning_as_thinking(
    demo: Demo, stream: bool
) -> None:
    message: Any
    async with anth(demo) as c:
        if stream:
            async with c.messages.stream(
                model=REASONER, max_tokens=4096, messages=HELLO, thinking=THINKING
            ) as s:
                message = await s.get_final_message()
        else:
            message = await c.messages.create(
                model=REASONER, max_tokens=4096, messages=HELLO, thinking=THINKING
            )
    assert last_body(demo, UPSTREAMS["openai"])["reasoning_effort"] == "low"
    assert [b.type for b in message.content] == ["thinking", "text"]
    thought = message.content[0]
    assert thought.type == "thinking"
    assert thought.thinking.startswith("[simulated openai/gpt-6-luna]")
    assert thought.signature == ""  # nothing to prove: an OpenAI-format upstream signs nothing


async def test_anthropic_client_without_thinking_gets_no_thinking_blocks(demo: Demo) -> None:
    async with anth(demo) as c:
        message = await c.messages.create(model=CLAUDE.model, max_tokens=64, messages=HELLO)
    assert [b.type for b in message.content] == ["text"]


async def test_display_omitted_keeps_the_signature_without_the_text(demo: Demo) -> None:
    async with anth(demo) as c:
        message = await c.messages.create(
            model=CLAUDE.model,
            max_tokens=4096,
            messages=HELLO,
            thinking={**THINKING, "display": "omitted"},  # type: ignore[call-overload]
        )
    thought = message.content[0]
    assert thought.type == "thinking" and thought.thinking == ""
    assert signed_thought(thought.signature)  # the real thought is still behind the signature
    assert last_body(demo, CLAUDE)["thinking"]["display"] == "omitted"


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_tool_round_trip_passes_claudes_thinking_back(demo: Demo, stream: bool) -> None:
    tools: Any = [anthropic_tool("get_weather", WEATHER)]
    first: Any
    async with anth(demo) as c:
        if stream:
            async with c.messages.stream(
                model=CLAUDE.model, max_tokens=4096, messages=ASK_WEATHER, thinking=THINKING, tools=tools
            ) as s:
                first = await s.get_final_message()
        else:
            first = await c.messages.create(
                model=CLAUDE.model, max_tokens=4096, messages=ASK_WEATHER, thinking=THINKING, tools=tools
            )
        turns = tool_turns(first)
        final = await c.messages.create(
            model=CLAUDE.model, max_tokens=4096, messages=turns, thinking=THINKING, tools=tools
        )
    sent = last_body(demo, CLAUDE)
    assert sent["messages"][1]["content"][0] == first.content[0].model_dump()  # as Claude made it
    assert sent["thinking"] == THINKING
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert "Tool result received: Sunny" in final.content[1].text  # type: ignore[union-attr]


async def test_a_thought_from_another_upstream_never_reaches_claude(demo: Demo) -> None:
    """The first turn answered by an OpenAI-format reasoner (an unsigned thought), the tool result sent
    to Claude: the thought is not sent, and thinking stays off for that turn (noted), which Claude would
    otherwise refuse."""
    tools: Any = [anthropic_tool("get_weather", WEATHER)]
    async with anth(demo) as c:
        first = await c.messages.create(
            model=REASONER, max_tokens=4096, messages=ASK_WEATHER, thinking=THINKING, tools=tools
        )
        turns = tool_turns(first)
        raw = await c.messages.with_raw_response.create(
            model=CLAUDE.model, max_tokens=4096, messages=turns, thinking=THINKING, tools=tools
        )
    body = json.loads(raw.http_response.text)
    sent = last_body(demo, CLAUDE)
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use"]
    assert "thinking" not in sent
    assert any(d.startswith("reasoning (") for d in body["x-faregate"]["routing"]["dropped_params"])


@pytest.mark.parametrize(("effort", "canonical"), [("low", "low"), ("medium", "medium"), ("max", "high")])
async def test_anthropic_clients_adaptive_effort_reaches_every_upstream(
    demo: Demo, effort: str, canonical: str
) -> None:
    """Adaptive thinking with Anthropic's `output_config.effort` (what Claude Code sends): Claude gets both as
    sent, an OpenAI reasoning model the effort as `reasoning_effort`, Gemini as a thinking budget (`max`,
    beyond the canonical scale, stands for `high` there and is reported as not carried)."""
    kw: Any = {
        "max_tokens": 4096,
        "messages": HELLO,
        "thinking": {"type": "adaptive"},
        "extra_body": {"output_config": {"effort": effort}},
    }
    async with anth(demo) as c:
        await c.messages.create(model=CLAUDE.model, **kw)
        sent = last_body(demo, CLAUDE)
        assert sent["thinking"] == {"type": "adaptive"} and sent["output_config"] == {"effort": effort}
        raw = await c.messages.with_raw_response.create(model=REASONER, extra_headers=ON_OPENAI, **kw)
        assert last_body(demo, LUNA)["reasoning_effort"] == canonical
        dropped = json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]
        assert ("output_config" in dropped) == (effort == "max")
        gemini = UPSTREAMS["gemini"]
        await c.messages.create(model=gemini.model, **kw)
        config = last_body(demo, gemini)["generationConfig"]["thinkingConfig"]
        assert config["thinkingBudget"] == BUDGETS[canonical]  # type: ignore[index]


async def test_anthropic_effort_without_thinking_is_anthropics_own(demo: Demo) -> None:
    """Without thinking, `output_config.effort` steers Claude's whole answer, not a reasoning request: Claude
    gets it, an OpenAI model no `reasoning_effort` (and `dropped_params` says so)."""
    kw: Any = {"max_tokens": 256, "messages": HELLO, "extra_body": {"output_config": {"effort": "low"}}}
    async with anth(demo) as c:
        await c.messages.create(model=CLAUDE.model, **kw)
        assert last_body(demo, CLAUDE)["output_config"] == {"effort": "low"}
        assert "thinking" not in last_body(demo, CLAUDE)
        raw = await c.messages.with_raw_response.create(model=REASONER, extra_headers=ON_OPENAI, **kw)
    assert "reasoning_effort" not in last_body(demo, LUNA)
    assert "output_config" in json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]


async def test_anthropic_effort_must_be_one_anthropic_documents(demo: Demo) -> None:
    kw: Any = {"thinking": {"type": "adaptive"}, "extra_body": {"output_config": {"effort": "extreme"}}}
    async with anth(demo) as c:
        with pytest.raises(anthropic.BadRequestError) as e:
            await c.messages.create(model=REASONER, max_tokens=256, messages=HELLO, **kw)
    assert "output_config.effort: must be one of low, medium, high, xhigh, max" in e.value.message


# -- OpenAI clients --------------------------------------------------------------------------------------


async def test_openai_client_gets_claudes_thinking_as_openrouter_reasoning(demo: Demo) -> None:
    async with oai(demo) as c:
        resp = await c.chat.completions.create(
            model=CLAUDE.model, messages=HELLO, max_tokens=4096, reasoning_effort="low"
        )
    extra = resp.choices[0].message.model_extra or {}
    assert extra["reasoning"].startswith(CLAUDE.head)
    (detail,) = extra["reasoning_details"]
    assert detail["type"] == "reasoning.text" and detail["format"] == "anthropic-claude-v1"
    assert signed_thought(detail["signature"]) == detail["text"] == extra["reasoning"]
    assert resp.choices[0].message.content and resp.choices[0].message.content.startswith(CLAUDE.head)


async def test_openai_client_streams_reasoning_before_content(demo: Demo) -> None:
    async with oai(demo) as c:
        stream = await c.chat.completions.create(
            model=CLAUDE.model, messages=HELLO, max_tokens=4096, reasoning_effort="low", stream=True
        )
        chunks = [chunk async for chunk in stream]
    deltas = [ch.choices[0].delta for ch in chunks if ch.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(i for i, d in enumerate(deltas) if (d.model_extra or {}).get("reasoning_details"))
    assert last_reasoning < first_content
    assert reasoning.startswith(CLAUDE.head) and content.startswith(CLAUDE.head)
    signed = [
        det
        for d in deltas
        for det in (d.model_extra or {}).get("reasoning_details") or ()
        if "signature" in det
    ]
    assert [signed_thought(s["signature"]) for s in signed] == [reasoning]


async def test_reasoning_exclude_hides_the_text(demo: Demo) -> None:
    async with oai(demo) as c:
        resp = await c.chat.completions.create(
            model=CLAUDE.model,
            messages=HELLO,
            max_tokens=4096,
            extra_body={"reasoning": {"effort": "low", "exclude": True}},
        )
    extra = resp.choices[0].message.model_extra or {}
    assert extra["reasoning"] is None
    (detail,) = extra["reasoning_details"]
    assert detail["text"] == "" and signed_thought(detail["signature"])  # kept to pass back


@pytest.mark.parametrize(
    ("extra_body", "shown"),
    [
        ({"reasoning_effort": "low", "include_reasoning": True}, True),
        ({"reasoning_effort": "low", "include_reasoning": False}, False),
        ({"include_reasoning": True}, True),  # reasoning: {}
        ({"reasoning": {"effort": "low", "exclude": False}, "include_reasoning": False}, True),
    ],
)
async def test_include_reasoning_is_openrouters_legacy_exclude(
    demo: Demo, extra_body: dict[str, Any], shown: bool
) -> None:
    """OpenRouter's deprecated `include_reasoning` is honoured as its guide maps it (`true`: `reasoning: {}`,
    `false` with a reasoning request: `exclude: true`), and not reported as a dropped parameter."""
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=CLAUDE.model, messages=HELLO, max_tokens=4096, extra_body=extra_body
        )
    resp = raw.parse()
    extra = resp.choices[0].message.model_extra or {}
    (detail,) = extra["reasoning_details"]
    assert signed_thought(detail["signature"])  # thinking was asked for and happened
    if shown:
        assert extra["reasoning"].startswith(CLAUDE.head) and detail["text"] == extra["reasoning"]
    else:
        assert extra["reasoning"] is None and detail["text"] == ""
    assert "thinking" in last_body(demo, CLAUDE)
    routing = json.loads(raw.text)["x-faregate"]["routing"]
    assert "include_reasoning" not in routing.get("dropped_params", [])


async def test_include_reasoning_false_alone_asks_for_no_thinking(demo: Demo) -> None:
    """A client that says it wants no reasoning gets none: no thinking budget is sent (and billed), its
    temperature reaches Claude, and no reasoning comes back."""
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=CLAUDE.model,
            messages=HELLO,
            max_tokens=4000,
            temperature=0.2,
            extra_body={"include_reasoning": False},
        )
    extra = raw.parse().choices[0].message.model_extra or {}
    assert not extra.get("reasoning") and not extra.get("reasoning_details")
    sent = last_body(demo, CLAUDE)
    assert "thinking" not in sent and sent["temperature"] == 0.2
    routing = json.loads(raw.text)["x-faregate"]["routing"]
    assert "include_reasoning" not in routing.get("dropped_params", [])


async def test_include_reasoning_must_be_a_boolean(demo: Demo) -> None:
    async with oai(demo) as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(
                model=CLAUDE.model, messages=HELLO, extra_body={"include_reasoning": "yes"}
            )
    assert e.value.body["param"] == "include_reasoning"  # type: ignore[index]


async def test_openai_client_reads_reasoning_content_from_an_openai_format_upstream(demo: Demo) -> None:
    async with oai(demo) as c:
        resp = await c.chat.completions.create(model=REASONER, messages=HELLO, reasoning_effort="high")
    extra = resp.choices[0].message.model_extra or {}
    assert extra["reasoning"].startswith("[simulated openai/gpt-6-luna]")
    async with oai(demo) as c:
        plain = await c.chat.completions.create(model=UPSTREAMS["openai"].model, messages=HELLO)
    assert "reasoning" not in (plain.choices[0].message.model_extra or {})


@pytest.mark.parametrize("pass_back", [True, False])
async def test_openai_client_tool_round_trip_through_claude_with_reasoning(
    demo: Demo, pass_back: bool
) -> None:
    """The assistant turn passed back with its `reasoning_details` (as OpenRouter asks) keeps Claude's
    thinking on; passed back without them, thinking is off for that turn and the call still succeeds."""
    tools: Any = [openai_tool("get_weather", WEATHER)]
    async with oai(demo) as c:
        first = await c.chat.completions.create(
            model=CLAUDE.model, messages=ASK_WEATHER, tools=tools, max_tokens=4096, reasoning_effort="low"
        )
        message = first.choices[0].message.model_dump(exclude_none=True)
        assert message["tool_calls"] and message["reasoning_details"]
        if not pass_back:
            message.pop("reasoning_details")
            message.pop("reasoning")
        call_id = message["tool_calls"][0]["id"]
        turns: Any = [*ASK_WEATHER, message, {"role": "tool", "tool_call_id": call_id, "content": "Sunny"}]
        final = await c.chat.completions.create(
            model=CLAUDE.model, messages=turns, tools=tools, max_tokens=4096, reasoning_effort="low"
        )
    sent = last_body(demo, CLAUDE)
    kinds = [b["type"] for b in sent["messages"][1]["content"]]
    if pass_back:
        assert kinds == ["thinking", "tool_use"] and "thinking" in sent
    else:
        assert kinds == ["tool_use"] and "thinking" not in sent
    assert (
        final.choices[0].message.content and "Tool result received: Sunny" in final.choices[0].message.content
    )


async def test_a_forced_tool_choice_to_claude_keeps_thinking_off(demo: Demo) -> None:
    """Anthropic refuses thinking with a forced tool choice: the call is made without it, and says so."""
    tools: Any = [openai_tool("get_weather", WEATHER)]
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=CLAUDE.model,
            messages=ASK_WEATHER,
            tools=tools,
            tool_choice="required",
            max_tokens=4096,
            reasoning_effort="low",
        )
    body = json.loads(raw.http_response.text)
    assert body["choices"][0]["message"]["tool_calls"]
    assert "thinking" not in last_body(demo, CLAUDE)
    assert any("forced tool choice" in d for d in body["x-faregate"]["routing"]["dropped_params"])
