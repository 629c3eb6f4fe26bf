"""Canonical `ChatRequest` → an Anthropic Messages API body (`POST /v1/messages`).

Structure (system, turns, blocks, tools) is built by small functions; renames, clamps and defaults are the
`PARAMS` table. What Anthropic cannot carry is returned as `dropped` for the trace, never lost silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    PDF,
    ChatRequest,
    FilePart,
    ImagePart,
    JSONObject,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
    signed_for,
)
from faregate.providers.anthropic.response import parse_arguments
from faregate.providers.anthropic.thoughts import upstream_blocks
from faregate.providers.fields import forwardable
from faregate.providers.params import Param, apply_params, merge_extra
from faregate.providers.reasoning import (
    ANTHROPIC_EFFORT_NAMES,
    BUDGETS,
    MIN_ANTHROPIC_BUDGET,
    budget_of,
    in_family,
    with_reasoning,
)
from faregate.providers.wire import split_data_url

DEFAULT_MAX_TOKENS: Final = 4096  # Anthropic requires max_tokens; used when neither request nor offering says
EMPTY_SCHEMA: Final[Mapping[str, Any]] = MappingProxyType({"type": "object", "properties": {}})


# Canonical sampling fields → Anthropic Messages. `max_tokens` is not here: render_request always sets it.
PARAMS: Final[Mapping[str, Param]] = MappingProxyType(
    {
        "temperature": Param("temperature", min=0.0, max=1.0),  # Anthropic allows 0..1, OpenAI 0..2
        "top_p": Param("top_p", min=0.0, max=1.0),
        "stop": Param("stop_sequences", transform=list),
        "user": Param("metadata.user_id"),
        "top_k": Param("top_k"),
    }
)

TOOL_CHOICES: Final[Mapping[str, str]] = MappingProxyType(
    {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}
)

# Anthropic has no plain JSON mode: `json_object` becomes this instruction at the end of `system`, as
# Anthropic's guide to consistent output suggests (state the exact format). Rather that than dropping it.
# A `json_schema` format is Anthropic's structured output, `output_config.format`.
JSON_INSTRUCTION: Final = "Respond only with a single valid JSON object: no prose, no Markdown code fences."
# Claude families without extended thinking: a `thinking` sent to them is dropped (and noted).
NO_THINKING_PREFIXES: Final = ("claude-3-5", "claude-3-haiku", "claude-3-opus", "claude-3-sonnet", "claude-2")
# Chat-completions fields that reach an Anthropic model (renamed, clamped or translated as above).
PARAMETERS: Final = frozenset(
    {
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "stream", "user",
        "tools", "tool_choice", "parallel_tool_calls", "response_format",
    }
)  # fmt: skip


def parameters(upstream_id: str) -> frozenset[str]:
    return with_reasoning(PARAMETERS, not in_family(upstream_id, NO_THINKING_PREFIXES))


def render_request(
    req: ChatRequest, upstream_id: str, max_output_tokens: int | None
) -> tuple[JSONObject, list[str]]:
    """The body for `upstream_id`, and the request fields Anthropic could not carry."""
    dropped: list[str] = []
    system, turns = split_system(req.messages)
    schema = req.json_schema
    instruction = "" if schema is not None else json_instruction(req.response_format)
    system = "\n\n".join(s for s in (system, instruction) if s)
    body: JSONObject = {
        "model": upstream_id,
        "messages": merge_turns(render_message(m, dropped) for m in turns),
        "max_tokens": req.max_tokens or max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": dict(schema)}}
    if system:
        body["system"] = system
    if req.tools:
        body["tools"] = [render_tool(t) for t in req.tools]
    choice = render_tool_choice(req.tool_choice, req.extra.get("parallel_tool_calls") is False)
    if choice and req.tools:
        body["tool_choice"] = choice
    elif req.tool_choice:
        dropped.append("tool_choice")  # Anthropic rejects tool_choice without tools
    apply_params(body, req, PARAMS)
    render_thinking(body, req, upstream_id, dropped)
    if req.stream:
        body["stream"] = True
    dropped.extend(forward_extra(body, req))
    return body, dropped


def render_thinking(body: JSONObject, req: ChatRequest, upstream_id: str, dropped: list[str]) -> None:
    """`thinking`: a budget below `max_tokens` (Anthropic's rule), adaptive when the model should decide."""
    if req.reasoning is None:
        return
    if req.reasoning.effort == "none":
        body["thinking"] = {"type": "disabled"}
        return
    if in_family(upstream_id, NO_THINKING_PREFIXES):
        dropped.append("reasoning")
        return
    refused = thinking_refused(body, req)
    if refused is not None:
        dropped.append(f"reasoning ({refused})")
        return
    if req.source_api == "anthropic":  # the client's own setting, as it sent it
        budget, effort = req.reasoning.budget_tokens, req.reasoning.effort
        body["thinking"] = (
            {"type": "adaptive"} if budget is None else {"type": "enabled", "budget_tokens": budget}
        )
        if not req.reasoning.include_thoughts:
            body["thinking"]["display"] = "omitted"
        sent = req.extra.get("output_config")
        if effort is not None and not (isinstance(sent, Mapping) and "effort" in sent):
            # the adaptive thinking's `output_config.effort` the inbound read (`adaptive_effort`)
            body.setdefault("output_config", {})["effort"] = ANTHROPIC_EFFORT_NAMES[effort]
        return
    budget = budget_of(req.reasoning)
    budget = min(BUDGETS["medium"] if budget is None else budget, body["max_tokens"] - 1)
    if budget < MIN_ANTHROPIC_BUDGET:
        dropped.append("reasoning (max_tokens leaves no room for a thinking budget)")
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for key in ("temperature", "top_k"):  # Anthropic takes neither with thinking on
        if body.pop(key, None) is not None:
            dropped.append(f"{key} (not allowed with thinking)")


# Tool choices that force a tool call: Anthropic refuses thinking with them ("Thinking may not be enabled
# when tool_choice forces tool use").
FORCED_CHOICES: Final = frozenset({"any", "tool"})


def thinking_refused(body: JSONObject, req: ChatRequest) -> str | None:
    """Why Anthropic would refuse thinking on this request (None: it would not); thinking then stays off.
    An Anthropic client's own forced tool choice goes as it sent it: Anthropic's answer to it is the
    client's to read."""
    forced = body.get("tool_choice", {}).get("type") in FORCED_CHOICES
    if forced and req.source_api != "anthropic":
        return "Anthropic takes no thinking with a forced tool choice"
    if unsigned_tool_turn(req.messages):
        return "the assistant turn with tool calls passed back has no Anthropic thinking"
    return None


def unsigned_tool_turn(messages: tuple[Message, ...]) -> bool:
    """Whether the conversation is inside a tool-use loop whose assistant turn carries no thinking block
    Anthropic signed: with thinking on, Anthropic rejects such a turn ("a final assistant message must
    start with a thinking block"), so thinking stays off for it (another format answered that turn, or
    the client did not pass the thinking back)."""
    results = False
    for m in reversed(messages):  # the last turn: tool results, perhaps with user text after them
        if m.role == "assistant":
            return results and bool(m.tool_calls) and not signed_for(m.thoughts, "anthropic")
        if m.role == "tool":
            results = True
        elif m.role != "user" or results:
            return False
    return False


def split_system(messages: Iterable[Message]) -> tuple[str, list[Message]]:
    """Anthropic takes system text outside the turns: every system message (wherever it stood), joined."""
    system: list[str] = []
    turns: list[Message] = []
    for m in messages:
        if m.role == "system":
            system.extend(p.text for p in m.content if isinstance(p, TextPart) and p.text)
        else:
            turns.append(m)
    return "\n\n".join(system), turns


def json_instruction(response_format: ResponseFormat | None) -> str:
    if response_format is None or not response_format.json:
        return ""
    if response_format.kind == "json_schema" and response_format.schema:
        return f"{JSON_INSTRUCTION} It must match this JSON Schema: {json.dumps(response_format.schema)}"
    return JSON_INSTRUCTION


def render_message(m: Message, dropped: list[str]) -> JSONObject:
    """One canonical message as one Anthropic turn (not yet merged with its neighbours)."""
    if m.role == "tool":
        return {"role": "user", "content": [render_tool_result(m)]}
    blocks = [b for p in m.content if (b := render_part(p, dropped))]
    if m.role == "assistant":
        blocks[:0] = upstream_blocks(m.thoughts)  # Anthropic's own thinking, first, as it was made
        blocks.extend(render_tool_use(c.id, c.name, c.arguments, dropped) for c in m.tool_calls)
    return {"role": "assistant" if m.role == "assistant" else "user", "content": blocks}


def render_part(p: Part, dropped: list[str]) -> JSONObject | None:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text} if p.text else None  # Anthropic rejects empty text blocks
    if isinstance(p, FilePart):
        return render_document(p, dropped)
    if p.detail and "image detail" not in dropped:
        dropped.append("image detail")
    return {"type": "image", "source": image_source(p)}


