"""Gemini's API: `models/{model}:generateContent`, `:streamGenerateContent` (SSE with `alt=sse`, else a JSON
array), `:countTokens`, `:embedContent`, `:batchEmbedContents`; key in `x-goog-api-key` or `?key=`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web

import faregate.simulator.behaviour as behaviour
from faregate.simulator.behaviour import Answer, Prompt, ToolMode, ToolSpec
from faregate.simulator.model import (
    JSON,
    Call,
    Endpoint,
    JSONObject,
    SimError,
    SimModel,
    SimProvider,
    Wire,
    dumps,
    json_response,
)
from faregate.simulator.streaming import Event, send_events
from faregate.values import frozen

# Request fields of GenerateContentRequest (proto JSON accepts camelCase and snake_case alike).
FIELDS: Final = frozenset(
    {"contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig"}
    | {"cachedContent", "model"}
)
# GenerationConfig's fields: anything else is "Unknown name" (a 400), as Gemini answers.
GENERATION_FIELDS: Final = frozenset(
    {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed"}
    | {"presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema"}
    | {"responseModalities", "responseLogprobs", "logprobs", "thinkingConfig", "mediaResolution"}
    | {"speechConfig", "enableEnhancedCivicAnswers"}
)
STATUSES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "NOT_IMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)
FINISH: Final = MappingProxyType(
    {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool_call": "STOP"}
)
TOOL_MODES: Final[Mapping[str, ToolMode]] = MappingProxyType(
    {"AUTO": "auto", "MODE_UNSPECIFIED": "auto", "VALIDATED": "auto", "ANY": "any", "NONE": "none"}
)
PART_DATA: Final = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
    "or other form of API consumer identity to call this API."
)
BAD_JSON = "Invalid JSON payload received. Expected an object."


def render_error(err: SimError) -> JSONObject:
    status = err.error_type or STATUSES.get(
        err.status, "INTERNAL" if err.status >= 500 else "FAILED_PRECONDITION"
    )
    return {"error": {"code": err.status, "message": err.message, "status": status}}


def check_auth(request: web.Request, provider: SimProvider) -> None:
    # With no key at all Google answers 403 PERMISSION_DENIED (not 401).
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
    if not (request.headers.get("x-goog-api-key") or request.query.get("key") or bearer):
        raise SimError(403, NO_KEY)


def get(obj: JSON, camel: str) -> JSON:
    """A field by its camelCase name or its snake_case twin."""
    if not isinstance(obj, dict):
        return None
    return obj[camel] if camel in obj else obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())


def invalid(message: str) -> SimError:
    return SimError(400, message)


def parse_request(body: JSONObject) -> Prompt:
    """A GenerateContentRequest as a `Prompt`, validated as Gemini validates it."""
    known = FIELDS | {re.sub(r"([A-Z])", r"_\1", f).lower() for f in FIELDS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
    contents = get(body, "contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    texts, images, last_user, tool_result = _read_contents(contents)
    system = get(body, "systemInstruction")
    system_text = " ".join(p.get("text", "") for p in get(system, "parts") or ()) if system else ""
    tools, mode, forced = _read_tools(body)
    config = get(body, "generationConfig") or {}
    known_config = GENERATION_FIELDS | {re.sub(r"([A-Z])", r"_\1", f).lower() for f in GENERATION_FIELDS}
    unknown_config = sorted(set(config) - known_config)
    if unknown_config:
        raise invalid(
            f"Invalid JSON payload received. Unknown name \"{unknown_config[0]}\" at 'generation_config': "
            "Cannot find field."
        )
    max_tokens = get(config, "maxOutputTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise invalid("* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n")
    if (get(config, "candidateCount") or 1) != 1:
        raise invalid("The simulator answers with one candidate only (candidateCount=1).")
    json_out = get(config, "responseMimeType") == "application/json"
    schema = (get(config, "responseJsonSchema") or get(config, "responseSchema")) if json_out else None
    return Prompt(
        texts=(system_text, *texts) if system_text else texts,
        message_count=len(contents) + (1 if system_text else 0),
        last_user_text=last_user,
        image_count=images,
        tools=tools,
        tools_json=dumps(get(body, "tools")) if get(body, "tools") else "",
        tool_mode=mode,
        forced_tool=forced,
        tool_result=tool_result,
        json_mode=json_out and schema is None,
        json_schema=schema,
        max_tokens=max_tokens,
        stop=tuple(get(config, "stopSequences") or ()),
    )


def _read_contents(contents: list[JSON]) -> tuple[tuple[str, ...], int, str, str | None]:
    texts: list[str] = []
    images, last_user, tool_result = 0, "", None
    for i, content in enumerate(contents):
        role = get(content, "role") or "user"
        if role not in ("user", "model", "function"):
            raise invalid("Please use a valid role: user, model.")
        parts = get(content, "parts")
        if not isinstance(parts, list) or not parts:
            raise invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        text_parts, results = [], []
        for j, part in enumerate(parts):
            if not any(get(part, key) is not None for key in PART_DATA):
                raise invalid(
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' "
                    "must have one initialized field\n"
                )
            signature = get(part, "thoughtSignature")
            if signature is not None and not str(signature).startswith(SIGNATURE_PREFIX):
                raise invalid(
                    f"* GenerateContentRequest.contents[{i}].parts[{j}]: Corrupted thought signature.\n"
                )
            if get(part, "thought") is True:
                continue  # the model's own thought summary, given back: not part of the conversation
            if isinstance(get(part, "text"), str):
                text_parts.append(part["text"])
            images += 1 if get(part, "inlineData") or get(part, "fileData") else 0
            if call := get(part, "functionCall"):
                texts.extend([str(call.get("name", "")), dumps(call.get("args", {}))])
            if answer := get(part, "functionResponse"):
                results.append(dumps(answer.get("response", {})))
        text = " ".join(text_parts)
        texts.extend([text, *results])
        if role != "model":
            last_user = text or last_user
            tool_result = results[-1] if results else None
    return tuple(texts), images, last_user, tool_result if get(contents[-1], "role") != "model" else None


def _read_tools(body: JSONObject) -> tuple[tuple[ToolSpec, ...], ToolMode, str | None]:
    tools = [
        ToolSpec(
            decl["name"],
            get(decl, "parametersJsonSchema") or get(decl, "parameters") or {},
            str(get(decl, "description") or ""),
        )
        for tool in get(body, "tools") or ()
        for decl in get(tool, "functionDeclarations") or ()
    ]
    config = get(get(body, "toolConfig"), "functionCallingConfig") or {}
    mode = TOOL_MODES.get(get(config, "mode") or "AUTO")
    if mode is None:
        raise invalid(f"Invalid value at 'tool_config.function_calling_config.mode' ({get(config, 'mode')})")
    allowed = get(config, "allowedFunctionNames") or []
    if mode == "any" and allowed:
        tools = [t for t in tools if t.name in allowed] or tools
    return tuple(tools), mode, None


def _model(call: Call, model_id: str, method: str, kind: str) -> SimModel:
    model = call.provider.model(model_id.removeprefix("models/"))
    if model is None or model.kind != kind:
        raise SimError(
            404,
            f"models/{model_id} is not found for API version v1beta, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    return model


THINKING_MODELS: Final = ("gemini-2.5", "gemini-3")  # upstream id prefixes that think
# This simulator's thought signatures (base64, as Gemini's are): any other in a request is refused.
SIGNATURE_PREFIX: Final = "c2ltc2ln"  # base64 of "simsig"


@frozen
class Thinking:
    """A thinking model's thought summary (shown under `includeThoughts`) and its signature."""

    text: str = ""
    signature: str | None = None
    tokens: int = 0


