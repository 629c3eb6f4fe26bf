"""Listing parsers: one page of each provider's listing JSON -> models and the next-page cursor. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faregate.catalog.listing import anthropic, gemini, ollama, openai, openrouter, together
from faregate.catalog.listing.base import ListingError
from faregate.catalog.listing.fetch import FORMATS
from faregate.catalog.model import Price
from faregate.catalog.reconcile import plain

D = Decimal


def test_openai_ids_and_optional_context_and_capabilities() -> None:
    page = openai.parse(
        {
            "object": "list",
            "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"},
                {"id": "llama-3.1-8b-instant", "context_window": 131072, "active": True},
                {"id": "whisper-large-v3", "active": False},  # Groq: deactivated
                {
                    "id": "mistral-small-latest",
                    "max_context_length": 32768,
                    "capabilities": {"completion_chat": True, "function_calling": True, "vision": False},
                },
            ],
        }
    )
    assert [m.upstream_id for m in page.models] == [
        "gpt-4o-mini",
        "llama-3.1-8b-instant",
        "mistral-small-latest",
    ]
    assert page.cursor is None
    first, groq, mistral = page.models
    assert (first.price, first.context, first.kind, dict(first.caps)) == (None, None, None, {})
    assert groq.context == 131072
    assert (mistral.context, dict(mistral.caps)) == (32768, {"tools": True, "vision": False})


def test_together_bare_array_with_prices_per_million() -> None:
    page = together.parse(
        [
            {
                "id": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "type": "chat",
                "display_name": "Llama 3.3 70B",
                "context_length": 131072,
                "pricing": {"hourly": 0, "input": 0.88, "output": 0.88, "base": 0},
            },
            {"id": "black-forest-labs/FLUX.1-schnell", "type": "image", "pricing": {"input": 0, "output": 0}},
            {
                "id": "BAAI/bge-large-en-v1.5",
                "type": "embedding",
                "context_length": 512,
                "pricing": {"input": 0.02, "output": 0},
            },
        ]
    )
    llama, bge = page.models
    assert llama.price == Price(D("0.88"), D("0.88")) and llama.kind == "chat" and llama.context == 131072
    assert llama.name == "Llama 3.3 70B"
    assert bge.kind == "embedding" and bge.price == Price(D("0.02"), D(0))


def test_openrouter_per_token_strings_become_exact_prices_per_million() -> None:
    page = openrouter.parse(
        {
            "data": [
                {
                    "id": "openai/gpt-4o-mini",
                    "name": "OpenAI: GPT-4o-mini",
                    "context_length": 128000,
                    "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
                    "pricing": {
                        "prompt": "0.00000015",
                        "completion": "0.0000006",
                        "input_cache_read": "0.000000075",
                    },
                    "supported_parameters": ["tools", "tool_choice", "response_format", "max_tokens"],
                },
                {
                    "id": "openrouter/auto",
                    "context_length": 2000000,
                    "pricing": {"prompt": "-1", "completion": "-1"},
                    "supported_parameters": [],
                },
                {
                    "id": "x/embed",
                    "top_provider": {"context_length": 8192},
                    "architecture": {"output_modalities": ["embeddings"]},
                    "pricing": {"prompt": "0.00000002", "completion": "0"},
                },
            ]
        }
    )
    mini, auto, embed = page.models
    assert mini.price == Price(D("0.15"), D("0.6"), D("0.075"))
    assert str(mini.price.input) == "0.15"  # the decimal point moved: no float, no rounding
    assert dict(mini.caps) == {"tools": True, "json": True, "vision": True}
    assert (mini.context, mini.kind, mini.name) == (128000, "chat", "OpenAI: GPT-4o-mini")
    assert auto.price is None and dict(auto.caps) == {"tools": False, "json": False, "vision": False}
    assert (embed.kind, embed.context, embed.price) == ("embedding", 8192, Price(D("0.02"), D(0)))


@given(st.integers(0, 10**40), st.integers(-45, 0))
def test_openrouter_price_strings_convert_exactly(digits: int, exponent: int) -> None:
    text = format(D(f"{digits}E{exponent}"), "f")  # as OpenRouter writes them, with any number of digits
    converted = openrouter.per_million(text, "prompt")
    assert converted == D(f"{digits}E{exponent + 6}")  # Decimal comparison is exact: nothing was rounded
    assert converted is not None and D(plain(converted)) == converted  # and the store's text keeps it


def test_anthropic_pages_follow_last_id() -> None:
    first = anthropic.parse(
        {
            "data": [{"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5"}],
            "has_more": True,
            "first_id": "claude-haiku-4-5",
            "last_id": "claude-haiku-4-5",
        }
    )
    assert first.cursor == "claude-haiku-4-5" and first.models[0].name == "Claude Haiku 4.5"
    last = anthropic.parse(
        {"data": [{"id": "claude-opus-4-1"}], "has_more": False, "last_id": "claude-opus-4-1"}
    )
    assert last.cursor is None
    assert anthropic.page_query("claude-haiku-4-5", 2) == {"limit": "2", "after_id": "claude-haiku-4-5"}
    assert anthropic.headers("k") == {"anthropic-version": "2023-06-01", "x-api-key": "k"}


def test_gemini_strips_models_prefix_and_reads_kind_and_context() -> None:
    page = gemini.parse(
        {
            "models": [
                {
                    "name": "models/gemini-2.5-flash",
                    "displayName": "Gemini 2.5 Flash",
                    "inputTokenLimit": 1048576,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                },
                {
                    "name": "models/text-embedding-004",
                    "inputTokenLimit": 2048,
                    "supportedGenerationMethods": ["embedContent"],
                },
                {"name": "models/aqa", "supportedGenerationMethods": ["generateAnswer"]},
            ],
            "nextPageToken": "Mg==",
        }
    )
    assert [(m.upstream_id, m.kind, m.context) for m in page.models] == [
        ("gemini-2.5-flash", "chat", 1048576),
        ("text-embedding-004", "embedding", 2048),
    ]
    assert page.cursor == "Mg==" and gemini.parse({"models": []}).cursor is None
    assert gemini.page_query("Mg==", 2) == {"pageSize": "2", "pageToken": "Mg=="}
    assert gemini.headers("k") == {"x-goog-api-key": "k"}


def test_ollama_tags_are_free_and_live_at_the_origin() -> None:
    page = ollama.parse(
        {
            "models": [
                {"name": "llama3.1:8b", "details": {"family": "llama"}},
                {"name": "nomic-embed-text:latest", "details": {"family": "nomic-bert"}},
            ]
        }
    )
    assert [(m.upstream_id, m.kind, m.price) for m in page.models] == [
        ("llama3.1:8b", "chat", Price(D(0), D(0))),
        ("nomic-embed-text:latest", "embedding", Price(D(0), D(0))),
    ]
    assert ollama.url("http://localhost:11434/v1") == "http://localhost:11434/api/tags"
    assert ollama.url("http://127.0.0.1:9/ollama/v1/") == "http://127.0.0.1:9/ollama/api/tags"
    assert ollama.no_key("ignored") == {}


def test_every_format_is_in_the_table_with_its_auth() -> None:
    assert set(FORMATS) == {"openai", "together", "openrouter", "anthropic", "gemini", "ollama"}
    assert FORMATS["openai"].headers("sk") == {"Authorization": "Bearer sk"}
    assert FORMATS["together"].url("https://api.together.xyz/v1/") == "https://api.together.xyz/v1/models"
    assert FORMATS["anthropic"].url("https://api.anthropic.com") == "https://api.anthropic.com/v1/models"
    assert FORMATS["openai"].page_query("x", 5) == {}


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (openai.parse, {"object": "list"}, "data: expected an array"),
        (openai.parse, {"data": [{"object": "model"}]}, "data[0].id: expected a non-empty string"),
        (
            openai.parse,
            {"data": [{"id": "m", "context_window": "big"}]},
            "context_window: expected a whole number",
        ),
        (together.parse, {"data": []}, "expected an array, got dict"),
        (
            together.parse,
            [{"id": "m", "pricing": {"input": "cheap", "output": 1}}],
            "pricing.input: not a number",
        ),
        (openrouter.parse, {"data": [{"id": "m", "pricing": None}]}, "pricing: expected an object"),
        (
            openrouter.parse,
            {"data": [{"id": "m", "pricing": {"prompt": "0.1"}}]},
            "pricing.completion: expected a number",
        ),
        (
            openrouter.parse,
            {"data": [{"id": "m", "pricing": {"prompt": "NaN", "completion": "0"}}]},
            "not a finite number",
        ),
        (anthropic.parse, {"data": [], "has_more": "yes"}, "has_more: expected true or false"),
        (anthropic.parse, {"data": [], "has_more": True}, "last_id: expected a non-empty string"),
        (
            gemini.parse,
            {"models": [{"displayName": "x", "supportedGenerationMethods": ["generateContent"]}]},
            "models[0].name",
        ),
        (gemini.parse, ["models"], "listing: expected an object"),
        (ollama.parse, {"models": [{"size": 1}]}, "models[0].name"),
    ],
)
def test_malformed_listings_raise_a_clear_error(parse: Any, data: Any, message: str) -> None:
    with pytest.raises(ListingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(data)
