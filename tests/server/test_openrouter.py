"""OpenRouter's request fields and shortcuts, with the official `openai` SDK as the client.

The simulator's `openai` provider is strict as api.openai.com is: it rejects any argument it does not know,
so an OpenRouter-only field that leaked would fail the request; the tests also read what it received.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from faregate.simulator.openai import CHAT_FIELDS
from tests.conftest import Demo
from tests.server.helpers import HELLO, check_accounting, client, decimal_json, upstream_bodies

# Every OpenRouter request field beyond OpenAI's own, as OpenRouter's docs show them.
OPENROUTER_BODY: dict[str, Any] = {
    "provider": {
        "order": ["OpenAI"],
        "allow_fallbacks": True,
        "require_parameters": False,
        "data_collection": "deny",
        "zdr": True,
        "enforce_distillable_text": False,
        "quantizations": ["fp8", "bf16"],
        "sort": "price",
        "preferred_min_throughput": 10,
        "preferred_max_latency": 5,
        "max_price": {"prompt": 10, "completion": 20},
    },
    "models": ["openai/gpt-4o-mini"],
    "route": "fallback",
    "transforms": ["middle-out"],
    "plugins": [{"id": "web"}],
    "usage": {"include": True},
    "reasoning": {"effort": "low"},
    "include_reasoning": False,
    "top_k": 40,
    "min_p": 0.1,
    "top_a": 0.2,
    "repetition_penalty": 1.1,
}
NOT_FORWARDED = ("plugins", "reasoning", "top_k", "min_p", "top_a", "repetition_penalty")


async def create(demo: Demo, **kw: Any) -> tuple[Any, dict[str, Any]]:
    kw.setdefault("messages", HELLO)
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(**kw)
    return raw, decimal_json(raw.text)


def assert_only_openai_fields(demo: Demo) -> None:
    for body in upstream_bodies(demo):
        unknown = set(body) - CHAT_FIELDS
        assert not unknown, f"fields OpenAI's API rejects reached the upstream: {unknown}"


async def test_every_openrouter_field_to_an_openai_channel(demo: Demo) -> None:
    raw, body = await create(demo, model="openai/gpt-4o-mini", extra_body=OPENROUTER_BODY)
    routing = check_accounting(demo, body, raw.headers)
    assert routing["provider"] == "openai"
    assert_only_openai_fields(demo)
    dropped = routing["dropped_params"]
    for name in NOT_FORWARDED:
        assert name in dropped
    assert "include_reasoning" not in dropped  # read as `reasoning.exclude`, the thought view (not forwarded)
    # accepted, not enforced: reported too
    for name in ("provider.zdr", "provider.quantizations", "provider.preferred_min_throughput"):
        assert name in dropped
    assert "provider.enforce_distillable_text" not in dropped  # false asks for nothing
    # OpenRouter's usage accounting block
    usage = body["usage"]
    assert usage["cost_details"] == {"upstream_inference_cost": usage["cost"]}
    assert usage["is_byok"] is False


async def test_usage_include_ends_a_stream_with_usage(demo: Demo) -> None:
    async with client(demo) as c:
        stream = await c.chat.completions.create(
            model="openai/gpt-4o-mini", messages=HELLO, stream=True, extra_body={"usage": {"include": True}}
        )
        chunks = [ch async for ch in stream]
    last = chunks[-1]
    assert last.usage is not None and last.usage.total_tokens > 0
    assert (last.usage.model_extra or {})["cost"] > 0
    assert_only_openai_fields(demo)


@pytest.mark.parametrize("name", ["OpenAI", "openai", "OPENAI"])
async def test_provider_names_match_case_insensitively(demo: Demo, name: str) -> None:
    prefs = {"provider": {"order": [name, "OpenRouter"], "allow_fallbacks": False}}
    _, body = await create(demo, model="openai/gpt-4o", extra_body=prefs)
    assert body["x-faregate"]["routing"]["provider"] == "openai"
    prefs = {"provider": {"only": [name.replace("AI", "Router").replace("ai", "router")]}}
    _, body = await create(demo, model="openai/gpt-4o", extra_body=prefs)
    assert body["x-faregate"]["routing"]["provider"] == "openrouter"


async def test_openrouter_display_names(demo: Demo) -> None:
    _, body = await create(
        demo, model="google/gemini-2.5-flash-lite", extra_body={"provider": {"order": ["Google Vertex"]}}
    )
    assert body["x-faregate"]["routing"]["provider"] == "google"


async def test_order_without_fallbacks_is_exactly_those_providers(demo: Demo) -> None:
    prefs = {"provider": {"order": ["Anthropic"], "allow_fallbacks": False}}
    code = [{"role": "user", "content": "fix this python traceback"}]  # rule `code`: codestral, then sonnet
    _, body = await create(demo, model="auto", messages=code, extra_body=prefs)
    assert body["x-faregate"]["routing"]["provider"] == "anthropic"
    assert body["x-faregate"]["routing"]["rule"] == "code"
    # the default rule has no anthropic candidate: nothing else may serve it
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model="auto", messages=HELLO, extra_body=prefs)


async def test_order_without_fallbacks_and_no_such_provider_is_400(demo: Demo) -> None:
    prefs = {"provider": {"order": ["Azure"], "allow_fallbacks": False}}
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model="auto", messages=HELLO, extra_body=prefs)
    assert not upstream_bodies(demo)


async def test_models_without_model_is_the_model_list(demo: Demo) -> None:
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
            model=openai.NOT_GIVEN,
            messages=HELLO,
            extra_body={"models": ["mistralai/mistral-small", "openai/gpt-4o-mini"]},
        )
    body = decimal_json(raw.text)
    assert body["x-faregate"]["routing"]["model"] == "mistralai/mistral-small"
    trace = demo.runtime.recorder.get(body["x-faregate"]["request_id"])
    assert trace is not None and trace.requested == "mistralai/mistral-small"


async def test_openrouter_auto_is_auto(demo: Demo) -> None:
    _, body = await create(demo, model="openrouter/auto")
    assert body["x-faregate"]["routing"]["route"] == "default"


async def test_floor_and_nitro_variants(demo: Demo) -> None:
    _, floor = await create(demo, model="meta-llama/llama-3.1-8b-instruct:floor")
    table = demo.runtime.holder.current.table
    channels = table.by_model["meta-llama/llama-3.1-8b-instruct"].channels
    cheapest = min(channels, key=lambda c: c.expected_cost_usd)
    assert floor["x-faregate"]["routing"]["channel"] == cheapest.id
    _, nitro = await create(demo, model="meta-llama/llama-3.1-8b-instruct:nitro")
    assert nitro["x-faregate"]["routing"]["model"] == "meta-llama/llama-3.1-8b-instruct"


async def test_free_variant_keeps_only_free_offerings(demo: Demo) -> None:
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(model="openai/gpt-4o-mini:free", messages=HELLO)
    assert "not free" in str(e.value)


async def test_n_and_logprobs_pass_through_and_render(demo: Demo) -> None:
    raw, body = await create(demo, model="openai/gpt-4o-mini", n=2, logprobs=True, top_logprobs=3)
    completion = raw.parse()
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content != completion.choices[1].message.content
    for choice in completion.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        tokens = choice.logprobs.content
        assert "".join(t.token for t in tokens) == choice.message.content
        assert all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in tokens)
        assert all(t.top_logprobs[0].token == t.token for t in tokens)
    sent = upstream_bodies(demo)[-1]
    assert (sent["n"], sent["logprobs"], sent["top_logprobs"]) == (2, True, 3)
    check_accounting(demo, body, raw.headers)


async def test_n_and_logprobs_are_dropped_for_other_formats(demo: Demo) -> None:
    _, body = await create(demo, model="anthropic/claude-haiku-4.5", n=2, logprobs=True)
    assert len(body["choices"]) == 1
    assert {"n", "logprobs"} <= set(body["x-faregate"]["routing"]["dropped_params"])


async def test_n_and_logprobs_stream_through(demo: Demo) -> None:
    """Streamed, every choice and its tokens' logprobs reach the client, as the non-streamed answer has them."""
    async with client(demo) as c:
        stream = await c.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=HELLO,
            n=2,
            logprobs=True,
            top_logprobs=2,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [ch async for ch in stream]
    text: dict[int, str] = {0: "", 1: ""}
    tokens: dict[int, str] = {0: "", 1: ""}
    finish: dict[int, str | None] = {}
    for ch in chunks:
        for choice in ch.choices:
            text[choice.index] += choice.delta.content or ""
            if choice.logprobs and choice.logprobs.content:
                tokens[choice.index] += "".join(t.token for t in choice.logprobs.content)
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert text[0] and text[1] and text[0] != text[1] and tokens == text
    assert finish == {0: "stop", 1: "stop"}
    sent = upstream_bodies(demo)[-1]
    assert (sent["n"], sent["logprobs"], sent["top_logprobs"], sent["stream"]) == (2, True, 2, True)
    xf = (chunks[-1].model_extra or {})["x-faregate"]
    assert not {"n", "logprobs", "top_logprobs"} & set(xf["routing"]["dropped_params"])
    _, body = await create(demo, model="openai/gpt-4o-mini", n=2, logprobs=True, top_logprobs=2)
    assert [c["message"]["content"] for c in body["choices"]] == [text[0], text[1]]