NO_THINKING: Final = Thinking()


def thinking(
    body: JSONObject, model: SimModel, prompt: Prompt, label: str, answer: Answer, count: Any
) -> Thinking:
    """A model that thinks, asked `includeThoughts` (and not `thinkingBudget: 0`), shows a thought summary
    (the shared `behaviour.thinking_text`) first and signs its answer (the simulated model thinks, as far as
    usage says, only then)."""
    config = get(get(body, "generationConfig") or {}, "thinkingConfig") or {}
    if not model.upstream_id.startswith(THINKING_MODELS) or get(config, "thinkingBudget") == 0:
        return NO_THINKING
    if get(config, "includeThoughts") is not True:
        return NO_THINKING
    text = behaviour.thinking_text(prompt, label)
    signature = base64.b64encode(b"simsig" + bytes.fromhex(answer.digest[:24])).decode()
    return Thinking(text, signature, count(text))


def usage(answer: Answer, thought: Thinking = NO_THINKING) -> JSONObject:
    out: JSONObject = {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": answer.completion_tokens,
        "totalTokenCount": answer.total_tokens + thought.tokens,
    }
    if thought.tokens:
        out["thoughtsTokenCount"] = thought.tokens
    return out


def _parts(answer: Answer, thought: Thinking = NO_THINKING) -> list[JSONObject]:
    lead: list[JSONObject] = [{"text": thought.text, "thought": True}] if thought.text else []
    if answer.tool_call is not None:
        call: JSONObject = {
            "functionCall": {"name": answer.tool_call.name, "args": answer.tool_call.arguments}
        }
        if thought.signature:
            call["thoughtSignature"] = thought.signature
        return [*lead, call]
    text: JSONObject = {"text": answer.text}
    if thought.signature:
        text["thoughtSignature"] = thought.signature
    return [*lead, text]


