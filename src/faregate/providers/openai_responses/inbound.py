"""A client's `POST /v1/responses` body → a canonical `ChatRequest` plus what the Responses API keeps
around it (instructions, `store`, `previous_response_id`, the fields a response object echoes).

Validated as OpenAI validates it (message wording, `code`, `param` path). A built-in tool (`web_search`,
`file_search`, ...) runs at the provider: kept as sent, it restricts the plan to Responses channels. Fields without a canonical meaning
(`include`, `service_tier`, `prompt_cache_key`, ...) travel in `extra`, forwarded only to a Responses upstream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    ChatRequest,
    JSONObject,
    Message,
    Reasoning,
    ReasoningEffort,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
)
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS
from faregate.providers.openai.inbound import function_tool
from faregate.providers.openai.validate import (
    bad_type,
    bad_value,
    invalid,
    missing,
    number_in,
    optional,
    positive_int,
    required,
)
from faregate.providers.openai_responses.items import parse_items
from faregate.providers.openai_responses.reasoning import wants_encrypted
from faregate.routing.transforms import MIDDLE_OUT
from faregate.values import frozen

SOURCE_API: Final = "openai-responses"
TOOL_CHOICE_MODES: Final = ("auto", "none", "required")
TEXT_FORMATS: Final = ("text", "json_object", "json_schema")
REASONING_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh")
# OpenAI's efforts on the canonical scale (`xhigh` is the top of it: high).
REASONING_MAP: Final[Mapping[str, ReasoningEffort]] = MappingProxyType(
    {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
)
TRUNCATION: Final = ("auto", "disabled")
SUMMARIES: Final = ("auto", "concise", "detailed")
MAX_METADATA: Final = 16
# Fields the gateway reads itself; every other field goes to `extra` as sent.
CANONICAL_FIELDS: Final = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
        "max_output_tokens", "temperature", "top_p", "reasoning", "metadata", "user", "truncation",
        "store", "stream", "previous_response_id", "include", "stream_options",
    }
)  # fmt: skip
# Fields asking for something faregate does not do: refused, never silently ignored.
UNSUPPORTED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "background": "background responses are not supported by faregate: send the request without it.",
        "conversation": "the Conversations API is not supported by faregate: use previous_response_id.",
        "prompt": "stored prompt templates are not supported by faregate: send instructions and input.",
    }
)


@frozen
class ResponsesRequest:
    """One parsed `POST /v1/responses`: the new turn as canonical messages (the stored history of
    `previous_response_id` is prepended by the server), and the Responses-only fields."""

    chat: ChatRequest
    routing: JSONObject
    input_items: tuple[JSONObject, ...]  # this request's input, as items with ids (for input_items)
    instructions: str | None
    previous_response_id: str | None
    store: bool
    echo: Mapping[str, Any] = field(default_factory=dict)  # the request fields a response object repeats
    summaries: bool = False  # `reasoning.summary` asked: reasoning items show their text
    encrypted: bool = False  # `include: ["reasoning.encrypted_content"]`

    def with_history(self, history: tuple[Message, ...]) -> ChatRequest:
        """The upstream request: instructions first, then the earlier conversation, then this input."""
        system = (Message("system", (TextPart(self.instructions),)),) if self.instructions else ()
        turn = self.chat.messages[len(system) :]
        return replace(self.chat, messages=(*system, *history, *turn))


def new_item_id(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


# --- fields ---------------------------------------------------------------------------------------


def normalize_input(value: object) -> list[JSONObject]:
    """`input` as a list of items: a string is one user message; every item gets an id and a type."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise bad_type("input", "one of a string or array of objects", value)
    items: list[JSONObject] = []
    for i, raw in enumerate(value):
        if not isinstance(raw, dict):
            raise bad_type(f"input[{i}]", "an object", raw)
        item = dict(raw)
        if item.get("type") is None and "role" in item:
            item["type"] = "message"
        if item.get("type") == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        prefix = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_"}
        if "id" not in item and item.get("type") in prefix:
            item["id"] = new_item_id(prefix[str(item["type"])])
        items.append(item)
    return items