async def test_ids_are_unique_and_find_their_trace(demo: Demo) -> None:
    ids = []
    for _ in range(2):
        _, body = await create(demo, model="openai/gpt-4o-mini")
        ids.append(body["id"])
        assert body["id"] == "chatcmpl-" + body["x-faregate"]["request_id"]
    assert ids[0] != ids[1]
    async with client(demo) as c:
        trace = await c.get(f"/requests/{ids[0]}", cast_to=object)
    assert isinstance(trace, dict) and trace["id"] == ids[0].removeprefix("chatcmpl-")


async def test_stream_ids_are_the_request_id(demo: Demo) -> None:
    async with client(demo) as c:
        stream = await c.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO, stream=True)
        chunks = [ch async for ch in stream]
    assert len({ch.id for ch in chunks}) == 1
    xf = (chunks[-1].model_extra or {})["x-faregate"]
    assert chunks[0].id == "chatcmpl-" + xf["request_id"]


# --- transforms: ["middle-out"] ----------------------------------------------------------------------


def long_conversation(turns: int = 40) -> list[dict[str, str]]:
    words = " ".join(f"word{i}" for i in range(60))  # about 150 tokens a turn
    conv = [{"role": "system", "content": "You are a careful assistant."}]
    for i in range(turns):
        conv.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: {words}"})
    conv.append({"role": "user", "content": "And the last question?"})
    return conv


