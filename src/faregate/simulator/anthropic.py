"""Anthropic's Messages API: `POST /v1/messages` (plain and named SSE events), token counting, errors.

Validation follows api.anthropic.com: `x-api-key` and `anthropic-version` headers, `max_tokens` required,
roles alternating from `user`, every `tool_use` answered by a `tool_result` in the next message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

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

FIELDS: Final = frozenset(
    {
        *("model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p"),
        *("top_k", "tools", "tool_choice", "metadata", "thinking", "service_tier", "container"),
        *("mcp_servers", "context_management", "output_config", "output_format", "cache_control"),
        *("diagnostics", "inference_geo", "speed", "user_profile_id", "workspace_id"),
    }
)
ERROR_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        504: "timeout_error",
        529: "overloaded_error",
    }
)
STOP_REASONS: Final = MappingProxyType(
    {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool_call": "tool_use"}
)
TOOL_MODES: Final[Mapping[str, ToolMode]] = MappingProxyType(
    {"auto": "auto", "any": "any", "tool": "tool", "none": "none"}
)
ATTACHMENTS: Final = frozenset({"image", "document"})  # counted like images


def render_error(err: SimError) -> JSONObject:
    kind = err.error_type or ERROR_TYPES.get(
        err.status, "api_error" if err.status >= 500 else "invalid_request_error"
    )
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def check_auth(request: web.Request, provider: SimProvider) -> None:
    # The API takes an API key in x-api-key, or an OAuth token as Bearer.
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
    if not request.headers.get("x-api-key") and not bearer:
        raise SimError(401, "x-api-key header is required")
    if not request.headers.get("anthropic-version"):
        raise SimError(400, "anthropic-version: header is required")


def invalid(message: str) -> SimError:
    return SimError(400, message)


def parse_messages(body: JSONObject, *, need_max_tokens: bool = True) -> Prompt:
    """A Messages API request as a `Prompt`, validated as Anthropic validates it."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise invalid(f"{unknown[0]}: Extra inputs are not permitted")
    for field in ("model", "messages", *(("max_tokens",) if need_max_tokens else ())):
        if field not in body:
            raise invalid(f"{field}: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: at least one message is required")
    system = body.get("system") or ""
    system_text = system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)
    texts, images, last_user, tool_result = _read_messages(messages)
    tools, mode, forced = _read_tools(body)
    thinks = _read_thinking(body, messages)
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop_sequences: Input should be a valid list of strings")
    return Prompt(
        texts=(system_text, *texts) if system_text else texts,
        message_count=len(messages) + (1 if system_text else 0),
        last_user_text=last_user,
        image_count=images,
        tools=tools,
        tools_json=dumps(body["tools"]) if body.get("tools") else "",
        tool_mode=mode,
        forced_tool=forced,
        tool_result=tool_result,
        max_tokens=max_tokens,
        stop=tuple(stops),
        json_schema=schema if isinstance(schema, dict) else None,
        thinks=thinks,
    )


THINKING_DOCS: Final = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
THINKING_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})
MIN_BUDGET: Final = 1024


def _read_thinking(body: JSONObject, messages: list[JSON]) -> bool:
    """Whether the model thinks; with thinking on, the rules Anthropic enforces: a budget below
    `max_tokens`, no forced tool choice, and a tool-use turn passed back starting with its thinking block."""
    thinking = body.get("thinking") or {"type": "disabled"}
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise invalid("thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'")
    if kind == "disabled":
        return False
    budget = thinking.get("budget_tokens")
    if kind == "enabled":
        if not isinstance(budget, int) or budget < MIN_BUDGET:
            raise invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens <= budget:
            raise invalid(
                f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult {THINKING_DOCS}"
            )
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
    last = messages[-1]
    blocks = last.get("content") if isinstance(last, dict) else None
    in_loop = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks
    )
    if in_loop and len(messages) > 1:
        turn = messages[-2].get("content")
        first = (
            turn[0].get("type") if isinstance(turn, list) and turn and isinstance(turn[0], dict) else "text"
        )
        if first not in THINKING_BLOCKS:
            raise invalid(
                f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                f"found `{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                "recommend you include thinking blocks from previous turns. To avoid this requirement, disable "
                f"`thinking`. Please consult our documentation at {THINKING_DOCS}"
            )
    return True


