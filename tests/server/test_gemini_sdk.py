"""The google-genai SDK against the gateway and the simulator (issue 13): `generate_content`, streaming, a tool
round trip (function call -> function response -> final answer) and `count_tokens`, routed to every upstream
wire format (openai, anthropic, gemini, openai-responses); the model list; Google's error envelope and keys.

The simulated upstreams reject any field their real API does not know (the Gemini one answers "Unknown
name", the OpenAI one "Unrecognized request argument"), so a test that passes has also shown that nothing
foreign reached them; the tests that send Gemini-only fields check what arrived as well.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from faregate.accounting.tokens import TokenCounter
from tests.conftest import Demo, edit_routes, start_demo
from tests.server.translation_helpers import (
    ALL_UPSTREAMS,
    TOOL_RESULT,
    WEATHER_ARGS,
    Upstream,
    last_body,
    oai,
    replay,
    responses_upstream,
    sent_to,
)
from tests.server.translation_helpers import UPSTREAMS as CHAT_UPSTREAMS

UPSTREAMS: Final = ALL_UPSTREAMS
APIS: Final = tuple(UPSTREAMS)
# Gemini's own schema dialect (OpenAPI, upper-case types): translated to JSON Schema for other upstreams.
WEATHER_DECL: Final[dict[str, Any]] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "celsius": {"type": "BOOLEAN"}},
        "required": ["city", "celsius"],
        "propertyOrdering": ["city", "celsius"],
    },
}
ASK_TOOL: Final = "Use get_weather for Paris"


@pytest.fixture
async def demo(routes_copy: Path, counter: TokenCounter) -> AsyncIterator[Demo]:
    edit_routes(routes_copy, responses_upstream)
    d, stop = await start_demo(routes_copy, counter)
    try:
        yield d
    finally:
        await stop()


def gem(demo: Demo, api_version: str | None = None, api_key: str = "x") -> genai.client.AsyncClient:
    options = types.HttpOptions(base_url=demo.url, api_version=api_version, timeout=20_000)
    return genai.Client(api_key=api_key, http_options=options).aio


def upstream_calls(demo: Demo, up: Upstream) -> list[dict[str, Any]]:
    """The bodies the gateway sent to `up` (for a Responses upstream, only its /responses calls)."""
    calls = sent_to(demo, up)
    if up.api == "openai-responses":
        calls = [r for r in calls if r.path.endswith("/responses")]
    elif up.api == "openai":
        calls = [r for r in calls if r.path.endswith("/chat/completions")]
    return [r.json() for r in calls]


def header(resp: Any, name: str) -> str:
    headers = resp.sdk_http_response.headers
    return str(next(v for k, v in headers.items() if k.lower() == name.lower()))


# -- generate_content, plain and streamed ----------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_generate_content_on_every_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", max_output_tokens=200, temperature=0.5, stop_sequences=["zzz"]
    )
    resp = await gem(demo).models.generate_content(model=up.model, contents="Hello there", config=config)
    assert resp.text is not None and resp.text.startswith(up.head)
    assert resp.model_version == up.model
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert header(resp, "X-Faregate-Provider") == up.provider
    sent = upstream_calls(demo, up)[-1]
    if api in CHAT_UPSTREAMS:  # what the upstream itself answered, value by value
        native = await replay(demo, up)
        assert resp.text == native.text
        assert (usage.prompt_token_count, usage.candidates_token_count) == (
            native.prompt_tokens,
            native.completion_tokens,
        )
    if api == "openai":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert (sent["temperature"], sent["stop"]) == (0.5, ["zzz"])
    elif api == "anthropic":
        assert sent["system"] == "Be brief." or sent["system"][0]["text"] == "Be brief."
        assert sent["stop_sequences"] == ["zzz"]
    elif api == "gemini":
        assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert sent["generationConfig"]["maxOutputTokens"] == 200
    # the answer's id finds its trace
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/v1/requests/{resp.response_id}") as r:
        assert r.status == 200 and (await r.json())["endpoint"] == "gemini"


@pytest.mark.parametrize("api", APIS)
async def test_streaming_on_every_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    chunks = [
        c
        async for c in await gem(demo).models.generate_content_stream(
            model=up.model, contents="Tell me something"
        )
    ]
    text = "".join(c.text or "" for c in chunks)
    assert len(chunks) > 2 and text.startswith(up.head)
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count
    if api == "gemini":
        assert sent_to(demo, up)[-1].path.endswith(":streamGenerateContent")
    else:
        assert upstream_calls(demo, up)[-1]["stream"] is True
    if api in CHAT_UPSTREAMS:
        assert text == (await replay(demo, up)).text


async def test_both_api_versions_and_a_bare_upstream_id(demo: Demo) -> None:
    """google-genai defaults to `v1`; `v1beta` is Gemini's own REST version: both are served."""
    for version in (None, "v1", "v1beta"):
        resp = await gem(demo, version).models.generate_content(model="gemini-2.5-flash-lite", contents="Hi")
        assert resp.model_version == "google/gemini-2.5-flash-lite"
    resp = await gem(demo).models.generate_content(model="models/auto", contents="Hi")
    assert resp.text