def render_document(p: FilePart, dropped: list[str]) -> JSONObject | None:
    """An inline PDF as a `document` block; a file by id or URL, or of another type, Anthropic cannot read
    as the client gave it (routing keeps such a request off Anthropic channels)."""
    if not p.pdf:
        dropped.append("input file (not an inline PDF)")
        return None
    block: JSONObject = {
        "type": "document",
        "source": {"type": "base64", "media_type": PDF, "data": p.data_b64},
    }
    if p.filename:
        block["title"] = p.filename
    return block


def image_source(p: ImagePart) -> JSONObject:
    if p.data_b64 is not None:
        return {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data_b64}
    url = p.url or ""
    inline = split_data_url(url)  # an OpenAI data URL that was not split into data_b64 upstream
    if inline is not None:
        return {"type": "base64", "media_type": inline[0] or "image/png", "data": inline[1]}
    return {"type": "url", "url": url}


def render_tool_use(call_id: str, name: str, arguments: str, dropped: list[str]) -> JSONObject:
    """Anthropic wants `input` as an object; arguments that are not a JSON object become `{}` (noted)."""
    parsed = parse_arguments(arguments)
    if parsed is None:
        dropped.append(f"tool_calls[{call_id}].arguments (not a JSON object)")
        parsed = {}
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def render_tool_result(m: Message) -> JSONObject:
    """A tool message as a `tool_result` block: one text as a string, several parts or images as blocks."""
    content: str | list[JSONObject]
    if not m.content or (len(m.content) == 1 and isinstance(m.content[0], TextPart)):
        content = m.text
    else:
        content = [b for p in m.content if (b := render_part(p, []))]
    block: JSONObject = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": content}
    if m.is_error:
        block["is_error"] = True
    return block


