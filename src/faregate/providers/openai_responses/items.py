"""Responses API items ⇄ canonical messages, both ways, with OpenAI's validation wording.

Input items are what a client sends in `input` (and what a stored response keeps as its conversation):
`message` (roles user, system, developer, assistant; `input_text`, `input_image`, `input_file`,
`output_text`, `refusal` parts), `function_call`, `function_call_output`, `reasoning` (the model's own
thoughts, on the assistant turn that follows them: see `reasoning.py`), and the output items of tools the
provider ran (`web_search_call`, ...: kept on the assistant turn that follows them, as
`Message.provider_items`, and sent back only to a Responses upstream). Consecutive function calls fold into one
assistant turn, so every upstream format sees the turn structure it needs.

Output items are what a response carries in `output`: `reasoning` items, a Responses upstream's own items,
a `message` with `output_text` parts (and their annotations) and one `function_call` per tool call.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    ChatResponse,
    FilePart,
    ImagePart,
    JSONObject,
    Message,
    Part,
    Role,
    TextPart,
    Thought,
    ToolCall,
)
from faregate.providers.openai.validate import bad_type, bad_value, invalid, optional, required
from faregate.providers.openai_responses.reasoning import (
    item_id_for,
    parse_reasoning_item,
    reasoning_item,
)
from faregate.providers.wire import data_url, file_fields, split_data_url

MESSAGE_ROLES: Final[Mapping[str, Role]] = MappingProxyType(
    {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
)
ITEM_TYPES: Final = ("message", "function_call", "function_call_output", "reasoning")
# Output items of the tools a provider runs itself, which a Responses upstream answers with and a client
# (or a stored response) passes back: kept unchanged for a Responses upstream (every other format gets the
# answer they led to).
PROVIDER_ITEM_TYPES: Final = frozenset(
    {
        "web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call",
        "computer_call", "local_shell_call", "shell_call", "mcp_call", "mcp_list_tools",
    }
)  # fmt: skip
INPUT_PARTS: Final = ("input_text", "input_image", "input_file")
OUTPUT_PARTS: Final = ("output_text", "refusal")
# An `input_file` is read as text when its data is text (a PDF or other binary stays a file, see parse_file).
TEXT_FILE_TYPES: Final = ("text/", "application/json", "application/xml", "application/x-yaml")


# --- input items → canonical ----------------------------------------------------------------------


def parse_image(part: Mapping[str, Any], at: str) -> ImagePart:
    """An `input_image` by `image_url` (a URL or a data URL) or by the provider's `file_id` (which routing
    sends to a Responses upstream only, see `ImagePart`)."""
    detail = optional(part, "detail", f"{at}.detail", str)
    detail = None if detail == "auto" else detail
    file_id = optional(part, "file_id", f"{at}.file_id", str)
    if file_id is not None:
        return ImagePart(detail=detail, file_id=file_id, source=at)
    url = required(part, "image_url", f"{at}.image_url", str)
    inline = split_data_url(url)
    if inline is None:
        return ImagePart(url=url, detail=detail)
    return ImagePart(data_b64=inline[1], media_type=inline[0], detail=detail)


def parse_file(part: Mapping[str, Any], at: str) -> TextPart | FilePart:
    """An `input_file`. A text file given inline (`file_data` as a data URL) becomes a text part headed by
    its name, which every upstream reads; any other file (by `file_id`, by `file_url`, a PDF or another
    binary inline) stays a `FilePart`, which routing sends where it can be read (see `FilePart`)."""
    name = optional(part, "filename", f"{at}.filename", str)
    file_id = optional(part, "file_id", f"{at}.file_id", str)
    url = optional(part, "file_url", f"{at}.file_url", str)
    if file_id is not None or url is not None:
        return FilePart(filename=name, url=url, file_id=file_id, source=at)
    raw = required(part, "file_data", f"{at}.file_data", str)
    inline = split_data_url(raw)
    if inline is None:
        raise invalid(f"{at}.file_data", "expected a data: URL (data:<media type>;base64,<data>).")
    if not inline[0].startswith(TEXT_FILE_TYPES):
        return FilePart(filename=name, data_b64=inline[1], media_type=inline[0] or None, source=at)
    try:
        text = base64.b64decode(inline[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid(f"{at}.file_data", "not base64-encoded UTF-8 text.") from None
    return TextPart(f"{name or 'file'}:\n{text}")


def parse_part(part: object, at: str, role: Role) -> Part:
    if not isinstance(part, dict):
        raise bad_type(at, "an object", part)
    kind = part.get("type")
    allowed = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    if kind not in allowed:
        raise bad_value(f"{at}.type", kind, allowed)
    if kind in ("input_text", "output_text"):
        return TextPart(required(part, "text", f"{at}.text", str))
    if kind == "refusal":
        return TextPart(required(part, "refusal", f"{at}.refusal", str))
    if kind == "input_image":
        return parse_image(part, at)
    return parse_file(part, at)


def parse_content(item: Mapping[str, Any], at: str, role: Role) -> tuple[Part, ...]:
    content = item.get("content")
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise bad_type(f"{at}.content", "one of a string or array of objects", content)
    return tuple(parse_part(p, f"{at}.content[{i}]", role) for i, p in enumerate(content))


def parse_tool_output(item: Mapping[str, Any], at: str) -> tuple[Part, ...]:
    output = item.get("output")
    if isinstance(output, str):
        return (TextPart(output),) if output else ()
    if not isinstance(output, list):
        raise bad_type(f"{at}.output", "one of a string or array of objects", output)
    return tuple(parse_part(p, f"{at}.output[{i}]", "tool") for i, p in enumerate(output))


def item_type(item: Mapping[str, Any], at: str) -> str:
    kind = item.get("type")
    if kind is None and "role" in item:
        return "message"  # an easy input message: {"role": ..., "content": ...}
    if kind not in ITEM_TYPES and kind not in PROVIDER_ITEM_TYPES:
        raise invalid(
            f"{at}.type",
            f"item type {kind!r} is not supported by faregate (supported: {', '.join(ITEM_TYPES)}).",
        )
    return str(kind)


def _with_thoughts(m: Message, thoughts: list[Thought], provided: list[JSONObject]) -> Message:
    """The assistant output `m` with the reasoning and built-in tool items that came before it."""
    if not thoughts and not provided:
        return m
    m = replace(
        m, thoughts=(*m.thoughts, *thoughts), provider_items=(*m.provider_items, *(dict(i) for i in provided))
    )
    thoughts.clear()
    provided.clear()
    return m


def parse_items(items: object, where: str = "input") -> tuple[Message, ...]:
    """Input items → canonical messages (function calls folded into turns; a reasoning item's thought and a
    built-in tool's item go with the assistant output that follows them, and are dropped when none does)."""
    if not isinstance(items, list):
        raise bad_type(where, "one of a string or array of objects", items)
    out: list[Message] = []
    thoughts: list[Thought] = []
    provided: list[JSONObject] = []
    for i, raw in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(raw, dict):
            raise bad_type(at, "an object", raw)
        kind = item_type(raw, at)
        if kind in PROVIDER_ITEM_TYPES:
            provided.append(raw)
            continue
        if kind == "reasoning":
            thoughts.append(parse_reasoning_item(raw, at))
            continue
        if kind == "message":
            role_name = required(raw, "role", f"{at}.role", str)
            role = MESSAGE_ROLES.get(role_name)
            if role is None:
                raise bad_value(f"{at}.role", role_name, tuple(MESSAGE_ROLES))
            message = Message(role=role, content=parse_content(raw, at, role))
            if role == "assistant":
                message = _with_thoughts(message, thoughts, provided)
            else:
                thoughts.clear()
                provided.clear()
            out.append(message)
        elif kind == "function_call":
            call = ToolCall(
                required(raw, "call_id", f"{at}.call_id", str),
                required(raw, "name", f"{at}.name", str),
                required(raw, "arguments", f"{at}.arguments", str),
            )
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":
                out[-1] = _with_thoughts(
                    replace(last, tool_calls=(*last.tool_calls, call)), thoughts, provided
                )
            else:
                out.append(_with_thoughts(Message("assistant", tool_calls=(call,)), thoughts, provided))
        else:
            thoughts.clear()
            provided.clear()
            call_id = required(raw, "call_id", f"{at}.call_id", str)
            out.append(Message("tool", parse_tool_output(raw, at), tool_call_id=call_id))
    return tuple(out)


# --- canonical → input items (an upstream Responses request; a stored conversation) ------------------


def render_file(part: FilePart) -> JSONObject:
    """A `FilePart` as the `input_file` the client sent (`parse_file` reads it back to the same part)."""
    return {"type": "input_file", **file_fields(part)}


def render_part(part: Part, role: Role) -> JSONObject:
    if isinstance(part, TextPart):
        return {"type": "output_text" if role == "assistant" else "input_text", "text": part.text}
    if isinstance(part, FilePart):
        return render_file(part)
    if part.file_id is not None:
        return {"type": "input_image", "file_id": part.file_id, "detail": part.detail or "auto"}
    url = part.url if part.url is not None else data_url(part.media_type, part.data_b64 or "")
    out: JSONObject = {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}
    return out


def render_items(messages: Sequence[Message]) -> list[JSONObject]:
    """Canonical messages as Responses input items; `parse_items` reads them back to the same messages."""
    items: list[JSONObject] = []
    for m in messages:
        if m.role == "tool":
            one_text = len(m.content) == 1 and isinstance(m.content[0], TextPart)
            output: str | list[JSONObject] = (
                m.text if one_text or not m.content else [render_part(p, "user") for p in m.content]
            )
            items.append({"type": "function_call_output", "call_id": m.tool_call_id or "", "output": output})
            continue
        items.extend(reasoning_item(item_id_for(t), t) for t in m.thoughts)
        items.extend(dict(i) for i in m.provider_items)
        if m.content or not m.tool_calls:
            parts = m.content
            if m.role == "assistant":
                parts = tuple(p for p in parts if isinstance(p, TextPart))
            items.append(
                {"type": "message", "role": m.role, "content": [render_part(p, m.role) for p in parts]}
            )
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in m.tool_calls
        )
    return items


