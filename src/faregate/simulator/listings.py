"""Model listings, one shape per `listing` kind: what the catalog sync reads from each provider.

OpenAI `/models`, Together's bare array with prices, OpenRouter's per-token price strings, Ollama's
`/api/tags`, Anthropic's `after_id`/`before_id` pages and Gemini's `pageToken` pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from aiohttp import web

from faregate.simulator.model import Call, Endpoint, JSONObject, Listing, SimError, SimModel, json_response

EPOCH = 1_700_000_000
PER_MILLION = Decimal(1_000_000)
OPENROUTER_PARAMETERS: Final = MappingProxyType(
    {
        "chat": (
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "tools",
            "tool_choice",
            "response_format",
        ),
        "embedding": (),
    }
)
GEMINI_METHODS: Final = MappingProxyType(
    {"chat": ["generateContent", "countTokens"], "embedding": ["embedContent", "batchEmbedContents"]}
)
GEMINI_MAX_OUTPUT = 8192
ANTHROPIC_PAGE = (20, 1000)  # default and largest `limit`
GEMINI_PAGE = (50, 1000)  # default and largest `pageSize`


def created(model: SimModel) -> int:
    """A stable creation time per model, so listings are the same on every call."""
    return EPOCH + int(hashlib.sha256(model.upstream_id.encode()).hexdigest()[:8], 16) % 40_000_000


def per_token(price_per_million: Decimal) -> str:
    """USD per 1M tokens as OpenRouter's USD-per-token decimal string: 0.15 -> "0.00000015"."""
    return format((price_per_million / PER_MILLION).normalize(), "f")


def _openai_model(call: Call, model: SimModel) -> JSONObject:
    return {
        "id": model.upstream_id,
        "object": "model",
        "created": created(model),
        "owned_by": call.provider.name,
    }


async def openai_list(call: Call) -> web.StreamResponse:
    return json_response({"object": "list", "data": [_openai_model(call, m) for m in call.provider.models]})


async def openai_get(call: Call) -> web.StreamResponse:
    model = call.provider.model(call.tail)
    if model is None:
        raise SimError(404, f"The model '{call.tail}' does not exist", code="model_not_found", param="model")
    return json_response(_openai_model(call, model))


async def together_list(call: Call) -> web.StreamResponse:
    org = call.provider.name

    def entry(m: SimModel) -> JSONObject:
        return {
            "id": m.upstream_id,
            "object": "model",
            "created": created(m),
            "type": m.kind,
            "display_name": m.name,
            "organization": m.upstream_id.split("/")[0] if "/" in m.upstream_id else org,
            "context_length": m.context,
            "pricing": {
                "hourly": 0,
                "input": float(m.input_price),
                "output": float(m.output_price),
                "base": 0,
                "finetune": 0,
            },
        }

    return json_response([entry(m) for m in call.provider.models])  # Together answers a bare array


async def openrouter_list(call: Call) -> web.StreamResponse:
    def entry(m: SimModel) -> JSONObject:
        output = "text" if m.kind == "chat" else "embeddings"
        return {
            "id": m.upstream_id,
            "canonical_slug": m.upstream_id,
            "name": m.name,
            "created": created(m),
            "description": f"{m.name}, served by the faregate simulator.",
            "context_length": m.context,
            "architecture": {
                "modality": f"text->{output}",
                "input_modalities": ["text"],
                "output_modalities": [output],
                "tokenizer": "Other",
                "instruct_type": None,
            },
            "pricing": {
                "prompt": per_token(m.input_price),
                "completion": per_token(m.output_price),
                "request": "0",
                "image": "0",
                "web_search": "0",
                "internal_reasoning": "0",
            },
            "top_provider": {
                "context_length": m.context,
                "max_completion_tokens": None,
                "is_moderated": False,
            },
            "per_request_limits": None,
            "supported_parameters": list(OPENROUTER_PARAMETERS[m.kind]),
        }

    return json_response({"data": [entry(m) for m in call.provider.models]})


