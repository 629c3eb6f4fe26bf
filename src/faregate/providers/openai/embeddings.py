"""OpenAI's embeddings format as a client speaks it: `POST /v1/embeddings` in, the list object out."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Any, TypeGuard

from faregate.canonical import EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


# A client's token ids as text, for the model it named (the caller owns the tokenizer; ValueError if bad).
Decode = Callable[[list[int], str | None], str]


def is_tokens(value: object) -> TypeGuard[list[int]]:
    """A token array: a non-empty list of ints (not booleans)."""
    return isinstance(value, list) and bool(value) and all(type(x) is int for x in value)


def token_arrays(raw: object) -> list[list[int]] | None:
    """A token array, or a list of them, as a list of arrays; None for anything else."""
    if is_tokens(raw):
        return [raw]
    if isinstance(raw, list) and raw and all(is_tokens(x) for x in raw):
        return [x for x in raw if is_tokens(x)]
    return None


def parse_input(raw: object, model: str | None, decode: Decode | None) -> tuple[str, ...]:
    """`input`: a string, a list of strings, a token array (a list of ints) or a list of token arrays.
    Token arrays are decoded to the text they stand for (every upstream format takes text)."""
    if raw is None:
        raise InvalidRequest("'input' is a required property", param="input")
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    arrays = (
        [raw]
        if is_tokens(raw)
        else raw
        if isinstance(raw, list) and raw and all(map(is_tokens, raw))
        else None
    )
    if arrays is None:
        raise InvalidRequest(
            "'input' must be a string, a list of strings, a list of token ids or a list of token-id lists",
            param="input",
        )
    if decode is None:
        raise InvalidRequest("token-array inputs are not supported here: send text", param="input")
    if len(arrays) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has {len(arrays)} items; the limit is {MAX_INPUTS}", param="input")
    try:
        return tuple(decode(a, model) for a in arrays)
    except ValueError as e:
        raise InvalidRequest(f"'input': {e}", param="input") from None


def parse_embeddings(body: object, decode: Decode | None = None) -> tuple[EmbeddingRequest, str, JSONObject]:
    """Returns the canonical request, the requested `encoding_format`, and the routing fields. `decode`
    turns token-array inputs into text (without it they are refused)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    inputs = parse_input(body.get("input"), model, decode)
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has {len(inputs)} items; the limit is {MAX_INPUTS}", param="input")
    if any(not s for s in inputs):
        raise InvalidRequest("'input' must not contain empty strings", param="input")
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