async def test_middle_out_fits_a_conversation_over_the_context(small_context: Demo) -> None:
    demo, conv = small_context, long_conversation()
    only_openai = {"provider": {"only": ["openai"]}}
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(model="openai/gpt-4o-mini", messages=conv, extra_body=only_openai)  # type: ignore[arg-type]
        assert "context 3000" in str(e.value)
        assert not upstream_bodies(demo)  # a request that cannot fit never reaches an upstream
        raw = await c.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini",
            messages=conv,  # type: ignore[arg-type]
            max_tokens=100,
            extra_body={**only_openai, "transforms": ["middle-out"]},
        )
    body = decimal_json(raw.text)
    routing = body["x-faregate"]["routing"]
    assert routing["provider"] == "openai"
    [note] = routing["transforms"]
    assert note["transform"] == "middle-out" and note["channel"] == routing["channel"]
    assert note["removed_messages"] > 0 and note["prompt_tokens_after"] + 100 <= 3000
    sent = upstream_bodies(demo)[-1]["messages"]
    assert len(sent) == len(conv) - note["removed_messages"]
    assert sent[0] == conv[0] and sent[1] == conv[1] and sent[-1] == conv[-1]  # system prompt and both ends
    assert body["usage"]["prompt_tokens"] < 3000


async def test_middle_out_is_per_channel(small_context: Demo) -> None:
    """The small channel fails: the long-context fallback gets the whole conversation."""
    demo, conv = small_context, long_conversation()
    demo.sim.fail("openai", 500)
    _, body = await create(
        demo, model="openai/gpt-4o-mini", messages=conv, extra_body={"transforms": ["middle-out"]}
    )
    routing = body["x-faregate"]["routing"]
    assert [a["provider"] for a in routing["attempts"]] == ["openai", "openrouter"]
    assert [n["channel"] for n in routing["transforms"]] == [routing["attempts"][0]["channel"]]
    bodies = upstream_bodies(demo)
    assert len(bodies[0]["messages"]) < len(conv) and len(bodies[-1]["messages"]) == len(conv)


SAMPLING_FIELDS = {"top_k": 40, "min_p": 0.1, "top_a": 0.2, "repetition_penalty": 1.1}


LLAMA = "meta-llama/llama-3.1-8b-instruct"


@pytest.mark.parametrize(
    ("model", "provider", "taken"),
    [
        (LLAMA, "together", {"top_k", "min_p", "repetition_penalty"}),  # catalog/together.yaml `params`
        (LLAMA, "openrouter", set(SAMPLING_FIELDS)),  # the offering's own `params` (catalog/openrouter.yaml)
        ("openai/gpt-oss-20b", "groq", set()),  # declares none: every one dropped and reported
    ],
)
async def test_sampling_fields_reach_only_providers_that_declare_them(
    demo: Demo, model: str, provider: str, taken: set[str]
) -> None:
    raw, body = await create(
        demo,
        model=model,
        extra_body={**SAMPLING_FIELDS, "provider": {"only": [provider]}},
    )
    routing = check_accounting(demo, body, raw.headers)
    assert routing["provider"] == provider
    sent = upstream_bodies(demo)[-1]
    assert {k: sent[k] for k in taken} == {k: SAMPLING_FIELDS[k] for k in taken}
    assert not (set(SAMPLING_FIELDS) - taken) & set(sent)
    assert set(routing["dropped_params"]) & set(SAMPLING_FIELDS) == set(SAMPLING_FIELDS) - taken