def render_response(
    answer: Answer,
    model: SimModel,
    parts: list[JSONObject] | None = None,
    last: bool = True,
    thought: Thinking = NO_THINKING,
) -> JSONObject:
    candidate: JSONObject = {"content": {"role": "model", "parts": parts or _parts(answer, thought)}}
    if last:
        candidate["finishReason"] = FINISH[answer.finish]
    candidate["index"] = 0
    out: JSONObject = {"candidates": [candidate]}
    if last:
        out["usageMetadata"] = usage(answer, thought)
    return {**out, "modelVersion": model.upstream_id, "responseId": answer.digest[:22]}


def render_chunks(answer: Answer, model: SimModel, thought: Thinking = NO_THINKING) -> list[JSONObject]:
    """The thought summary first (with `includeThoughts`), then one GenerateContentResponse per word (a
    function call whole); the last carries the signature, the finish and usage."""
    lead = [render_response(answer, model, [{"text": thought.text, "thought": True}], last=False)]
    lead = lead if thought.text else []
    deltas = behaviour.word_deltas(answer.text) if answer.tool_call is None else []
    if not deltas:
        return [
            *lead,
            render_response(answer, model, _parts(answer, replace(thought, text="")), thought=thought),
        ]
    *rest, tail = deltas
    last: JSONObject = {"text": tail}
    if thought.signature:
        last["thoughtSignature"] = thought.signature
    return [
        *lead,
        *(render_response(answer, model, [{"text": d}], last=False) for d in rest),
        render_response(answer, model, [last], thought=thought),
    ]


def _answer(call: Call, body: JSONObject, model_id: str, method: str) -> tuple[Answer, SimModel, Thinking]:
    prompt = parse_request(body)
    model = _model(call, model_id, method, "chat")
    label = f"{call.provider.name}/{model.upstream_id}"
    answer = behaviour.answer(prompt, label, call.count_tokens)
    return answer, model, thinking(body, model, prompt, label, answer, call.count_tokens)


async def generate(call: Call, model_id: str) -> web.StreamResponse:
    answer, model, thought = _answer(call, call.json_object(BAD_JSON), model_id, "generateContent")
    return json_response(render_response(answer, model, thought=thought))


async def stream(call: Call, model_id: str) -> web.StreamResponse:
    answer, model, thought = _answer(call, call.json_object(BAD_JSON), model_id, "streamGenerateContent")
    chunks = render_chunks(answer, model, thought)
    if call.request.query.get("alt") == "sse":
        return await send_events(call, [Event(c) for c in chunks])
    return json_response(chunks)  # without alt=sse, Gemini streams one JSON array


async def count(call: Call, model_id: str) -> web.StreamResponse:
    body = call.json_object(BAD_JSON)
    inner = get(body, "generateContentRequest") or body
    prompt = parse_request({k: v for k, v in inner.items() if k != "model"})
    _model(call, model_id, "countTokens", "chat")
    return json_response({"totalTokens": behaviour.count_prompt(prompt, call.count_tokens)})


def _embedding(call: Call, request: JSON, model: SimModel) -> JSONObject:
    parts = get(get(request, "content"), "parts") or []
    text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict))
    if not text:
        raise invalid("* EmbedContentRequest.content: contents is not specified\n")
    dims = get(request, "outputDimensionality") or behaviour.default_dimensions(model.upstream_id)
    return {"values": behaviour.embed(text, int(dims))}


async def embed_content(call: Call, model_id: str) -> web.StreamResponse:
    model = _model(call, model_id, "embedContent", "embedding")
    return json_response({"embedding": _embedding(call, call.json_object(BAD_JSON), model)})


async def batch_embed(call: Call, model_id: str) -> web.StreamResponse:
    model = _model(call, model_id, "batchEmbedContents", "embedding")
    requests = get(call.json_object(BAD_JSON), "requests")
    if not isinstance(requests, list) or not requests:
        raise invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    return json_response({"embeddings": [_embedding(call, r, model) for r in requests]})


METHODS: Final[Mapping[str, Callable[[Call, str], Awaitable[web.StreamResponse]]]] = MappingProxyType(
    {
        "generateContent": generate,
        "streamGenerateContent": stream,
        "countTokens": count,
        "embedContent": embed_content,
        "batchEmbedContents": batch_embed,
    }
)


async def model_method(call: Call) -> web.StreamResponse:
    """`models/{model}:{method}`: the model id may hold colons of its own, the method follows the last."""
    model_id, _, method = call.tail.rpartition(":")
    handler = METHODS.get(method)
    if not model_id or handler is None:
        raise SimError(404, f"Method not found: models/{call.tail}")
    return await handler(call, model_id)


WIRE: Final = Wire(
    base_path="/v1beta",
    endpoints=(Endpoint("POST", "/models/*", model_method),),
    check_auth=check_auth,
    render_error=render_error,
)