def split_tools(value: object) -> tuple[tuple[Tool, ...], tuple[JSONObject, ...]]:
    """(function tools, built-in tools). A built-in tool (`web_search`, `file_search`, ...) runs at the
    provider: it is kept as sent, and routing keeps the request on a channel that speaks the Responses API."""
    if value is None:
        return (), ()
    if not isinstance(value, list):
        raise bad_type("tools", "an array", value)
    functions: list[Tool] = []
    hosted: list[JSONObject] = []
    for i, tool in enumerate(value):
        at = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise bad_type(at, "an object", tool)
        kind = tool.get("type")
        if kind == "function":
            functions.append(function_tool(tool, at))
        elif isinstance(kind, str) and kind:
            hosted.append(dict(tool))
        else:
            raise missing(f"{at}.type") if kind is None else bad_type(f"{at}.type", "a string", kind)
    return tuple(functions), tuple(hosted)


def parse_tool_choice(
    value: object, tools: tuple[Tool, ...], hosted: tuple[JSONObject, ...] = ()
) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise bad_value("tool_choice", value, TOOL_CHOICE_MODES)
        choice = ToolChoice(value)  # type: ignore[arg-type]  # narrowed by the membership test
    elif isinstance(value, dict):
        kind = value.get("type")
        if kind != "function":
            raise invalid(
                "tool_choice.type",
                f"tool_choice {kind!r} is not supported by faregate: use auto, none, required or "
                '{"type": "function", "name": ...}.',
            )
        name = required(value, "name", "tool_choice.name", str)
        if name not in {t.name for t in tools}:
            raise invalid("tool_choice", f"no tool named {name!r} in 'tools'.")
        choice = ToolChoice("tool", name)
    else:
        raise bad_type("tool_choice", "one of a string or object", value)
    if not tools and not hosted and choice.mode in ("required", "tool"):
        raise invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")
    return choice if tools or hosted else None


def parse_text_format(value: object) -> ResponseFormat | None:
    """`text.format` → the canonical `ResponseFormat`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_type("text", "an object", value)
    fmt = optional(value, "format", "text.format", dict)
    if fmt is None:
        return None
    kind = required(fmt, "type", "text.format.type", str)
    if kind not in TEXT_FORMATS:
        raise bad_value("text.format.type", kind, TEXT_FORMATS)
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    schema = required(fmt, "schema", "text.format.schema", dict)
    return ResponseFormat(
        "json_schema",
        required(fmt, "name", "text.format.name", str),
        schema,
        optional(fmt, "strict", "text.format.strict", bool),
        optional(fmt, "description", "text.format.description", str),
    )


def parse_reasoning(value: object) -> tuple[str | None, str | None]:
    """(`reasoning.effort`, `reasoning.summary`; the deprecated `generate_summary` read as `summary`)."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise bad_type("reasoning", "an object", value)
    effort = optional(value, "effort", "reasoning.effort", str)
    if effort is not None and effort not in REASONING_EFFORTS:
        raise bad_value("reasoning.effort", effort, REASONING_EFFORTS)
    name = "summary" if value.get("summary") is not None else "generate_summary"
    summary = optional(value, name, f"reasoning.{name}", str)
    if summary is not None and summary not in SUMMARIES:
        raise bad_value(f"reasoning.{name}", summary, SUMMARIES)
    return effort, summary


def parse_metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_type("metadata", "an object", value)
    if len(value) > MAX_METADATA:
        raise invalid("metadata", f"too many keys: at most {MAX_METADATA}.", "object_above_max_properties")
    for key, v in value.items():
        if not isinstance(v, str):
            raise bad_type(f"metadata.{key}", "a string", v)
    return dict(value)


def split_fields(body: Mapping[str, Any]) -> tuple[JSONObject, JSONObject]:
    """(routing fields, extra fields): faregate's own are type-checked, unknown ones kept as sent."""
    routing: JSONObject = {}
    extra: JSONObject = {}
    for key, value in body.items():
        if key in CANONICAL_FIELDS or value is None:
            continue
        if key in UNSUPPORTED and value is not False:
            raise invalid(key, UNSUPPORTED[key], "unsupported_parameter")
        check: tuple[Callable[[object], bool], str] | None = ROUTING_FIELDS.get(key)
        if check is None:
            if key not in UNSUPPORTED:
                extra[key] = value
        else:
            if not check[0](value):
                raise bad_type(key, check[1], value)
            routing[key] = value
    return routing, extra


def with_middle_out(transforms: object) -> list[str]:
    """`truncation: "auto"` is OpenAI's "drop input items from the middle of the conversation until it fits
    the context window": faregate's middle-out transform, applied per channel."""
    names = [str(t) for t in transforms] if isinstance(transforms, list) else []
    return names if MIDDLE_OUT in names else [*names, MIDDLE_OUT]


