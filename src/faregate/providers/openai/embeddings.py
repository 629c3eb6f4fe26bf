"""OpenAI's embeddings format as a client speaks it: `POST /v1/embeddings` in, the list object out."""

from __future__ import annotations

import base64
import struct
from typing import Any

from faregate.canonical import EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


def parse_embeddings(body: object) -> tuple[EmbeddingRequest, str, JSONObject]:
    """Returns the canonical request, the requested `encoding_format`, and the routing fields."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    raw = body.get("input")
    if raw is None:
        raise InvalidRequest("'input' is a required property", param="input")
    if isinstance(raw, str):
        inputs: tuple[str, ...] = (raw,)
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        inputs = tuple(raw)
    elif isinstance(raw, list) and raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        raise InvalidRequest("token-array inputs are not supported: send text", param="input")
    else:
        raise InvalidRequest("'input' must be a string or a non-empty list of strings", param="input")
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has {len(inputs)} items; the limit is {MAX_INPUTS}", param="input")
    if any(not s for s in inputs):
        raise InvalidRequest("'input' must not contain empty strings", param="input")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise InvalidRequest("'dimensions' must be a positive integer", param="dimensions")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string", param="user")
    routing = {k: body[k] for k in ROUTING_FIELDS if k in body}  # faregate's (OpenRouter's names)
    known = {"input", "model", "dimensions", "encoding_format", "user", *ROUTING_FIELDS}
    extra = {k: v for k, v in body.items() if k not in known}
    return EmbeddingRequest(model or None, inputs, dims, user, extra), fmt, routing


def render_embeddings(
    resp: EmbeddingResponse, model: str, usage: Usage, fmt: str, extras: JSONObject
) -> JSONObject:
    data: list[dict[str, Any]] = [
        {"object": "embedding", "index": i, "embedding": _encode(v, fmt)} for i, v in enumerate(resp.vectors)
    ]
    out: JSONObject = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
    }
    if "cost" in extras:
        out["usage"]["cost"] = extras["cost"]
    if "x-faregate" in extras:
        out["x-faregate"] = extras["x-faregate"]
    return out


def _encode(vector: tuple[float, ...], fmt: str) -> list[float] | str:
    if fmt == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)
