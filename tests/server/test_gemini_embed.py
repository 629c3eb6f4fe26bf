"""Gemini's embeddings in (`:embedContent`, `:batchEmbedContents`, under /v1beta and /v1), any upstream format
that embeds out: google-genai's `models.embed_content` against the gateway and the simulator, answers in
Gemini's shape (`embedding.values`, `embeddings[]`), errors in Google's envelope, cost accounted.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from faregate.simulator import behaviour
from faregate.simulator.openai import CHAT_FIELDS
from tests.conftest import Demo
from tests.server.helpers import client

# model -> (the provider that serves it, its wire format's embeddings path, the vector size it defaults to)
EMBEDDERS: Final = {
    "google/gemini-embedding-001": ("google", ":batchEmbedContents"),
    "openai/text-embedding-3-small": ("openai", "/embeddings"),
    "mistralai/mistral-embed": ("mistral", "/embeddings"),
}
TEXTS: Final = ["What is your name?", "What is your favourite colour?"]
CONTENTS: Final[Any] = TEXTS  # the SDK's `contents` union does not take a list[str] under mypy


def gem(demo: Demo, api_version: str | None = None) -> genai.client.AsyncClient:
    options = types.HttpOptions(base_url=demo.url, api_version=api_version, timeout=20_000)
    return genai.Client(api_key="x", http_options=options).aio


def embed_calls(demo: Demo) -> list[tuple[str, str, Any]]:
    return [(r.provider, r.path, r.json()) for r in demo.sim.received if r.body]


@pytest.mark.parametrize("model", list(EMBEDDERS))
@pytest.mark.parametrize("api_version", [None, "v1beta"])
async def test_embed_content_through_every_upstream_format(
    demo: Demo, model: str, api_version: str | None
) -> None:
    provider, path = EMBEDDERS[model]
    resp = await gem(demo, api_version).models.embed_content(
        model=model, contents=CONTENTS, config=types.EmbedContentConfig(output_dimensionality=8)
    )
    assert resp.embeddings is not None and len(resp.embeddings) == 2
    got = [e.values for e in resp.embeddings]
    assert got == [behaviour.embed(t, 8) for t in TEXTS]  # the simulator's vectors, in order
    assert resp.usage_metadata is not None and resp.usage_metadata.prompt_token_count
    ((called, sent_path, sent),) = embed_calls(demo)
    assert called == provider and sent_path.endswith(path)
    if provider == "google":
        assert [r["outputDimensionality"] for r in sent["requests"]] == [8, 8]
    else:
        assert sent["dimensions"] == 8 and sent["input"] == TEXTS
        assert not set(sent) - CHAT_FIELDS - {"input", "dimensions", "encoding_format"}


async def test_the_same_vectors_as_openai_clients_get_with_cost_and_trace(demo: Demo) -> None:
    resp = await gem(demo).models.embed_content(model="text-embedding-3-small", contents="hello")
    assert resp.embeddings is not None
    async with client(demo) as c:
        openai_resp = await c.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    # the openai SDK asks for base64 (float32) vectors: equal to float32 precision
    assert resp.embeddings[0].values == pytest.approx(openai_resp.data[0].embedding, abs=1e-6)
    async with aiohttp.ClientSession() as s:
        url = f"{demo.url}/v1beta/models/embed:embedContent"
        async with s.post(url, json={"content": {"parts": [{"text": "hello"}]}}) as r:
            assert r.status == 200
            body = await r.json()
            request_id = r.headers["X-Faregate-Request-Id"]
            assert r.headers["X-Faregate-Provider"] == "openai"
        async with s.get(f"{demo.url}/v1/requests/{request_id}") as r:
            assert r.status == 200
    assert body["embedding"]["values"] == resp.embeddings[0].values  # `embed` alias: the same model
    assert float(body["usageMetadata"]["cost"]) > 0
    assert body["x-faregate"]["routing"]["model"] == "openai/text-embedding-3-small"


async def test_task_type_and_title_reach_gemini_and_are_reported_elsewhere(demo: Demo) -> None:
    config = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", title="A doc")
    await gem(demo).models.embed_content(model="gemini-embedding-001", contents=CONTENTS, config=config)
    sent = embed_calls(demo)[-1][2]
    assert all(r["taskType"] == "RETRIEVAL_DOCUMENT" and r["title"] == "A doc" for r in sent["requests"])
    async with aiohttp.ClientSession() as s:
        url = f"{demo.url}/v1beta/models/openai/text-embedding-3-small:embedContent"
        body = {"content": {"parts": [{"text": "hi"}]}, "taskType": "RETRIEVAL_QUERY"}
        async with s.post(url, json=body) as r:
            assert r.status == 200
            answer = await r.json()
    assert answer["x-faregate"]["routing"]["dropped_params"] == ["taskType"]
    assert "taskType" not in embed_calls(demo)[-1][2]


async def test_errors_in_googles_envelope(demo: Demo) -> None:
    with pytest.raises(errors.ClientError) as info:
        await gem(demo).models.embed_content(model="no-such/embedder", contents="hi")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    async with aiohttp.ClientSession() as s:
        for path, body, param in (
            ("google/gemini-embedding-001:embedContent", {"content": {"parts": []}}, "content"),
            ("google/gemini-embedding-001:batchEmbedContents", {"requests": []}, "requests"),
            (
                "google/gemini-embedding-001:embedContent",
                {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}},
                "content.parts.0",
            ),
            (
                "google/gemini-embedding-001:batchEmbedContents",
                {
                    "requests": [
                        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
                        {"content": {"parts": [{"text": "b"}]}, "outputDimensionality": 16},
                    ]
                },
                "requests.1",
            ),
            (
                "google/gemini-embedding-001:batchEmbedContents",
                {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]},
                "requests.0.model",
            ),
            (
                "openai/gpt-4o-mini:embedContent",
                {"content": {"parts": [{"text": "a"}]}},
                None,
            ),  # a chat model
        ):
            async with s.post(f"{demo.url}/v1beta/models/{path}", json=body) as r:
                assert 400 <= r.status < 500, path
                err = (await r.json())["error"]
                assert set(err) >= {"code", "message", "status"} and err["code"] == r.status
                if param is not None:
                    assert param in err["message"], err
    assert embed_calls(demo) == []  # a bad request never reaches an upstream


async def test_models_get_finds_an_embedding_model_with_its_methods(demo: Demo) -> None:
    got = await gem(demo).models.get(model="gemini-embedding-001")
    assert got.name == "models/google/gemini-embedding-001"
    assert got.supported_actions == ["embedContent", "batchEmbedContents"] and got.input_token_limit
