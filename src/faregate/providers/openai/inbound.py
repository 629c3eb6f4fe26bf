"""A client's `POST /v1/chat/completions` body → canonical `ChatRequest`, validated as OpenAI does.

Errors are `InvalidRequest` with OpenAI's wording, code and `param` path; faregate's routing fields are
split off (never forwarded); every other unknown field is kept in `extra`, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    ChatRequest,
    ImagePart,
    JSONObject,
    Message,
    Part,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from faregate.errors import InvalidRequest
from faregate.providers.wire import json_type_name, split_data_url

ROLES: Final[Mapping[str, Role]] = MappingProxyType(
    {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
)
TOOL_CHOICE_MODES: Final = ("auto", "none", "required")
RESPONSE_FORMATS: Final = ("text", "json_object", "json_schema")
TOOL_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_STOP: Final = 4

# faregate's own fields (OpenRouter's names): consumed by routing, never sent upstream. Only their
# top-level type is checked here; the routing layer parses them.
ROUTING_FIELDS: Final[Mapping[str, tuple[Callable[[object], bool], str]]] = MappingProxyType(
    {
        "provider": (lambda v: isinstance(v, dict), "an object"),
        "models": (
            lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
            "an array of strings",
        ),
        "route": (lambda v: isinstance(v, str), "a string"),
    }
)
# Fields with a canonical meaning; everything else (seed, logprobs, n, ...) goes to `extra`.
CANONICAL_FIELDS: Final = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "response_format", "stream", "stream_options",
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "user",
    }
)  # fmt: skip


# --- OpenAI-worded errors -------------------------------------------------------------------------


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is a required property", param=param, code="missing_required_parameter")


def bad_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def bad_value(param: str, value: object, supported: tuple[str, ...]) -> InvalidRequest:
    names = ", ".join(f"'{s}'" for s in supported)
    return InvalidRequest(
        f"Invalid value for '{param}': {value!r}. Supported values are: {names}.",
        param=param,
        code="invalid_value",
    )


def invalid(param: str, why: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {why}", param=param, code=code)


# --- scalar fields --------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def opt_str(body: Mapping[str, Any], key: str, param: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad_type(param, "a string", value)


def opt_bool(body: Mapping[str, Any], key: str, param: str) -> bool:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise bad_type(param, "a boolean", value)


def opt_number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise bad_type(key, "a decimal", value)
    if value < low:
        raise invalid(
            key, f"expected a value >= {low:g}, but got {value} instead.", "decimal_below_min_value"
        )
    if value > high:
        raise invalid(
            key, f"expected a value <= {high:g}, but got {value} instead.", "decimal_above_max_value"
        )
    return float(value)


def opt_positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_type(key, "an integer", value)
    if value < 1:
        raise invalid(key, f"expected a value >= 1, but got {value} instead.", "integer_below_min_value")
    return value


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


# --- messages -------------------------------------------------------------------------------------


def parse_image(part: Mapping[str, Any], at: str) -> ImagePart:
    image = part.get("image_url")
    if image is None:
        raise missing(f"{at}.image_url")
    if not isinstance(image, dict):
        raise bad_type(f"{at}.image_url", "an object", image)
    url = image.get("url")
    if url is None:
        raise missing(f"{at}.image_url.url")
    if not isinstance(url, str):
        raise bad_type(f"{at}.image_url.url", "a string", url)
    detail = opt_str(image, "detail", f"{at}.image_url.detail")
    inline = split_data_url(url)
    if inline is None:
        return ImagePart(url=url, detail=detail)
    return ImagePart(data_b64=inline[1], media_type=inline[0], detail=detail)


def parse_part(part: object, at: str, role: str) -> Part:
    if not isinstance(part, dict):
        raise bad_type(at, "an object", part)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise missing(f"{at}.text") if text is None else bad_type(f"{at}.text", "a string", text)
        return TextPart(text)
    if kind == "image_url":
        if role != "user":
            raise invalid(at, f"image content parts are only allowed in 'user' messages, not '{role}'.")
        return parse_image(part, at)
    if kind is None:
        raise missing(f"{at}.type")
    raise InvalidRequest(
        f"Invalid '{at}.type': unsupported content part type {kind!r} (supported: 'text', 'image_url').",
        param=f"{at}.type",
        code="invalid_value",
    )


def parse_content(message: Mapping[str, Any], at: str, role: str, optional: bool) -> tuple[Part, ...]:
    """A string, a list of parts, or null where OpenAI allows it (an assistant turn with tool calls)."""
    content = message.get("content")
    if isinstance(content, str):
        return (TextPart(content),)
    if content is None and optional:
        return ()
    if content is None and "content" not in message:
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
    call_id = call.get("id")
    if not isinstance(call_id, str):
        raise missing(f"{at}.id") if call_id is None else bad_type(f"{at}.id", "a string", call_id)
    fn = call.get("function")
    if not isinstance(fn, dict):
        raise missing(f"{at}.function") if fn is None else bad_type(f"{at}.function", "an object", fn)
    name = fn.get("name")
    if not isinstance(name, str):
        raise (
            missing(f"{at}.function.name")
            if name is None
            else bad_type(f"{at}.function.name", "a string", name)
        )
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        if arguments is None:
            raise missing(f"{at}.function.arguments")
        raise bad_type(f"{at}.function.arguments", "a string", arguments)
    return ToolCall(call_id, name, arguments)


def parse_tool_calls(value: object, at: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad_type(f"{at}.tool_calls", "an array", value)
    return tuple(parse_tool_call(c, f"{at}.tool_calls[{i}]") for i, c in enumerate(value))


def parse_role(message: Mapping[str, Any], at: str) -> Role:
    role = message.get("role")
    if role is None:
        raise missing(f"{at}.role")
    canonical = ROLES.get(role) if isinstance(role, str) else None
    if canonical is not None:
        return canonical
    if role == "function":
        raise invalid(f"{at}.role", "the legacy 'function' role is not supported; send 'tool' messages.")
    raise bad_value(f"{at}.role", role, tuple(ROLES))


def parse_message(message: object, at: str) -> Message:
    if not isinstance(message, dict):
        raise bad_type(at, "an object", message)
    role = parse_role(message, at)
    tool_calls = parse_tool_calls(message.get("tool_calls"), at) if role == "assistant" else ()
    tool_call_id = None
    if role == "tool":
        tool_call_id = opt_str(message, "tool_call_id", f"{at}.tool_call_id")
        if tool_call_id is None:
            raise missing(f"{at}.tool_call_id")
    return Message(
        role=role,
        content=parse_content(message, at, message["role"], optional=bool(tool_calls)),
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        name=opt_str(message, "name", f"{at}.name"),
    )


def parse_messages(value: object) -> tuple[Message, ...]:
    if value is None:
        raise missing("messages")
    if not isinstance(value, list):
        raise bad_type("messages", "an array", value)
    if not value:
        raise invalid("messages", "empty array. Expected an array with minimum length 1.", "empty_array")
    return tuple(parse_message(m, f"messages[{i}]") for i, m in enumerate(value))


# --- tools and formats ----------------------------------------------------------------------------


def parse_tool(tool: object, at: str) -> Tool:
    if not isinstance(tool, dict):
        raise bad_type(at, "an object", tool)
    if tool.get("type") != "function":
        raise bad_value(f"{at}.type", tool.get("type"), ("function",))
    fn = tool.get("function")
    if not isinstance(fn, dict):
        raise missing(f"{at}.function") if fn is None else bad_type(f"{at}.function", "an object", fn)
    name = fn.get("name")
    if name is None:
        raise missing(f"{at}.function.name")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise invalid(f"{at}.function.name", "string does not match pattern. Expected ^[a-zA-Z0-9_-]{1,64}$.")
    parameters = fn.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_type(f"{at}.function.parameters", "an object", parameters)
    description = opt_str(fn, "description", f"{at}.function.description")
    return Tool(name, description, parameters if parameters is not None else {})


def parse_tools(value: object) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad_type("tools", "an array", value)
    return tuple(parse_tool(t, f"tools[{i}]") for i, t in enumerate(value))


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


def parse_response_format(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_type("response_format", "an object", value)
    kind = value.get("type")
    if kind not in RESPONSE_FORMATS:
        raise (
            missing("response_format.type")
            if kind is None
            else bad_value("response_format.type", kind, RESPONSE_FORMATS)
        )
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict):
            raise (
                missing("response_format.json_schema")
                if schema is None
                else bad_type("response_format.json_schema", "an object", schema)
            )
        if not isinstance(schema.get("name"), str):
            raise missing("response_format.json_schema.name")
    return value


def parse_stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """(stream, include_usage). OpenAI refuses `stream_options` on a non-streaming request."""
    stream = opt_bool(body, "stream", "stream")
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise bad_type("stream_options", "an object", options)
    if not stream:
        raise invalid("stream_options", "only allowed when 'stream' is enabled.")
    return stream, opt_bool(options, "include_usage", "stream_options.include_usage")


# --- the body -------------------------------------------------------------------------------------


def split_fields(body: Mapping[str, Any]) -> tuple[JSONObject, JSONObject]:
    """(routing fields, extra fields): faregate's own are type-checked, unknown ones kept as sent."""
    routing: JSONObject = {}
    extra: JSONObject = {}
    for key, value in body.items():
        if key in CANONICAL_FIELDS:
            continue
        check = ROUTING_FIELDS.get(key)
        if check is None:
            extra[key] = value
        elif value is not None:
            if not check[0](value):
                raise bad_type(key, check[1], value)
            routing[key] = value
    if "max_completion_tokens" in body:
        extra["max_completion_tokens"] = body["max_completion_tokens"]  # forwarded under its own name
    return routing, extra


def parse_chat(body: object) -> tuple[ChatRequest, JSONObject]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    routing, extra = split_fields(body)
    messages = parse_messages(body.get("messages"))
    tools = parse_tools(body.get("tools"))
    stream, include_usage = parse_stream(body)
    max_completion_tokens = opt_positive_int(body, "max_completion_tokens")
    if max_completion_tokens is None:
        extra.pop("max_completion_tokens", None)  # an explicit null says nothing
    max_tokens = opt_positive_int(body, "max_tokens")
    req = ChatRequest(
        model=opt_str(body, "model", "model") or None,
        messages=messages,
        tools=tools,
        tool_choice=parse_tool_choice(body.get("tool_choice"), tools),
        response_format=parse_response_format(body.get("response_format")),
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_completion_tokens if max_completion_tokens is not None else max_tokens,
        temperature=opt_number(body, "temperature", 0.0, 2.0),
        top_p=opt_number(body, "top_p", 0.0, 1.0),
        stop=parse_stop(body.get("stop")),
        user=opt_str(body, "user", "user"),
        source_api="openai",
        extra=extra,
    )
    return req, routing
