"""OpenAI's wire format: chat completions (plain and SSE chunks), embeddings, auth and error envelope.

Validation follows what api.openai.com answers (400 with `param`/`code`, 404 `model_not_found`, 401 with no
Bearer key); OpenAI-compatible providers share it, with their few differences in the tables below.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web

import faregate.simulator.behaviour as behaviour
from faregate.simulator.behaviour import Answer, Prompt, ToolMode, ToolSpec
from faregate.simulator.model import (
    JSON,
    Call,
    CountTokens,
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

# Only api.openai.com-like providers reject arguments they do not know; OpenRouter, Ollama and Together
# accept (and ignore) extra fields.
STRICT_LISTINGS: Final = frozenset({"openai"})
NO_AUTH_LISTINGS: Final = frozenset({"ollama"})  # a local Ollama takes no key
CHAT_FIELDS: Final = frozenset(
    {
        *("messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias"),
        *("logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n"),
        *("parallel_tool_calls", "moderation", "prompt_cache_options", "prompt_cache_retention"),
        *("prediction", "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format"),
        *("safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options"),
        *("temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity"),
        *("web_search_options",),
    }
)
ROLES: Final = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FINISH: Final = MappingProxyType(
    {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_call": "tool_calls"}
)
# status -> (type, code), as api.openai.com labels them
ERRORS: Final[Mapping[int, tuple[str, str | None]]] = MappingProxyType(
    {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        403: ("invalid_request_error", "unsupported_country_region_territory"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("requests", "rate_limit_exceeded"),
        500: ("server_error", None),
        503: ("server_error", "service_unavailable"),
    }
)
BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
FINGERPRINT = "faregate-simulator"


def render_error(err: SimError) -> JSONObject:
    default_type, default_code = ERRORS.get(
        err.status, ("server_error" if err.status >= 500 else "invalid_request_error", None)
    )
    code = err.code if err.code is not None else default_code
    return {
        "error": {
            "message": err.message,
            "type": err.error_type or default_type,
            "param": err.param,
            "code": code,
        }
    }


def check_auth(request: web.Request, provider: SimProvider) -> None:
    if provider.listing in NO_AUTH_LISTINGS:
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise SimError(401, NO_KEY if not key else "Incorrect API key provided.")


def invalid(message: str, param: str | None = None, code: str | None = None) -> SimError:
    return SimError(400, message, param=param, code=code)


def find_model(provider: SimProvider, body: JSONObject, kind: str, endpoint: str) -> SimModel:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise invalid("You must provide a model parameter.", "model")
    model = provider.model(name)
    if model is None:
        raise SimError(404, f"The model `{name}` does not exist or you do not have access to it.")
    if model.kind != kind:
        raise SimError(404, f"This is not a {kind} model and thus not supported in the {endpoint} endpoint.")
    if model.responses_only and endpoint != "v1/responses":
        raise SimError(
            404, f"This model is only supported in v1/responses and not in {endpoint}.", param="model"
        )
    return model


def parse_chat(body: JSONObject, provider: SimProvider) -> Prompt:
    """A chat completions request as a `Prompt`, validated as OpenAI validates it."""
    if provider.listing in STRICT_LISTINGS:
        unknown = sorted(set(body) - CHAT_FIELDS)
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {unknown[0]}")
    messages = body.get("messages")
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    texts, images, last_user, tool_result = _read_messages(messages)
    tools, mode, forced = _read_tools(body)
    fmt = body.get("response_format") or {}
    fmt_type = fmt.get("type", "text") if isinstance(fmt, dict) else "text"
    if fmt_type == "json_object" and not any("json" in t.lower() for t in texts):
        raise invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
            "'json_object'.",
            "messages",
        )
    schema = fmt.get("json_schema", {}).get("schema") if fmt_type == "json_schema" else None
    return Prompt(
        texts=texts,
        message_count=len(messages),
        last_user_text=last_user,
        image_count=images,
        tools=tools,
        tools_json=dumps(body["tools"]) if tools else "",
        tool_mode=mode,
        forced_tool=forced,
        tool_result=tool_result,
        json_mode=fmt_type == "json_object",
        json_schema=schema if isinstance(schema, dict) else None,
        max_tokens=_max_tokens(body),
        stop=_stops(body.get("stop")),
        thinks=body.get("reasoning_effort") not in (None, "none"),
    )


def _read_messages(messages: list[JSON]) -> tuple[tuple[str, ...], int, str, str | None]:
    texts: list[str] = []
    images, last_user, pending = 0, "", set[str]()
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]")
        role = m.get("role")
        if role not in ROLES:
            raise invalid(
                f"Invalid value: '{role}'. Supported values are: {', '.join(ROLES)}.", f"messages[{i}].role"
            )
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                raise invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.discard(m["tool_call_id"])
        elif pending:
            raise invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(sorted(pending)),
                "messages",
            )
        content = m.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text")
        images += sum(1 for p in parts if isinstance(p, dict) and p.get("type") == "image_url")
        texts.append(text)
        calls = m.get("tool_calls") if role == "assistant" else None
        for call in calls or ():
            pending.add(call.get("id", ""))
            texts.extend(
                [call.get("function", {}).get("name", ""), call.get("function", {}).get("arguments", "")]
            )
        if role == "user":
            last_user = text
    tool_result = texts[-1] if messages[-1].get("role") == "tool" else None
    return tuple(texts), images, last_user, tool_result


def _read_tools(body: JSONObject) -> tuple[tuple[ToolSpec, ...], ToolMode, str | None]:
    tools: list[ToolSpec] = []
    for i, tool in enumerate(body.get("tools") or ()):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or "name" not in fn:
            raise invalid(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function")
        if not TOOL_NAME.match(str(fn["name"])):
            raise invalid(
                f"Invalid 'tools[{i}].function.name': string does not match pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{i}].function.name",
            )
        tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}, str(fn.get("description") or "")))
    choice = body.get("tool_choice")
    if choice is not None and not tools:
        raise invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        )
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        if name not in {t.name for t in tools}:
            raise invalid(
                f"Invalid value for 'tool_choice': no function named '{name}' in 'tools'.", "tool_choice"
            )
        return tuple(tools), "tool", name
    modes: Mapping[Any, ToolMode] = {None: "auto", "auto": "auto", "none": "none", "required": "any"}
    if choice not in modes:
        raise invalid(
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.", "tool_choice"
        )
    return tuple(tools), modes[choice], None


def _max_tokens(body: JSONObject) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise invalid(
                f"Invalid '{field}': integer below minimum value. Expected a value >= 1.",
                field,
                "integer_below_min_value",
            )
        return value
    return None


def _stops(stop: JSON) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise invalid("Invalid 'stop': expected a string or an array of at most 4 strings.", "stop")
    return tuple(stops)


MAX_N: Final = 128
MAX_TOP_LOGPROBS: Final = 20


def parse_sampling(body: JSONObject) -> tuple[int, int | None]:
    """(`n`, the number of top logprobs per token or None without `logprobs`), validated as OpenAI does."""
    n = body.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise invalid(f"Invalid 'n': expected an integer between 1 and {MAX_N}.", "n", "invalid_value")
    logprobs = body.get("logprobs")
    top = body.get("top_logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise invalid("Invalid type for 'logprobs': expected a boolean.", "logprobs", "invalid_type")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise invalid(
                f"Invalid 'top_logprobs': expected an integer between 0 and {MAX_TOP_LOGPROBS}.",
                "top_logprobs",
                "invalid_value",
            )
        if not logprobs:
            raise invalid(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
                "top_logprobs",
            )
    return n, (top or 0) if logprobs else None


def _logprob(digest: str, i: int, rank: int) -> float:
    """A deterministic log probability for the i-th token's rank-th alternative: below 0, falling by rank."""
    h = int(behaviour.stable_hash(digest, str(i), str(rank))[:6], 16)
    return round(-(rank * 1.5 + (h % 4000) / 1000), 6)