# -- tools -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_a_tool_round_trip_on_every_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    client = gem(demo)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration.model_validate(WEATHER_DECL)])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    asked = types.Content(role="user", parts=[types.Part(text=ASK_TOOL)])
    first = await client.models.generate_content(model=up.model, contents=[asked], config=config)
    calls = first.function_calls
    assert calls and calls[0].name == "get_weather" and calls[0].args == WEATHER_ARGS
    assert calls[0].id  # the call's id, so that the response can name it
    sent = upstream_calls(demo, up)[-1]
    if api == "openai":  # Gemini's OpenAPI schema arrived as JSON Schema
        params = sent["tools"][0]["function"]["parameters"]
        assert params["properties"]["city"] == {"type": "string"} and "propertyOrdering" not in params
    elif api == "anthropic":
        assert sent["tools"][0]["input_schema"]["properties"]["celsius"] == {"type": "boolean"}

    model_turn = first.candidates[0].content if first.candidates else None
    assert model_turn is not None
    answer = types.Part.from_function_response(name="get_weather", response={"content": TOOL_RESULT})
    assert answer.function_response is not None
    answer.function_response.id = calls[0].id
    result = types.Content(role="user", parts=[answer])
    final = await client.models.generate_content(
        model=up.model, contents=[asked, model_turn, result], config=config
    )
    assert final.text and TOOL_RESULT in final.text and not final.function_calls
    sent = upstream_calls(demo, up)[-1]
    if api == "openai":  # the result answers the call by its id
        call_id = sent["messages"][-2]["tool_calls"][0]["id"]
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT}
    elif api == "anthropic":
        block = sent["messages"][-1]["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == calls[0].id
    elif api == "gemini":
        assert sent["contents"][-1]["parts"][0]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize("api", APIS)
async def test_a_streamed_function_call(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration.model_validate(WEATHER_DECL)])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
    )
    stream = await gem(demo).models.generate_content_stream(model=up.model, contents="Hi", config=config)
    calls = [call for c in [c async for c in stream] for call in c.function_calls or ()]
    assert [(c.name, c.args) for c in calls] == [("get_weather", WEATHER_ARGS)]


# -- count_tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_count_tokens_for_the_model_it_would_route_to(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    before = len(sent_to(demo, up))
    counted = await gem(demo).models.count_tokens(model=up.model, contents="Hello there, how are you?")
    assert counted.total_tokens and counted.total_tokens > 0
    assert header(counted, "X-Faregate-Model") == up.model
    assert header(counted, "X-Faregate-Estimated") == str(not up.model.startswith("openai/")).lower()
    assert len(sent_to(demo, up)) == before, "counting never calls the upstream"
    longer = await gem(demo).models.count_tokens(model=up.model, contents="Hello there, how are you? " * 10)
    assert (longer.total_tokens or 0) > counted.total_tokens


async def test_count_tokens_of_a_whole_generate_content_request(demo: Demo) -> None:
    body = {"generateContentRequest": {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{demo.url}/v1beta/models/auto:countTokens", json=body, headers={"x-goog-api-key": "x"}) as r,
    ):
        data = await r.json()
    assert r.status == 200 and data["totalTokens"] > 0 and data["x-faregate"]["model"]


# -- Gemini-only fields ----------------------------------------------------------------------------------


async def test_gemini_only_fields_reach_gemini_and_are_reported_elsewhere(demo: Demo) -> None:
    config = types.GenerateContentConfig(
        seed=7,
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
            )
        ],
        top_k=20,
    )
    gemini, openai_up = UPSTREAMS["gemini"], UPSTREAMS["openai"]
    await gem(demo).models.generate_content(model=gemini.model, contents="Hi", config=config)
    sent = last_body(demo, gemini)
    assert sent["generationConfig"]["seed"] == 7 and sent["generationConfig"]["topK"] == 20
    assert sent["safetySettings"][0]["threshold"] == "BLOCK_ONLY_HIGH"

    async with aiohttp.ClientSession() as s:
        body = {
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"seed": 7, "topK": 20, "mediaResolution": "MEDIA_RESOLUTION_LOW"},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        }
        url = f"{demo.url}/v1beta/models/{openai_up.model}:generateContent"
        async with s.post(url, json=body, headers={"x-goog-api-key": "x"}) as r:
            data = await r.json()
    assert r.status == 200, data
    dropped = data["x-faregate"]["routing"]["dropped_params"]
    assert {"generationConfig.mediaResolution", "safetySettings", "top_k"} <= set(dropped)
    assert "generationConfig.seed" not in dropped
    sent = last_body(demo, openai_up)
    assert sent["seed"] == 7  # a setting OpenAI has too arrives under its name there
    assert not {"safetySettings", "top_k", "generationConfig", "mediaResolution"} & set(sent)
    assert data["usageMetadata"]["cost"] > 0