# --- canonical response → output items --------------------------------------------------------------


def output_text_part(text: str, annotations: Sequence[Mapping[str, Any]] = ()) -> JSONObject:
    return {
        "type": "output_text",
        "text": text,
        "annotations": [dict(a) for a in annotations],
        "logprobs": [],
    }


def message_item(
    item_id: str, text: str, status: str = "completed", annotations: Sequence[Mapping[str, Any]] = ()
) -> JSONObject:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text_part(text, annotations)] if status != "in_progress" else [],
    }


def function_call_item(item_id: str, call: ToolCall, status: str = "completed") -> JSONObject:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def output_items(resp: ChatResponse, new_id: Any, status: str = "completed") -> list[JSONObject]:
    """The answer as output items, whole (see `reasoning.view` for what a client is shown): reasoning,
    then the provider's own items (a Responses upstream's `web_search_call`, ...), the message, the function
    calls; `new_id(prefix)` makes item ids (`rs_…`, `msg_…`, `fc_…`)."""
    items: list[JSONObject] = [reasoning_item(new_id("rs_"), t) for t in resp.thoughts]
    items.extend(dict(item) for item in resp.provider_items)
    if resp.text or not resp.tool_calls:
        items.append(message_item(new_id("msg_"), resp.text, status, resp.annotations))
    items.extend(function_call_item(new_id("fc_"), c, status) for c in resp.tool_calls)
    return items