async def test_sampling_fields_never_reach_openai_through_auto(demo: Demo) -> None:
    """`auto` over every channel the demo has: no upstream that does not declare a field receives it."""
    for model in ("auto", "openai/gpt-4o-mini", "cheap", "smart"):
        await create(demo, model=model, extra_body=SAMPLING_FIELDS)
    to_openai = [r.json() for r in demo.sim.received_for("openai") if r.body]
    assert to_openai and all(not set(b) - CHAT_FIELDS for b in to_openai)
    declared = {
        "together": {"top_k", "min_p", "repetition_penalty"},
        "openrouter": set(SAMPLING_FIELDS),
        "anthropic": {"top_k"},  # Anthropic's own field
    }
    for r in demo.sim.received:
        if r.body:
            arrived = set(SAMPLING_FIELDS) & set(r.json())
            assert arrived <= declared.get(r.provider, set()), (r.provider, arrived)


async def test_supported_parameters_list_declared_sampling_fields(demo: Demo) -> None:
    async with client(demo) as c:
        raw = await c.get("/models", cast_to=object)
    entries = {e["id"]: set(e.get("supported_parameters", ())) for e in raw["data"]}  # type: ignore[index]
    assert set(SAMPLING_FIELDS) <= entries["meta-llama/llama-3.1-8b-instruct"]
    assert not set(SAMPLING_FIELDS) & entries["openai/gpt-4o-mini"]


async def test_openrouter_fields_never_reach_an_embeddings_upstream(demo: Demo) -> None:
    extra = {"provider": {"order": ["OpenAI"]}, "route": "fallback", "usage": {"include": True}, "min_p": 0.1}
    async with client(demo) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="openai/text-embedding-3-small", input="hello", extra_body=extra
        )
    body = decimal_json(raw.text)
    sent = upstream_bodies(demo)[-1]
    assert not {"provider", "route", "usage", "min_p"} & set(sent)
    assert body["x-faregate"]["routing"]["dropped_params"] == ["min_p"]


async def test_a_model_path_with_a_trailing_slash(demo: Demo) -> None:
    async with client(demo) as c:
        model = await c.get("/models/openai/gpt-4o-mini/", cast_to=object)
    assert isinstance(model, dict) and model["id"] == "openai/gpt-4o-mini"


async def test_the_simulator_streams_n_choices_with_logprobs(demo: Demo) -> None:
    """The simulator itself, called directly as an OpenAI client would: `n` choices, each token's logprobs."""
    sim = openai.AsyncOpenAI(base_url=f"{demo.sim_origin}/openai/v1", api_key="sk-test", max_retries=0)
    async with sim:
        stream = await sim.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, n=2, logprobs=True, top_logprobs=2, stream=True
        )
        chunks = [ch async for ch in stream]
        with pytest.raises(openai.BadRequestError):
            await sim.chat.completions.create(model="gpt-4o-mini", messages=HELLO, top_logprobs=2)
    text: dict[int, str] = {0: "", 1: ""}
    tokens: dict[int, str] = {0: "", 1: ""}
    for ch in chunks:
        for c in ch.choices:
            text[c.index] += c.delta.content or ""
            if c.logprobs and c.logprobs.content:
                assert all(len(t.top_logprobs) == 2 for t in c.logprobs.content)
                tokens[c.index] += "".join(t.token for t in c.logprobs.content)
    assert text[0] and text[1] and text[0] != text[1]
    assert tokens == text


async def test_require_parameters_keeps_only_channels_that_take_every_parameter(demo: Demo) -> None:
    """OpenRouter's `require_parameters`: Anthropic's API has no `seed`, so its channel is skipped (OpenRouter,
    OpenAI's format, takes it); without it the order wins and `seed` is dropped and reported."""
    model = "anthropic/claude-haiku-4.5"
    strict = {"provider": {"order": ["Anthropic", "OpenRouter"], "require_parameters": True}}
    _, body = await create(demo, model=model, seed=7, extra_body=strict)
    routing = body["x-faregate"]["routing"]
    assert routing["provider"] == "openrouter" and "seed" not in routing["dropped_params"]
    assert upstream_bodies(demo)[-1]["seed"] == 7
    _, body = await create(demo, model=model, seed=7, extra_body={"provider": {"order": ["Anthropic"]}})
    routing = body["x-faregate"]["routing"]
    assert routing["provider"] == "anthropic" and "seed" in routing["dropped_params"]


async def test_require_parameters_with_no_channel_taking_a_parameter_is_a_400_naming_it(demo: Demo) -> None:
    sent = len(upstream_bodies(demo))
    prefs = {"provider": {"only": ["Anthropic"], "require_parameters": True}, "min_p": 0.1}
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(
                model="anthropic/claude-haiku-4.5", messages=HELLO, extra_body=prefs
            )
    assert "does not take 'min_p' (require_parameters)" in e.value.message
    assert len(upstream_bodies(demo)) == sent  # never reached an upstream