async def test_openai_sampling_settings_reach_gemini_under_its_names(demo: Demo) -> None:
    up = UPSTREAMS["gemini"]
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=up.model,
            messages=[{"role": "user", "content": "Hi"}],
            seed=5,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            logit_bias={"1": 2},
        )
    config = last_body(demo, up)["generationConfig"]
    assert (config["seed"], config["presencePenalty"], config["frequencyPenalty"]) == (5, 0.5, -0.5)
    dropped = json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]
    assert "logit_bias" in dropped and not {"seed", "presence_penalty", "frequency_penalty"} & set(dropped)
    async with oai(demo) as c:  # Anthropic has none of them
        raw = await c.chat.completions.with_raw_response.create(
            model=UPSTREAMS["anthropic"].model, messages=[{"role": "user", "content": "Hi"}], seed=5
        )
    assert "seed" in json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]


async def test_structured_output_from_a_gemini_client(demo: Demo) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "population": {"type": "INTEGER"}},
        "required": ["city", "population"],
    }
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    up = UPSTREAMS["openai"]
    resp = await gem(demo).models.generate_content(model=up.model, contents="A city", config=config)
    assert set(json.loads(resp.text or "")) == {"city", "population"}
    fmt = last_body(demo, up)["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["population"] == {"type": "integer"}


# -- models ----------------------------------------------------------------------------------------------


async def test_models_list_and_get(demo: Demo) -> None:
    client = gem(demo)
    models = [m async for m in await client.models.list(config={"page_size": 5})]
    names = {m.name for m in models}
    assert {"models/auto", "models/google/gemini-2.5-flash-lite", "models/openai/gpt-4o-mini"} <= names
    assert len(models) > 5  # paged: the SDK followed nextPageToken
    assert all("generateContent" in (m.supported_actions or ()) for m in models)
    got = await client.models.get(model="gemini-2.5-flash-lite")
    assert got.name == "models/google/gemini-2.5-flash-lite" and got.input_token_limit
    with pytest.raises(errors.ClientError) as info:
        await client.models.get(model="no-such-model")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/v1/models") as r:
        assert (await r.json())["object"] == "list"  # OpenAI's shape for everyone else


# -- errors and keys -------------------------------------------------------------------------------------


async def test_errors_in_googles_envelope(demo: Demo) -> None:
    with pytest.raises(errors.ClientError) as info:
        await gem(demo).models.generate_content(model="no-such/model", contents="Hi")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    async with aiohttp.ClientSession() as s:
        for path, body in (
            ("/v1beta/models/auto:generateContent", {"contents": []}),
            (
                "/v1beta/models/auto:generateContent",
                {"contents": [{"role": "robot", "parts": [{"text": "x"}]}]},
            ),
            ("/v1beta/models/auto:streamGenerateContent", {"contents": [{"parts": [{"text": "x"}]}]}),
            ("/v1beta/models/auto:generateContent", {"contents": "x", "tools": [{"googleSearch": {}}]}),
            ("/v1/models/auto:embedContent", {"content": {"parts": [{"text": "x"}]}}),
        ):
            async with s.post(demo.url + path, json=body) as r:
                data = await r.json()
            assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "status"}, data
            assert data["error"]["code"] == r.status and r.status in (400, 404)
            assert data["error"]["status"] in ("INVALID_ARGUMENT", "NOT_FOUND")


@pytest.fixture
async def keyed(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[Any]:
    from tests.server.accounting_fixtures import start_keyed_demo

    kd, stop = await start_keyed_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


async def test_keys_by_header_or_query(keyed: Any) -> None:
    secret, key = keyed.create_key("gemini")
    resp = await gem(keyed.demo, api_key=secret).models.generate_content(model="auto", contents="Hi")
    assert resp.text
    with pytest.raises(errors.ClientError) as info:
        await gem(keyed.demo, api_key="fg_wrong").models.generate_content(model="auto", contents="Hi")
    assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{keyed.url}/v1beta/models/auto:generateContent?key={secret}", json=body) as r:
            assert r.status == 200
            rid = r.headers["X-Faregate-Request-Id"]
        async with s.post(f"{keyed.url}/v1beta/models/auto:generateContent", json=body) as r:
            assert r.status == 401 and (await r.json())["error"]["status"] == "UNAUTHENTICATED"
        async with s.post(f"{keyed.url}/v1/chat/completions?key={secret}", json=body) as r:
            assert r.status == 401  # `?key=` is Google's convention, taken on Gemini's paths only
        headers = {"Authorization": f"Bearer {secret}"}
        async with s.get(f"{keyed.url}/v1/requests/{rid}", headers=headers) as r:
            assert r.status == 200 and (await r.json())["key_id"] == key.id
