"""Gemini's embeddings as a client speaks them: `:embedContent` (one content) and `:batchEmbedContents`
(`requests[]`, what google-genai's `models.embed_content` sends) in, `embedding.values` / `embeddings[]`
out. Every content becomes one canonical input, so any upstream format that embeds can serve it.

A batch is embedded with one setting: its requests may not differ in `outputDimensionality`, `taskType`
or `title`. `taskType` and `title` reach a Gemini upstream; other formats have neither (reported dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS
from faregate.providers.gemini.inbound import as_list, as_object, bare_model, parse_routing
from faregate.providers.gemini.render import EXTRAS_KEY
from faregate.providers.gemini.request import EMBED_SETTINGS

SOURCE_API: Final = "gemini"
MAX_BATCH: Final = 100  # Google's limit on requests per batchEmbedContents
# Per-request settings a Gemini upstream takes as they are (the others have no such field).
KNOWN: Final = frozenset({"model", "content", "outputDimensionality", *EMBED_SETTINGS, *ROUTING_FIELDS})


def fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def content_text(raw: Any, where: str) -> str:
    """A `Content`'s text parts, joined; a part of any other kind cannot be embedded by every upstream."""
    content = as_object(raw, where)
    parts = as_list(content.get("parts"), f"{where}.parts") if content.get("parts") is not None else []
    texts: list[str] = []
    for i, part in enumerate(parts):
        obj = as_object(part, f"{where}.parts.{i}")
        text = obj.get("text")
        if not isinstance(text, str):
            raise fail(f"{where}.parts.{i}: only text parts can be embedded", f"{where}.parts.{i}")
        texts.append(text)
    joined = "\n".join(t for t in texts if t)
    if not joined:
        raise fail(f"{where}: contents is not specified (no text to embed)", where)
    return joined


def dimensions(obj: Mapping[str, Any], where: str) -> int | None:
    value = obj.get("outputDimensionality")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the SDK may type it as a float
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(f"{where}outputDimensionality: must be a positive integer", f"{where}outputDimensionality")
    return value


def settings(obj: Mapping[str, Any], where: str) -> tuple[int | None, JSONObject]:
    """(outputDimensionality, the other fields a Gemini upstream may take: taskType, title, unknown ones)."""
    extra: JSONObject = {}
    for key, value in obj.items():
        if key in EMBED_SETTINGS and value is not None and not isinstance(value, str):
            raise fail(f"{where}{key}: Input should be a string", f"{where}{key}")
        if (key not in KNOWN or key in EMBED_SETTINGS) and value is not None:
            extra[key] = value
    return dimensions(obj, where), extra


def parse_embed(raw: object, model: str) -> tuple[EmbeddingRequest, JSONObject]:
    """An `EmbedContentRequest` for `model` (from the URL): the canonical request and the routing fields."""
    body = as_object(raw, "body")
    text = content_text(body.get("content"), "content")
    dims, extra = settings(body, "")
    req = EmbeddingRequest(model, (text,), dims, None, MappingProxyType(extra), SOURCE_API)
    return req, parse_routing(body)


def parse_batch(raw: object, model: str) -> tuple[EmbeddingRequest, JSONObject]:
    """A `BatchEmbedContentsRequest`: each request's content is one input, in order."""
    body = as_object(raw, "body")
    requests = as_list(body.get("requests"), "requests") if body.get("requests") is not None else []
    if not requests:
        raise fail("requests: requests is not specified", "requests")
    if len(requests) > MAX_BATCH:
        raise fail(f"requests: at most {MAX_BATCH} requests can be in one batch", "requests")
    texts: list[str] = []
    seen: tuple[int | None, JSONObject] | None = None
    for i, item in enumerate(requests):
        where = f"requests.{i}"
        obj = as_object(item, where)
        named = bare_model(obj.get("model") if isinstance(obj.get("model"), str) else None)
        if named is not None and named != model:
            raise fail(
                f"{where}.model: '{named}' differs from the model in the URL ('{model}')", f"{where}.model"
            )
        texts.append(content_text(obj.get("content"), f"{where}.content"))
        setting = settings({k: v for k, v in obj.items() if k not in ("model", "content")}, f"{where}.")
        if seen is not None and setting != seen:
            raise fail(
                f"{where}: faregate embeds a batch with one setting: outputDimensionality, taskType and title "
                "must be the same in every request",
                where,
            )
        seen = setting
    dims, extra = seen or (None, {})
    req = EmbeddingRequest(model, tuple(texts), dims, None, MappingProxyType(extra), SOURCE_API)
    return req, parse_routing(body)


def render_usage(usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    out: JSONObject = {"promptTokenCount": usage.prompt_tokens, "totalTokenCount": usage.prompt_tokens}
    if "cost" in extras:
        out["cost"] = extras["cost"]
    return out


def render_embed(resp: EmbeddingResponse, usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    """An `EmbedContentResponse`: the one vector as `embedding.values`."""
    out: JSONObject = {
        "embedding": {"values": list(resp.vectors[0])},
        "usageMetadata": render_usage(usage, extras),
    }
    if EXTRAS_KEY in extras:
        out[EXTRAS_KEY] = extras[EXTRAS_KEY]
    return out


def render_batch(resp: EmbeddingResponse, usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    """A `BatchEmbedContentsResponse`: one `embeddings[]` entry per request, in order."""
    out: JSONObject = {
        "embeddings": [{"values": list(v)} for v in resp.vectors],
        "usageMetadata": render_usage(usage, extras),
    }
    if EXTRAS_KEY in extras:
        out[EXTRAS_KEY] = extras[EXTRAS_KEY]
    return out
