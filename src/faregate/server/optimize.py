"""`POST /v1/optimize`: `{prompt, similarity_threshold}` → the prompt with fewer tokens, and by how much."""

from __future__ import annotations

from aiohttp import web

from faregate.accounting.optimize import optimize
from faregate.errors import InvalidRequest
from faregate.server.appkeys import RUNTIME
from faregate.server.context import json_bytes_response, read_json

DEFAULT_THRESHOLD = 0.9


async def handle_optimize(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' must be a non-empty string", param="prompt")
    threshold = body.get("similarity_threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise InvalidRequest(
            "'similarity_threshold' must be a number from 0 to 1", param="similarity_threshold"
        )
    unknown = sorted(set(body) - {"prompt", "similarity_threshold", "model"})
    if unknown:
        raise InvalidRequest(f"unknown field '{unknown[0]}'", param=unknown[0])
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string (the tokenizer to count with)", param="model")
    counter = request.app[RUNTIME].counter
    result = optimize(prompt, float(threshold), lambda text: counter.count_text(text, model or ""))
    return json_bytes_response(
        {
            "optimized_prompt": result.optimized_prompt,
            "original_tokens": result.original_tokens,
            "compressed_tokens": result.compressed_tokens,
            "tokens_saved": result.tokens_saved,
            "similarity_score": result.similarity_score,
            "steps": list(result.steps),
        },
        {},
    )