def merge_turns(turns: Iterable[JSONObject]) -> list[JSONObject]:
    """Anthropic requires user and assistant turns to alternate: consecutive same-role turns become one
    (so consecutive tool results share one user turn, ahead of any user text that follows them)."""
    merged: list[JSONObject] = []
    for turn in turns:
        if not turn["content"]:
            continue
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"].extend(turn["content"])
        else:
            merged.append({"role": turn["role"], "content": list(turn["content"])})
    return merged


def render_tool(t: Tool) -> JSONObject:
    tool: JSONObject = {"name": t.name}
    if t.description:
        tool["description"] = t.description
    tool["input_schema"] = dict(t.parameters) if t.parameters else dict(EMPTY_SCHEMA)
    return tool


def render_tool_choice(choice: ToolChoice | None, serial: bool) -> JSONObject | None:
    """`serial` (OpenAI's `parallel_tool_calls: false`) is Anthropic's `disable_parallel_tool_use`."""
    if choice is None and not serial:
        return None
    out: JSONObject = {"type": TOOL_CHOICES[choice.mode] if choice else "auto"}
    if choice and choice.mode == "tool":
        out["name"] = choice.name or ""
    if serial and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# Extra keys that have a canonical place here rather than being forwarded as they are.
HANDLED_EXTRA: Final = frozenset({"parallel_tool_calls"})


def forward_extra(body: JSONObject, req: ChatRequest) -> list[str]:
    """Fields of the client's format with no canonical meaning: forwarded when the client spoke Anthropic
    (`top_k`, `thinking`, ...), else returned as dropped. Never overrides what the translation set."""
    keys = [k for k in req.extra if k not in HANDLED_EXTRA]
    if req.source_api != "anthropic":
        return sorted(keys)
    extra, dropped = forwardable({k: req.extra[k] for k in keys}, "anthropic")
    merge_extra(body, extra)
    return sorted(dropped)