def _check_thought(block: JSONObject, where: str) -> None:
    """A thinking block passed back must carry the signature the model gave it (and its text unchanged,
    or none when the client was shown none); anything else is refused, as Anthropic refuses it."""
    redacted = block.get("type") == "redacted_thinking"
    signature = block.get("data" if redacted else "signature")
    thought = behaviour.signed_thought(signature) if isinstance(signature, str) else None
    if redacted:
        if thought is None:
            raise invalid(f"{where}.data: Invalid `data` in `redacted_thinking` block")
        return
    if thought is None or block.get("thinking") not in (thought, ""):
        raise invalid(f"{where}: Invalid `signature` in `thinking` block")


def _read_messages(messages: list[JSON]) -> tuple[tuple[str, ...], int, str, str | None]:
    texts: list[str] = []
    images, last_user, tool_result, pending = 0, "", None, set[str]()
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise invalid('messages: first message must use the "user" role')
        if i > 0 and role == messages[i - 1]["role"]:
            raise invalid(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise invalid(f"messages.{i}.content: Input should be a valid list")
        answered = {
            b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        if answered - pending:
            raise invalid(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(sorted(map(str, answered - pending)))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        if pending - answered:
            raise invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(sorted(pending - answered))}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        for j, b in enumerate(blocks):
            if isinstance(b, dict) and b.get("type") in THINKING_BLOCKS:
                _check_thought(b, f"messages.{i}.content.{j}")
        pending = {b.get("id", "") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"}
        text = " ".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        results = [
            _result_text(b.get("content"))
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        calls = [
            f"{b.get('name', '')} {dumps(b.get('input', {}))}"
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_use"
        ]
        images += sum(1 for b in blocks if isinstance(b, dict) and b.get("type") in ATTACHMENTS)
        texts.extend([text, *results, *calls])
        if role == "user":
            last_user = text or last_user
            tool_result = results[-1] if results else None
    if pending:
        raise invalid(f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks")
    return tuple(texts), images, last_user, tool_result


def _result_text(content: JSON) -> str:
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return content if isinstance(content, str) else ""


def _read_tools(body: JSONObject) -> tuple[tuple[ToolSpec, ...], ToolMode, str | None]:
    tools: list[ToolSpec] = []
    for i, tool in enumerate(body.get("tools") or ()):
        if tool.get("type", "custom") != "custom":
            continue  # server tools (web search, ...) run on Anthropic's side: never called by the model here
        if "input_schema" not in tool or "name" not in tool:
            raise invalid(f"tools.{i}.custom.input_schema: Field required")
        tools.append(ToolSpec(tool["name"], tool["input_schema"], str(tool.get("description") or "")))
    choice = body.get("tool_choice") or {"type": "auto"}
    mode = TOOL_MODES.get(str(choice.get("type")))
    if mode is None:
        raise invalid(
            "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        )
    if mode == "tool" and choice.get("name") not in {t.name for t in tools}:
        raise invalid(f"tool_choice: tool '{choice.get('name')}' is not in tools")
    return tuple(tools), mode, choice.get("name")


def find_model(provider: SimProvider, body: JSONObject) -> SimModel:
    model = provider.model(str(body["model"]))
    if model is None or model.kind != "chat":
        raise SimError(404, f"model: {body['model']}")
    return model


def usage(answer: Answer, output_tokens: int) -> JSONObject:
    return {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _blocks(answer: Answer, shown: bool = True) -> list[JSONObject]:
    """The content: the thinking block first when the model thought (its text blank when the request
    said `display: omitted`; the signature is the same), then the tool call or the text."""
    thinking: list[JSONObject] = []
    if answer.thinking:
        signature = behaviour.thought_signature(answer.thinking)
        thinking = [
            {"type": "thinking", "thinking": answer.thinking if shown else "", "signature": signature}
        ]
    if answer.tool_call is not None:
        call = answer.tool_call
        return [
            *thinking,
            {
                "type": "tool_use",
                "id": f"toolu_{answer.digest[:24]}",
                "name": call.name,
                "input": call.arguments,
            },
        ]
    return [*thinking, {"type": "text", "text": answer.text}] if answer.text else thinking


def thoughts_shown(body: JSONObject) -> bool:
    thinking = body.get("thinking")
    return not (isinstance(thinking, dict) and thinking.get("display") == "omitted")


def render_message(answer: Answer, model: SimModel, shown: bool = True) -> JSONObject:
    return {
        "id": f"msg_{answer.digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model.upstream_id,
        "content": _blocks(answer, shown),
        "stop_reason": STOP_REASONS[answer.finish],
        "stop_sequence": answer.stop_sequence,
        "usage": usage(answer, answer.completion_tokens),
    }


def render_events(answer: Answer, model: SimModel, shown: bool = True) -> list[Event]:
    """message_start, each block's start/deltas/stop (a ping after the first start), message_delta,
    message_stop. A thinking block streams empty, then thinking_delta*, then its signature_delta."""
    start = {**render_message(answer, model), "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = usage(answer, min(1, answer.completion_tokens))
    events = [Event({"type": "message_start", "message": start}, "message_start")]
    empty: JSONObject
    deltas: list[JSONObject]
    for index, block in enumerate(_blocks(answer, shown)):
        if block["type"] == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": d} for d in behaviour.word_deltas(block["thinking"])
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "tool_use":
            empty, deltas = (
                {**block, "input": {}},
                [
                    {"type": "input_json_delta", "partial_json": f}
                    for f in behaviour.json_fragments(
                        answer.tool_call.arguments_json if answer.tool_call else ""
                    )
                ],
            )
        else:
            empty, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": d} for d in behaviour.word_deltas(answer.text)],
            )
        events.append(
            Event(
                {"type": "content_block_start", "index": index, "content_block": empty}, "content_block_start"
            )
        )
        events += [Event({"type": "ping"}, "ping")] if index == 0 else []
        events += [
            Event({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            for d in deltas
        ]
        events.append(Event({"type": "content_block_stop", "index": index}, "content_block_stop"))
    if len(events) == 1:
        events.append(Event({"type": "ping"}, "ping"))
    delta = {"stop_reason": STOP_REASONS[answer.finish], "stop_sequence": answer.stop_sequence}
    final_usage = usage(answer, answer.completion_tokens)
    del final_usage["service_tier"]
    events.append(Event({"type": "message_delta", "delta": delta, "usage": final_usage}, "message_delta"))
    return [*events, Event({"type": "message_stop"}, "message_stop")]


async def messages(call: Call) -> web.StreamResponse:
    body = call.json_object("There was an issue with your request body: it is not valid JSON.")
    prompt = parse_messages(body)
    model = find_model(call.provider, body)
    answer = behaviour.answer(prompt, f"{call.provider.name}/{model.upstream_id}", call.count_tokens)
    shown = thoughts_shown(body)
    if body.get("stream"):
        return await send_events(call, render_events(answer, model, shown))
    return json_response(render_message(answer, model, shown))


async def count_tokens(call: Call) -> web.StreamResponse:
    body = call.json_object("There was an issue with your request body: it is not valid JSON.")
    prompt = parse_messages(body, need_max_tokens=False)
    find_model(call.provider, body)
    return json_response({"input_tokens": behaviour.count_prompt(prompt, call.count_tokens)})


WIRE: Final = Wire(
    base_path="",
    endpoints=(
        Endpoint("POST", "/v1/messages", messages),
        Endpoint("POST", "/v1/messages/count_tokens", count_tokens),
    ),
    check_auth=check_auth,
    render_error=render_error,
)