def _entry(token: str, logprob: float) -> JSONObject:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def token_logprobs(tokens: list[str], digest: str, top: int) -> list[JSONObject]:
    """OpenAI's `logprobs.content`: each token with its logprob and bytes, and `top` alternatives (the
    chosen token first, then others less likely)."""
    out = []
    for i, token in enumerate(tokens):
        chosen = _logprob(digest, i, 0)
        others = [f" {behaviour.FILLER[(i * 7 + r) % len(behaviour.FILLER)]}" for r in range(1, top)]
        alternatives = [_entry(token, chosen)] if top else []
        alternatives += [_entry(t, _logprob(digest, i, r + 1) + chosen) for r, t in enumerate(others)]
        out.append({**_entry(token, chosen), "top_logprobs": alternatives})
    return out


def _head(answer: Answer, model: SimModel, obj: str) -> JSONObject:
    return {
        "id": f"chatcmpl-{answer.digest[:29]}",
        "object": obj,
        "created": int(time.time()),
        "model": model.upstream_id,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def usage(answer: Answer) -> JSONObject:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def usage_of(answers: list[Answer]) -> JSONObject:
    """One prompt, n completions: the completions are billed together."""
    out = usage(answers[0])
    completion = sum(a.completion_tokens for a in answers)
    out["completion_tokens"] = completion
    out["total_tokens"] = answers[0].prompt_tokens + completion
    return out


def render_completion(
    answers: list[Answer], model: SimModel, top: int | None = None, count_tokens: CountTokens | None = None
) -> JSONObject:
    choices = [render_choice(i, a, token_logprobs_of(a, top, count_tokens)) for i, a in enumerate(answers)]
    return {**_head(answers[0], model, "chat.completion"), "choices": choices, "usage": usage_of(answers)}


def token_logprobs_of(answer: Answer, top: int | None, count_tokens: CountTokens | None) -> JSONObject | None:
    if top is None or count_tokens is None:
        return None
    text = answer.text if answer.tool_call is None else ""
    content = token_logprobs(behaviour.token_pieces(text, count_tokens), answer.digest, top)
    return {"content": content, "refusal": None}


def render_choice(index: int, answer: Answer, logprobs: JSONObject | None) -> JSONObject:
    message: JSONObject = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.thinking:
        message["reasoning_content"] = (
            answer.thinking
        )  # as DeepSeek and vLLM return a reasoning model's thought
    if answer.tool_call is not None:
        call = answer.tool_call
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{answer.digest[:24]}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
        ]
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": FINISH[answer.finish]}