async def ollama_tags(call: Call) -> web.StreamResponse:
    def entry(m: SimModel) -> JSONObject:
        digest = hashlib.sha256(m.upstream_id.encode()).hexdigest()
        family = m.upstream_id.split(":")[0].split("/")[-1].rstrip("0123456789.") or "llama"
        return {
            "name": m.upstream_id,
            "model": m.upstream_id,
            "modified_at": datetime.fromtimestamp(created(m), UTC).isoformat(),
            "size": 1_000_000_000 + int(digest[:8], 16) % 4_000_000_000,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": f"{1 + int(digest[8:10], 16) % 70}B",
                "quantization_level": "Q4_K_M",
            },
        }

    return json_response({"models": [entry(m) for m in call.provider.models]})


def _anthropic_model(m: SimModel) -> JSONObject:
    when = datetime.fromtimestamp(created(m), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": m.upstream_id, "display_name": m.name, "created_at": when}


def _limit(raw: str | None, default_max: tuple[int, int], name: str) -> int:
    default, largest = default_max
    try:
        limit = int(raw) if raw else default
    except ValueError:
        raise SimError(400, f"{name}: Input should be a valid integer") from None
    if not 1 <= limit <= largest:
        raise SimError(400, f"{name}: Input should be between 1 and {largest}")
    return limit


async def anthropic_list(call: Call) -> web.StreamResponse:
    """Anthropic's cursor pages: `after_id` pages forward, `before_id` backward, `has_more` says if more."""
    query, models = call.request.query, call.provider.models
    limit = _limit(query.get("limit"), ANTHROPIC_PAGE, "limit")
    ids = [m.upstream_id for m in models]
    cursor = query.get("after_id") or query.get("before_id")
    if cursor is not None and cursor not in ids:
        raise SimError(
            400, f"{'after_id' if 'after_id' in query else 'before_id'}: unknown model id '{cursor}'"
        )
    if "after_id" in query:
        start = ids.index(query["after_id"]) + 1
        page, has_more = models[start : start + limit], start + limit < len(models)
    elif "before_id" in query:
        end = ids.index(query["before_id"])
        page, has_more = models[max(0, end - limit) : end], end - limit > 0
    else:
        page, has_more = models[:limit], limit < len(models)
    data = [_anthropic_model(m) for m in page]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"data": data, "has_more": has_more, "first_id": first, "last_id": last})


async def anthropic_get(call: Call) -> web.StreamResponse:
    model = call.provider.model(call.tail)
    if model is None:
        raise SimError(404, f"model: {call.tail}")
    return json_response(_anthropic_model(model))


def _gemini_model(m: SimModel) -> JSONObject:
    return {
        "name": f"models/{m.upstream_id}",
        "version": "001",
        "displayName": m.name,
        "description": f"{m.name}, served by the faregate simulator.",
        "inputTokenLimit": m.context,
        "outputTokenLimit": min(m.context, GEMINI_MAX_OUTPUT),
        "supportedGenerationMethods": GEMINI_METHODS[m.kind],
    }


async def gemini_list(call: Call) -> web.StreamResponse:
    """Gemini's pages: an opaque `nextPageToken` until the last page, which has none."""
    models = call.provider.models
    size = _limit(call.request.query.get("pageSize"), GEMINI_PAGE, "pageSize")
    token = call.request.query.get("pageToken")
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except (ValueError, binascii.Error):
        raise SimError(400, "Invalid page token.") from None
    body: JSONObject = {"models": [_gemini_model(m) for m in models[start : start + size]]}
    if start + size < len(models):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return json_response(body)


async def gemini_get(call: Call) -> web.StreamResponse:
    model = call.provider.model(call.tail)
    if model is None:
        raise SimError(404, f"models/{call.tail} is not found for API version v1beta.")
    return json_response(_gemini_model(model))


# Paths are relative to the provider's base path (root=True: to the provider's own root).
LISTINGS: Final[Mapping[Listing, tuple[Endpoint, ...]]] = MappingProxyType(
    {
        "openai": (Endpoint("GET", "/models", openai_list), Endpoint("GET", "/models/*", openai_get)),
        "together": (Endpoint("GET", "/models", together_list),),
        "openrouter": (Endpoint("GET", "/models", openrouter_list),),
        "ollama": (
            Endpoint("GET", "/api/tags", ollama_tags, root=True),
            Endpoint("GET", "/models", openai_list),
        ),
        "anthropic": (
            Endpoint("GET", "/v1/models", anthropic_list),
            Endpoint("GET", "/v1/models/*", anthropic_get),
        ),
        "gemini": (Endpoint("GET", "/models", gemini_list), Endpoint("GET", "/models/*", gemini_get)),
    }
)
