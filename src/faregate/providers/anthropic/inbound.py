"""`POST /v1/messages` clients: validate an Anthropic Messages request into a canonical `ChatRequest`, and
answer in Anthropic's format (message, stream events, error envelope), so the `anthropic` SDK and tools built
on it work unchanged whatever provider serves them.

Validation raises `InvalidRequest` with `param` as a dotted path (`messages.0.content.1.source.media_type`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from faregate.canonical import (
    ChatRequest,
    ImagePart,
    JSONObject,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    TextPart,
    Thought,
    Tool,
    ToolCall,
    ToolChoice,
)
from faregate.errors import InvalidRequest
from faregate.providers.anthropic.response import compact_json
from faregate.providers.anthropic.thoughts import BLOCKS as THINKING_BLOCKS
from faregate.providers.anthropic.thoughts import parse_block as parse_thought
from faregate.providers.fields import ROUTING_FIELDS, check_routing
from faregate.providers.reasoning import (
    ANTHROPIC_EFFORT_NAMES,
    parse_anthropic_effort,
    parse_anthropic_thinking,
)

IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
TOOL_CHOICE_MODES: Final[Mapping[str, Literal["auto", "none", "required", "tool"]]] = MappingProxyType(
    {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}
)
# Fields read into canonical ones; every other top-level key goes to `extra` (forwarded to Anthropic only).
CANONICAL_FIELDS: Final = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "max_tokens", "stop_sequences", "temperature"}
    | {"top_p", "top_k", "metadata", "stream", "thinking", "output_format"}
)


def fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def req_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        problem = "Field required" if value is None else "Input should be a string"
        raise fail(f"{where}{key}: {problem}", where + key)
    return value


def opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else req_str(obj, key, where)


def get_number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(f"{key}: must be a number between {low:g} and {high:g}", key)
    return float(value)


def get_int(body: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(f"{key}: must be an integer >= {minimum}", key)
    return value


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{where}: Input should be an object", where)
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(f"{where}: Input should be a list", where)
    return value


def parse_text(block: Mapping[str, Any], where: str) -> TextPart:
    return TextPart(req_str(block, "text", where))


def parse_image(block: Mapping[str, Any], where: str) -> ImagePart:
    source = as_object(block.get("source"), where + "source")
    kind = source.get("type")
    if kind == "base64":
        media_type = req_str(source, "media_type", where + "source.")
        if media_type not in IMAGE_MEDIA_TYPES:
            allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
            raise fail(f"{where}source.media_type: must be one of {allowed}", where + "source.media_type")
        return ImagePart(data_b64=req_str(source, "data", where + "source."), media_type=media_type)
    if kind == "url":
        return ImagePart(url=req_str(source, "url", where + "source."))
    raise fail(
        f"{where}source.type: unsupported image source {kind!r} (use base64 or url)", where + "source.type"
    )


def parse_tool_result(block: Mapping[str, Any], where: str) -> Message:
    tool_use_id = req_str(block, "tool_use_id", where)
    content = block.get("content")
    parts: tuple[Part, ...]
    if content is None:
        parts = ()
    elif isinstance(content, str):
        parts = (TextPart(content),) if content else ()
    else:
        items = [
            parse_block(b, f"{where}content.{i}.", RESULT_BLOCKS)
            for i, b in enumerate(as_list(content, where + "content"))
        ]
        parts = tuple(x for x in items if isinstance(x, TextPart | ImagePart))
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise fail(f"{where}is_error: Input should be a boolean", where + "is_error")
    return Message(role="tool", content=parts, tool_call_id=tool_use_id, is_error=is_error)


def parse_thinking(block: Mapping[str, Any], where: str) -> Thought:
    """A thinking block the client passes back (Anthropic requires it in a tool-use loop with thinking)."""
    for key in ("data",) if block["type"] == "redacted_thinking" else ("thinking", "signature"):
        req_str(block, key, where)
    return parse_thought(block)


def parse_tool_use(block: Mapping[str, Any], where: str) -> ToolCall:
    args = as_object(block.get("input"), where + "input")
    return ToolCall(req_str(block, "id", where), req_str(block, "name", where), compact_json(args))


Item: TypeAlias = TextPart | ImagePart | ToolCall | Message | Thought  # what a content block parses into
Parsers: TypeAlias = Mapping[str, Callable[[Mapping[str, Any], str], Item]]


def parse_block(raw: Any, where: str, parsers: Parsers) -> Item:
    block = as_object(raw, where.rstrip("."))
    kind = block.get("type")
    parser = parsers.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise fail(f"{where}type: unsupported content block type {kind!r} here", where + "type")
    return parser(block, where)


# Which blocks each place accepts (thinking blocks elsewhere than in an assistant turn are skipped first).
USER_BLOCKS: Final[Parsers] = MappingProxyType(
    {"text": parse_text, "image": parse_image, "tool_result": parse_tool_result}
)
ASSISTANT_BLOCKS: Final[Parsers] = MappingProxyType(
    {
        "text": parse_text,
        "image": parse_image,
        "tool_use": parse_tool_use,
        "thinking": parse_thinking,
        "redacted_thinking": parse_thinking,
    }
)
RESULT_BLOCKS: Final[Parsers] = MappingProxyType({"text": parse_text, "image": parse_image})
SYSTEM_BLOCKS: Final[Parsers] = MappingProxyType({"text": parse_text})


def parse_turn(raw: Any, where: str) -> list[Message]:
    """One Anthropic turn. A user turn's tool results become tool messages, in order, ahead of a user
    message with the rest of the turn; an assistant turn is one message with its tool calls."""
    turn = as_object(raw, where.rstrip("."))
    role = turn.get("role")
    if role not in ("user", "assistant"):
        raise fail(f"{where}role: must be 'user' or 'assistant'", where + "role")
    content = turn.get("content")
    if not isinstance(content, str | list):
        raise fail(f"{where}content: must be a string or a list of content blocks", where + "content")
    if isinstance(content, str):
        return [Message(role=role, content=(TextPart(content),))]
    parsers = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    items = [
        parse_block(b, f"{where}content.{i}.", parsers)
        for i, b in enumerate(content)
        if role == "assistant" or not (isinstance(b, dict) and str(b.get("type")) in THINKING_BLOCKS)
    ]
    parts = tuple(x for x in items if isinstance(x, TextPart | ImagePart))
    if role == "assistant":
        calls = tuple(x for x in items if isinstance(x, ToolCall))
        thoughts = tuple(x for x in items if isinstance(x, Thought))
        return [Message(role="assistant", content=parts, tool_calls=calls, thoughts=thoughts)]
    results = [x for x in items if isinstance(x, Message)]
    return [*results, Message(role="user", content=parts)] if parts or not results else results


def parse_system(raw: Any) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message(role="system", content=(TextPart(raw),))] if raw else []
    items = [parse_block(b, f"system.{i}.", SYSTEM_BLOCKS) for i, b in enumerate(as_list(raw, "system"))]
    parts = tuple(x for x in items if isinstance(x, TextPart))
    return [Message(role="system", content=parts)] if parts else []


def parse_tool(raw: Any, where: str) -> Tool:
    tool = as_object(raw, where.rstrip("."))
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise fail(f"{where}type: server tool {kind!r} is not supported by faregate", where + "type")
    schema = as_object(tool.get("input_schema"), where + "input_schema")
    return Tool(
        name=req_str(tool, "name", where),
        description=opt_str(tool, "description", where),
        parameters=MappingProxyType(dict(schema)),
    )


def parse_tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    return tuple(parse_tool(t, f"tools.{i}.") for i, t in enumerate(as_list(raw, "tools")))


def parse_tool_choice(raw: Any) -> tuple[ToolChoice | None, bool]:
    """The choice, and whether parallel tool use was disabled."""
    if raw is None:
        return None, False
    choice = as_object(raw, "tool_choice")
    kind = choice.get("type")
    mode = TOOL_CHOICE_MODES.get(kind) if isinstance(kind, str) else None
    if mode is None:
        raise fail("tool_choice.type: must be one of auto, any, tool, none", "tool_choice.type")
    name = req_str(choice, "name", "tool_choice.") if mode == "tool" else None
    serial = choice.get("disable_parallel_tool_use", False)
    if not isinstance(serial, bool):
        raise fail(
            "tool_choice.disable_parallel_tool_use: Input should be a boolean",
            "tool_choice.disable_parallel_tool_use",
        )
    return ToolChoice(mode, name), serial


def parse_stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = as_list(raw, "stop_sequences")
    if not all(isinstance(s, str) for s in stops):
        raise fail("stop_sequences: Input should be a list of strings", "stop_sequences")
    return tuple(stops)


def parse_metadata(raw: Any, extra: dict[str, Any]) -> str | None:
    """`metadata.user_id` is canonical `user`; other metadata keys travel in `extra`."""
    if raw is None:
        return None
    metadata = dict(as_object(raw, "metadata"))
    user = opt_str(metadata, "user_id", "metadata.")
    metadata.pop("user_id", None)
    if metadata:
        extra["metadata"] = metadata
    return user


def parse_output_format(body: Mapping[str, Any], extra: dict[str, Any]) -> ResponseFormat | None:
    """Structured output, `output_config.format` (or the older beta's top-level `output_format`), as
    OpenAI's `response_format`; the rest of `output_config` (`effort`) stays in `extra`."""
    fmt = body.get("output_format")
    config = body.get("output_config")
    if config is not None:
        config = dict(as_object(config, "output_config"))
        fmt = config.pop("format", None) or fmt
        if config:
            extra["output_config"] = config
        else:
            extra.pop("output_config", None)
    if fmt is None:
        return None
    fmt = as_object(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise fail("output_config.format.type: must be 'json_schema'", "output_config.format.type")
    schema = as_object(fmt.get("schema"), "output_config.format.schema")
    return ResponseFormat("json_schema", "output", dict(schema))


def adaptive_effort(reasoning: Reasoning | None, extra: dict[str, Any]) -> Reasoning | None:
    """Adaptive thinking steered by Anthropic's `output_config.effort`: that effort is the canonical one, so
    another format's upstream gets it as its own effort or budget. One of the canonical scale leaves
    `output_config` (the Anthropic renderer writes it back); `xhigh` or `max` stays there, sent as it is."""
    config = extra.get("output_config")
    adaptive = reasoning is not None and reasoning.effort is None and reasoning.budget_tokens is None
    if not adaptive or not isinstance(config, dict) or config.get("effort") is None:
        return reasoning
    assert reasoning is not None
    value = config["effort"]
    effort = parse_anthropic_effort(value)
    if ANTHROPIC_EFFORT_NAMES.get(effort) == value:
        rest = {k: v for k, v in config.items() if k != "effort"}
        if rest:
            extra["output_config"] = rest
        else:
            del extra["output_config"]
    return replace(reasoning, effort=effort)


def parse_routing(body: Mapping[str, Any]) -> JSONObject:
    """faregate's own fields: consumed here, never forwarded. Only their top-level type is checked."""
    routing: JSONObject = {}
    for key in ROUTING_FIELDS:
        if key in body and body[key] is not None:
            expected = check_routing(key, body[key])
            if expected is not None:
                raise fail(f"{key}: Input should be {expected}", key)
            routing[key] = body[key]
    return routing


def parse_request(raw: object) -> tuple[ChatRequest, JSONObject]:
    body = as_object(raw, "body")
    routing = parse_routing(body)
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise fail("messages: must be a non-empty list", "messages")
    messages = parse_system(body.get("system"))
    for i, turn in enumerate(turns):
        messages.extend(parse_turn(turn, f"messages.{i}."))
    # Unknown keys (thinking, service_tier, ...) ride along in `extra`; a null one says nothing: dropped.
    extra = {
        k: v
        for k, v in body.items()
        if k not in CANONICAL_FIELDS and k not in ROUTING_FIELDS and v is not None
    }
    user = parse_metadata(body.get("metadata"), extra)
    response_format = parse_output_format(body, extra)
    reasoning = adaptive_effort(parse_anthropic_thinking(body.get("thinking")), extra)
    choice, serial = parse_tool_choice(body.get("tool_choice"))
    if serial:
        extra["parallel_tool_calls"] = False  # OpenAI's name; each adapter maps it to its own field
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise fail("stream: Input should be a boolean", "stream")
    model = opt_str(body, "model", "")
    req = ChatRequest(
        model=model,
        messages=tuple(messages),
        tools=parse_tools(body.get("tools")),
        tool_choice=choice,
        stream=stream,
        include_usage=True,  # Anthropic always reports usage
        max_tokens=get_int(body, "max_tokens", 1),
        temperature=get_number(body, "temperature", 0.0, 1.0),
        top_p=get_number(body, "top_p", 0.0, 1.0),
        stop=parse_stop(body.get("stop_sequences")),
        user=user,
        top_k=get_int(body, "top_k", 0),
        reasoning=reasoning,
        response_format=response_format,
        source_api="anthropic",
        extra=MappingProxyType(extra),
    )
    return req, routing