def render_chunks(
    answers: list[Answer],
    model: SimModel,
    include_usage: bool,
    top: int | None = None,
    count_tokens: CountTokens | None = None,
) -> list[Event]:
    """Per choice: role delta, content or tool-call deltas, the finish chunk; then the usage chunk if
    asked, `[DONE]`. With logprobs, each content chunk is one token and carries that token's logprobs."""
    head = _head(answers[0], model, "chat.completion.chunk")
    events: list[Event] = []
    for index, answer in enumerate(answers):
        events += _choice_chunks(head, index, answer, include_usage, top, count_tokens)
    if include_usage:
        events.append(Event({**head, "choices": [], "usage": usage_of(answers)}))
    return [*events, Event("[DONE]")]


def _choice_chunks(
    head: JSONObject,
    index: int,
    answer: Answer,
    include_usage: bool,
    top: int | None,
    count_tokens: CountTokens | None,
) -> list[Event]:
    def chunk(delta: JSONObject, finish: str | None = None, logprobs: JSONObject | None = None) -> Event:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return Event({**head, "choices": [choice], **({"usage": None} if include_usage else {})})

    call = answer.tool_call
    events = [chunk({"role": "assistant", "content": None if call else "", "refusal": None})]
    events += [chunk({"reasoning_content": d}) for d in behaviour.word_deltas(answer.thinking)]
    if top is not None and count_tokens is not None:
        pieces = behaviour.token_pieces(answer.text, count_tokens)
        entries = token_logprobs(pieces, answer.digest, top)
        events += [
            chunk({"content": p}, logprobs={"content": [e], "refusal": None})
            for p, e in zip(pieces, entries, strict=True)
        ]
    else:
        events += [chunk({"content": d}) for d in behaviour.word_deltas(answer.text)]
    if call is not None:
        first = {"index": 0, "id": f"call_{answer.digest[:24]}", "type": "function"}
        events.append(chunk({"tool_calls": [{**first, "function": {"name": call.name, "arguments": ""}}]}))
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]})
            for frag in behaviour.json_fragments(call.arguments_json)
        ]
    events.append(chunk({}, FINISH[answer.finish]))
    return events


async def chat(call: Call) -> web.StreamResponse:
    body = call.json_object(BAD_JSON)
    prompt = parse_chat(body, call.provider)
    n, top = parse_sampling(body)
    model = find_model(call.provider, body, "chat", "v1/chat/completions")
    label = f"{call.provider.name}/{model.upstream_id}"
    answers = [behaviour.answer(prompt, label, call.count_tokens, i) for i in range(n)]
    if not body.get("stream"):
        return json_response(render_completion(answers, model, top, call.count_tokens))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return await send_events(call, render_chunks(answers, model, include_usage, top, call.count_tokens))


async def embeddings(call: Call) -> web.StreamResponse:
    body = call.json_object(BAD_JSON)
    raw = body.get("input")
    if raw is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    inputs: list[JSON] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    if not inputs or any(i in ("", []) or not isinstance(i, str | list) for i in inputs):
        raise invalid("'$.input' is invalid. Please check the API reference.", "input")
    model = find_model(call.provider, body, "embedding", "v1/embeddings")
    dims = body.get("dimensions") or behaviour.default_dimensions(model.upstream_id)
    if not isinstance(dims, int) or not 1 <= dims <= 3072:
        raise invalid("Invalid 'dimensions': expected an integer between 1 and 3072.", "dimensions")
    as_b64 = body.get("encoding_format", "float") == "base64"
    data, tokens = [], 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += call.count_tokens(item) if isinstance(item, str) else len(item)
        vector = behaviour.embed(text, dims)
        value: JSON = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_b64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    result = {"object": "list", "data": data, "model": model.upstream_id}
    return json_response({**result, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


WIRE: Final = Wire(
    base_path="/v1",
    endpoints=(Endpoint("POST", "/chat/completions", chat), Endpoint("POST", "/embeddings", embeddings)),
    check_auth=check_auth,
    render_error=render_error,
)