# --- the body -------------------------------------------------------------------------------------


def parse_responses(body: object) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    routing, extra = split_fields(body)
    previous = optional(body, "previous_response_id", "previous_response_id", str) or None
    raw_input = body.get("input")
    if raw_input is None:
        if previous is None:
            raise missing("input")
        raw_input = []
    items = normalize_input(raw_input)
    instructions = optional(body, "instructions", "instructions", str) or None
    system = (Message("system", (TextPart(instructions),)),) if instructions else ()
    messages = (*system, *parse_items(items))
    tools, hosted = split_tools(body.get("tools"))
    raw_choice = body.get("tool_choice")
    if isinstance(raw_choice, dict) and raw_choice.get("type") in {t["type"] for t in hosted}:
        extra["tool_choice"] = raw_choice  # a built-in tool forced: only a Responses upstream reads it
        raw_choice = None
    choice = parse_tool_choice(raw_choice, tools, hosted)
    parallel = optional(body, "parallel_tool_calls", "parallel_tool_calls", bool)
    if parallel is False:
        extra["parallel_tool_calls"] = False  # OpenAI's name; each adapter maps it to its own field
    stream = bool(optional(body, "stream", "stream", bool))
    store = optional(body, "store", "store", bool)
    truncation = optional(body, "truncation", "truncation", str)
    if truncation is not None and truncation not in TRUNCATION:
        raise bad_value("truncation", truncation, TRUNCATION)
    if truncation == "auto":
        routing["transforms"] = with_middle_out(routing.get("transforms"))
    include = optional(body, "include", "include", list)
    if include:
        extra["include"] = include
    if optional(body, "stream_options", "stream_options", dict) is not None and not stream:
        raise invalid("stream_options", "only allowed when 'stream' is enabled.")
    effort, summary = parse_reasoning(body.get("reasoning"))
    metadata = parse_metadata(body.get("metadata"))
    max_output = positive_int(body, "max_output_tokens")
    temperature = number_in(body, "temperature", 0.0, 2.0)
    top_p = number_in(body, "top_p", 0.0, 1.0)
    user = optional(body, "user", "user", str)
    text = body.get("text")
    chat = ChatRequest(
        model=optional(body, "model", "model", str) or None,
        messages=messages,
        tools=tools,
        tool_choice=choice,
        hosted_tools=hosted,
        response_format=parse_text_format(text),
        stream=stream,
        include_usage=True,
        max_tokens=max_output,
        temperature=temperature,
        top_p=top_p,
        user=user,
        reasoning=reasoning_of(effort, summary),
        source_api=SOURCE_API,
        extra=MappingProxyType(extra),
    )
    if not chat.messages and previous is None:
        raise invalid("input", "empty array. Expected an array with minimum length 1.", "empty_array")
    echo: JSONObject = {
        "instructions": instructions,
        "max_output_tokens": max_output,
        "metadata": metadata,
        "parallel_tool_calls": parallel is not False,
        "previous_response_id": previous,
        "reasoning": {"effort": effort, "summary": summary},
        "store": store is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "text": text if isinstance(text, dict) and text.get("format") else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") if choice is not None or "tool_choice" in extra else "auto",
        "tools": [_echo_tool(t) for t in body.get("tools") or ()],
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": truncation or "disabled",
        "user": user,
    }
    return ResponsesRequest(
        chat=chat,
        routing=routing,
        input_items=tuple(items),
        instructions=instructions,
        previous_response_id=previous,
        store=store is not False,
        echo=MappingProxyType(echo),
        summaries=summary is not None,
        encrypted=wants_encrypted(include),
    )


def reasoning_of(effort: str | None, summary: str | None) -> Reasoning | None:
    """The canonical reasoning control: the effort, and whether the client wants the thinking text back
    (a summary asked for). A summary alone asks the model to reason as it decides."""
    if effort is None and summary is None:
        return None
    return Reasoning(
        effort=None if effort is None else REASONING_MAP[effort], include_thoughts=summary is not None
    )


def _echo_tool(tool: Mapping[str, Any]) -> JSONObject:
    if tool.get("type") != "function":
        return dict(tool)  # a built-in tool, as sent
    return {"description": None, "parameters": None, "strict": True, **tool}
