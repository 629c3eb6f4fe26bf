"""A client's `POST /v1/chat/completions` body → canonical `ChatRequest`, validated as OpenAI does.

Errors are `InvalidRequest` with OpenAI's wording, code and `param` path; faregate's routing fields are
split off (never forwarded); every other unknown field is kept in `extra`, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    ChatRequest,
    ImagePart,
    JSONObject,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS, check_routing
from faregate.providers.openai.thoughts import parse_thoughts
from faregate.providers.openai.validate import (
    bad_type,
    bad_value,
    invalid,
    missing,
    number_in,
    optional,
    positive_int,
    required,
    wrong,
)
from faregate.providers.reasoning import parse_effort, parse_openrouter
from faregate.providers.wire import split_data_url

ROLES: Final[Mapping[str, Role]] = MappingProxyType(
    {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
)
TOOL_CHOICE_MODES: Final = ("auto", "none", "required")
RESPONSE_FORMATS: Final = ("text", "json_object", "json_schema")
TOOL_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_STOP: Final = 4

# Fields with a canonical meaning; everything else (seed, logprobs, n, ...) goes to `extra`.
CANONICAL_FIELDS: Final = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "response_format", "stream", "stream_options",
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "user",
        "top_k", "reasoning_effort", "reasoning", "include_reasoning",
    }
)  # fmt: skip


# --- messages -------------------------------------------------------------------------------------


def parse_image(part: Mapping[str, Any], at: str) -> ImagePart:
    image = required(part, "image_url", f"{at}.image_url", dict)
    url = required(image, "url", f"{at}.image_url.url", str)
    detail = optional(image, "detail", f"{at}.image_url.detail", str)
    inline = split_data_url(url)
    if inline is None:
        return ImagePart(url=url, detail=detail)
    return ImagePart(data_b64=inline[1], media_type=inline[0], detail=detail)


def parse_part(part: object, at: str, role: str) -> Part:
    if not isinstance(part, dict):
        raise bad_type(at, "an object", part)
    kind = part.get("type")
    if kind == "text":
        return TextPart(required(part, "text", f"{at}.text", str))
    if kind == "image_url":
        if role != "user":
            raise invalid(at, f"image content parts are only allowed in 'user' messages, not '{role}'.")
        return parse_image(part, at)
    if kind is None:
        raise missing(f"{at}.type")
    why = f"unsupported content part type {kind!r} (supported: 'text', 'image_url')."
    raise invalid(f"{at}.type", why)


def parse_content(message: Mapping[str, Any], at: str, role: str, optional: bool) -> tuple[Part, ...]:
    """A string, a list of parts, or null where OpenAI allows it (an assistant turn with tool calls, whose
    `""` many clients send for null: kept empty, since other formats reject empty text blocks)."""
    content = message.get("content")
    if isinstance(content, str):
        return (TextPart(content),) if content or not optional else ()
    if content is None and (optional or "content" not in message):
        if optional:
            return ()
        raise missing(f"{at}.content")
    if not isinstance(content, list):
        raise bad_type(f"{at}.content", "one of a string or array of objects", content)
    if not content and not optional:
        raise invalid(f"{at}.content", "empty array. Expected an array with minimum length 1.", "empty_array")
    return tuple(parse_part(p, f"{at}.content[{i}]", role) for i, p in enumerate(content))


def parse_tool_call(call: object, at: str) -> ToolCall:
    if not isinstance(call, dict):
        raise bad_type(at, "an object", call)
    kind = call.get("type", "function")
    if kind != "function":
        raise bad_value(f"{at}.type", kind, ("function",))
    call_id = required(call, "id", f"{at}.id", str)
    fn = required(call, "function", f"{at}.function", dict)
    name = required(fn, "name", f"{at}.function.name", str)
    return ToolCall(call_id, name, required(fn, "arguments", f"{at}.function.arguments", str))


def parse_tool_calls(message: Mapping[str, Any], at: str) -> tuple[ToolCall, ...]:
    calls = optional(message, "tool_calls", f"{at}.tool_calls", list) or ()
    return tuple(parse_tool_call(c, f"{at}.tool_calls[{i}]") for i, c in enumerate(calls))


def parse_role(message: Mapping[str, Any], at: str) -> Role:
    role = required(message, "role", f"{at}.role", str)
    canonical = ROLES.get(role)
    if canonical is not None:
        return canonical
    if role == "function":
        raise invalid(f"{at}.role", "the legacy 'function' role is not supported; send 'tool' messages.")
    raise bad_value(f"{at}.role", role, tuple(ROLES))


def parse_message(message: object, at: str) -> Message:
    if not isinstance(message, dict):
        raise bad_type(at, "an object", message)
    role = parse_role(message, at)
    tool_calls = parse_tool_calls(message, at) if role == "assistant" else ()
    tool_call_id = required(message, "tool_call_id", f"{at}.tool_call_id", str) if role == "tool" else None
    return Message(
        role=role,
        content=parse_content(message, at, message["role"], optional=bool(tool_calls)),
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        name=optional(message, "name", f"{at}.name", str),
        thoughts=parse_thoughts(message, signed=True) if role == "assistant" else (),
    )


def parse_messages(value: object) -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise wrong("messages", "an array", value)
    if not value:
        raise invalid("messages", "empty array. Expected an array with minimum length 1.", "empty_array")
    return tuple(parse_message(m, f"messages[{i}]") for i, m in enumerate(value))


# --- tools, formats, options ----------------------------------------------------------------------


def parse_tool(tool: object, at: str) -> Tool:
    if not isinstance(tool, dict):
        raise bad_type(at, "an object", tool)
    if tool.get("type") != "function":
        raise bad_value(f"{at}.type", tool.get("type"), ("function",))
    return function_tool(required(tool, "function", f"{at}.function", dict), f"{at}.function")


def function_tool(fn: dict[str, Any], at: str) -> Tool:
    """A function's `name`, `description` and `parameters`, read from `fn` (found at `at`): chat
    completions nest them under `function`, the Responses API keeps them on the tool itself."""
    name = fn.get("name")
    if name is None:
        raise missing(f"{at}.name")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise invalid(f"{at}.name", "string does not match pattern. Expected ^[a-zA-Z0-9_-]{1,64}$.")
    description = optional(fn, "description", f"{at}.description", str)
    parameters = optional(fn, "parameters", f"{at}.parameters", dict)
    return Tool(name, description, parameters if parameters is not None else {})


def parse_tools(value: object, parse: Callable[[object, str], Tool] = parse_tool) -> tuple[Tool, ...]:
    """The `tools` array, each element read by `parse` (the inbound format's own tool shape)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad_type("tools", "an array", value)
    return tuple(parse(t, f"tools[{i}]") for i, t in enumerate(value))


def parse_tool_choice(value: object, tools: tuple[Tool, ...]) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise bad_value("tool_choice", value, TOOL_CHOICE_MODES)
        choice = ToolChoice(value)  # type: ignore[arg-type]  # narrowed by the membership test
    elif isinstance(value, dict):
        fn = value.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if value.get("type") != "function" or not isinstance(name, str):
            raise invalid("tool_choice", 'expected {"type": "function", "function": {"name": ...}}.')
        if name not in {t.name for t in tools}:
            raise invalid("tool_choice", f"no tool named {name!r} in 'tools'.")
        choice = ToolChoice("tool", name)
    else:
        raise bad_type("tool_choice", "one of a string or object", value)
    if not tools and choice.mode in ("required", "tool"):
        raise invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")
    return choice if tools else None  # "auto"/"none" without tools mean nothing: not forwarded


def parse_response_format(value: object) -> ResponseFormat | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_type("response_format", "an object", value)
    kind = required(value, "type", "response_format.type", str)
    if kind not in RESPONSE_FORMATS:
        raise bad_value("response_format.type", kind, RESPONSE_FORMATS)
    if kind == "json_schema":
        schema = required(value, "json_schema", "response_format.json_schema", dict)
        required(schema, "name", "response_format.json_schema.name", str)
    return ResponseFormat.from_openai(value)


def parse_stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """(stream, include_usage). OpenAI refuses `stream_options` on a non-streaming request."""
    stream = bool(optional(body, "stream", "stream", bool))
    options = optional(body, "stream_options", "stream_options", dict)
    if options is None:
        return stream, False
    if not stream:
        raise invalid("stream_options", "only allowed when 'stream' is enabled.")
    return stream, bool(optional(options, "include_usage", "stream_options.include_usage", bool))


def parse_stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad_type("stop", "one of a string or array of strings", value)
    if len(value) > MAX_STOP:
        raise invalid(
            "stop", f"array too long. Expected at most {MAX_STOP} sequences.", "array_above_max_length"
        )
    return tuple(value)


# --- the body -------------------------------------------------------------------------------------


def parse_reasoning(body: Mapping[str, Any]) -> Reasoning | None:
    """OpenAI's `reasoning_effort`, or OpenRouter's `reasoning` object (which wins when both are sent), and
    OpenRouter's legacy `include_reasoning`: `true` is `reasoning: {}` (OpenRouter's reasoning-tokens
    guide); `false` hides the reasoning of a request that asks for some (`exclude: true`), and alone asks
    for none: it never turns thinking on (a client that says it wants no reasoning would otherwise get a
    thinking budget billed on a model that thinks only when asked). A `reasoning.exclude` the client sent
    wins over it."""
    reasoning = parse_openrouter(body.get("reasoning"))
    effort = body.get("reasoning_effort")
    if reasoning is None and effort is not None:
        reasoning = Reasoning(effort=parse_effort(effort, "reasoning_effort"))
    include = optional(body, "include_reasoning", "include_reasoning", bool)
    if include is None:
        return reasoning
    if reasoning is None:
        return Reasoning() if include else None
    if (body.get("reasoning") or {}).get("exclude") is not None:
        return reasoning
    return replace(reasoning, include_thoughts=include)


def parse_top_k(body: Mapping[str, Any]) -> int | None:
    """`top_k` (OpenRouter's, and Anthropic's and Gemini's): rendered where the upstream takes it."""
    value = body.get("top_k")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid("top_k", "expected a non-negative integer.")
    return value


def split_fields(body: Mapping[str, Any]) -> tuple[JSONObject, JSONObject]:
    """(routing fields, extra fields): faregate's own are type-checked, unknown ones kept as sent."""
    routing: JSONObject = {}
    extra: JSONObject = {}
    for key, value in body.items():
        if key in CANONICAL_FIELDS:
            continue
        if key not in ROUTING_FIELDS:
            extra[key] = value
        elif value is not None:
            expected = check_routing(key, value)
            if expected is not None:
                raise bad_type(key, expected, value)
            routing[key] = value
    return routing, extra


def _usage_include(routing: Mapping[str, Any]) -> bool:
    """OpenRouter's `usage: {include: true}`: a stream then ends with its usage chunk (with the cost)."""
    usage = routing.get("usage")
    return isinstance(usage, dict) and usage.get("include") is True


def parse_chat(body: object) -> tuple[ChatRequest, JSONObject]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    routing, extra = split_fields(body)
    messages = parse_messages(body.get("messages"))
    tools = parse_tools(body.get("tools"))
    stream, include_usage = parse_stream(body)
    include_usage = include_usage or (stream and _usage_include(routing))
    max_tokens = positive_int(body, "max_tokens")
    max_completion_tokens = positive_int(body, "max_completion_tokens")
    if max_completion_tokens is not None:  # the newer name wins, and is forwarded as such to OpenAI upstreams
        max_tokens = extra["max_completion_tokens"] = max_completion_tokens
    req = ChatRequest(
        model=optional(body, "model", "model", str) or None,
        messages=messages,
        tools=tools,
        tool_choice=parse_tool_choice(body.get("tool_choice"), tools),
        response_format=parse_response_format(body.get("response_format")),
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        temperature=number_in(body, "temperature", 0.0, 2.0),
        top_p=number_in(body, "top_p", 0.0, 1.0),
        stop=parse_stop(body.get("stop")),
        user=optional(body, "user", "user", str),
        top_k=parse_top_k(body),
        reasoning=parse_reasoning(body),
        source_api="openai",
        extra=extra,
    )
    return req, routing
