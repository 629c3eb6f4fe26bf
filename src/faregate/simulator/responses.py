"""OpenAI's Responses API as the simulator serves it under an OpenAI-format provider: `POST /responses`
(plain and streamed with the semantic events), `GET`/`DELETE /responses/{id}` and stored conversations
continued with `previous_response_id`.

Written from OpenAI's API reference, independently of the gateway's translator, so that tests of one
check the other: input items, instructions, function tools, `tool_choice`, `text.format`,
`max_output_tokens` (`status: incomplete`), usage with its details, errors in OpenAI's envelope.

Reasoning: a reasoning model (`REASONING_MODELS`) asked for `reasoning.summary`, or for
`include: ["reasoning.encrypted_content"]`, answers with a `reasoning` item first (its summary text only when
asked; its `encrypted_content` only when included, and refused when passed back altered), streamed with the
`response.reasoning_summary_*` events. The built-in `web_search` tool: when the request forces it or the
user's text mentions searching, the model runs one search (a `web_search_call` item with a deterministic
fake result, `action.sources` with `include: ["web_search_call.action.sources"]`; streamed with
`response.web_search_call.in_progress`/`searching`/`completed`) and cites it in its answer with a
`url_citation` annotation (`response.output_text.annotation.added`). Other built-in tools are accepted and
never called.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import replace
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
    dumps,
    json_response,
)
from faregate.simulator.openai import BAD_JSON, STRICT_LISTINGS, TOOL_NAME, find_model, invalid
from faregate.simulator.streaming import Event, send_events
from faregate.values import frozen

FIELDS: Final = frozenset(
    {
        *("background", "conversation", "include", "input", "instructions", "max_output_tokens"),
        *("max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt"),
        *("prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier"),
        *("store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools"),
        *("top_logprobs", "top_p", "truncation", "user"),
    }
)
ROLES: Final = ("user", "assistant", "system", "developer")
REASONING_MODELS: Final = ("o1", "o3", "o4", "gpt-5", "gpt-6", "gpt-oss")  # upstream id prefixes that reason
ENCRYPTED_PREFIX: Final = "gAAAAAsim"  # this simulator's `encrypted_content` (Fernet-like, as OpenAI's looks)
SEARCH_TOOLS: Final = frozenset({"web_search", "web_search_preview"})
SEARCH_HOST: Final = "search.simulator.invalid"
MIN_OUTPUT_TOKENS: Final = 16  # OpenAI's floor for max_output_tokens


def _text_of(content: JSON) -> tuple[str, int]:
    """A message's text and its image count (content as a string or a list of parts)."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise invalid("Invalid type for 'input[].content': expected a string or an array.", "input")
    texts = [
        str(p.get("text") or p.get("refusal") or "")
        for p in content
        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "refusal")
    ]
    images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "input_image")
    return " ".join(texts), images


def read_items(items: list[JSON]) -> tuple[list[str], int, str, str | None]:
    """(texts, images, last user text, the tool result when the last item is one), validating call ids."""
    texts: list[str] = []
    images, last_user, calls = 0, "", set[str]()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise invalid(
                    f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and "
                    "'developer'.",
                    f"input[{i}].role",
                )
            text, n = _text_of(item.get("content"))
            texts.append(text)
            images += n
            if role == "user":
                last_user = text
        elif kind == "function_call":
            calls.add(str(item.get("call_id")))
            texts += [str(item.get("name") or ""), str(item.get("arguments") or "")]
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise invalid(
                    f"No tool call found for function call output with call_id {item.get('call_id')}.",
                    "input",
                )
            output = item.get("output")
            texts.append(output if isinstance(output, str) else _text_of(output)[0])
        elif kind == "reasoning":
            encrypted = item.get("encrypted_content")
            if encrypted is not None and not str(encrypted).startswith(ENCRYPTED_PREFIX):
                raise invalid(
                    "The encrypted content for item rs could not be verified.",
                    f"input[{i}].encrypted_content",
                )
        elif kind not in BUILT_IN_CALLS:
            raise invalid(
                f"Invalid value: '{kind}'. The simulator does not serve this item type.", f"input[{i}]"
            )
    last = items[-1] if items else {}
    tool_result = texts[-1] if isinstance(last, dict) and last.get("type") == "function_call_output" else None
    return texts, images, last_user, tool_result


# OpenAI's built-in tools. The simulated model calls `web_search` (see the module's doc) and never the
# others (a model may always answer without its tools), so a request that offers them gets a plain answer.
BUILT_IN_TOOLS: Final = frozenset(
    {
        "web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation",
        "computer_use_preview", "mcp", "local_shell", "shell", "apply_patch",
    }
)  # fmt: skip


# Output items of built-in tools, which a client may pass back in `input`.
BUILT_IN_CALLS: Final = frozenset(
    {"web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call", "computer_call"}
)


def read_tools(body: JSONObject) -> tuple[tuple[ToolSpec, ...], ToolMode, str | None]:
    tools: list[ToolSpec] = []
    built_in: set[str] = set()
    for i, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in BUILT_IN_TOOLS:
            built_in.add(str(kind))
            continue
        if kind != "function":
            raise invalid(
                f"Invalid value: '{kind}'. Supported values are: 'function', "
                + ", ".join(f"'{t}'" for t in sorted(BUILT_IN_TOOLS))
                + ".",
                f"tools[{i}].type",
            )
        if not TOOL_NAME.match(str(tool.get("name", ""))):
            raise invalid(
                f"Invalid 'tools[{i}].name': string does not match pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{i}].name",
            )
        tools.append(ToolSpec(tool["name"], tool.get("parameters") or {}, str(tool.get("description") or "")))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in built_in:
        return tuple(tools), "auto", None  # a built-in tool forced: answered without it (see BUILT_IN_TOOLS)
    if isinstance(choice, dict):
        name = choice.get("name")
        if choice.get("type") != "function" or name not in {t.name for t in tools}:
            raise invalid(
                "Invalid value for 'tool_choice': no function with that name in 'tools'.", "tool_choice"
            )
        return tuple(tools), "tool", name
    modes: Mapping[Any, ToolMode] = {None: "auto", "auto": "auto", "none": "none", "required": "any"}
    if choice not in modes:
        raise invalid(
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.", "tool_choice"
        )
    return tuple(tools), modes[choice], None


def parse_request(body: JSONObject, call: Call, history: list[JSON]) -> Prompt:
    if call.provider.listing in STRICT_LISTINGS:
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {unknown[0]}")
    raw = body.get("input")
    items: list[JSON] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    if not isinstance(items, list):
        raise invalid("Invalid type for 'input': expected a string or an array.", "input")
    if not items and not history:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    max_output = body.get("max_output_tokens")
    if max_output is not None and (not isinstance(max_output, int) or max_output < MIN_OUTPUT_TOKENS):
        raise invalid(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    instructions = body.get("instructions")
    texts, images, last_user, tool_result = read_items([*history, *items])
    if isinstance(instructions, str) and instructions:
        texts.insert(0, instructions)
    tools, mode, forced = read_tools(body)
    fmt = (body.get("text") or {}).get("format") or {}
    kind = fmt.get("type", "text")
    if kind == "json_object" and not any("json" in t.lower() for t in texts):
        raise invalid(
            "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
            "'json_object'.",
            "input",
        )
    schema = fmt.get("schema") if kind == "json_schema" else None
    return Prompt(
        texts=tuple(texts),
        message_count=len(texts),
        last_user_text=last_user,
        image_count=images,
        tools=tools,
        tools_json=dumps(body["tools"]) if tools else "",
        tool_mode=mode,
        forced_tool=forced,
        tool_result=tool_result,
        json_mode=kind == "json_object",
        json_schema=schema if isinstance(schema, dict) else None,
        max_tokens=max_output,
    )


@frozen
class Extras:
    """What the Responses model adds to the shared answer: its reasoning item and its web search."""

    reasoning: str | None = None  # the reasoning text (None: no reasoning item)
    summary: bool = False  # the summary is shown (`reasoning.summary` asked)
    encrypted: str | None = None  # `encrypted_content` (`include` asked)
    reasoning_tokens: int = 0
    search: JSONObject | None = None  # the finished web_search_call item
    citation: JSONObject | None = None  # its url_citation annotation on the answer text


NO_EXTRAS: Final = Extras()


def reasoning_extras(
    body: JSONObject, model: SimModel, prompt: Prompt, label: str, digest: str, count: Any
) -> Extras:
    """A reasoning model asked for its summary or its encrypted content: the shared thought
    (`behaviour.thinking_text`) as its reasoning item."""
    raw_reasoning, raw_include = body.get("reasoning"), body.get("include")
    reasoning: JSONObject = raw_reasoning if isinstance(raw_reasoning, dict) else {}
    include: list[Any] = raw_include if isinstance(raw_include, list) else []
    summary = reasoning.get("summary") is not None
    encrypted = "reasoning.encrypted_content" in include
    thinks = model.upstream_id.startswith(REASONING_MODELS) and reasoning.get("effort") != "none"
    if not thinks or not (summary or encrypted):
        return NO_EXTRAS
    text = behaviour.thinking_text(prompt, label)
    token = base64.urlsafe_b64encode(bytes.fromhex(digest[:32])).decode()
    return Extras(text, summary, ENCRYPTED_PREFIX + token if encrypted else None, count(text))


def search_query(body: JSONObject, prompt: Prompt, answer: Answer) -> str | None:
    """The model searches when `web_search` is offered and forced, or the user's text mentions searching."""
    tools = body.get("tools") or ()
    if not any(isinstance(t, dict) and t.get("type") in SEARCH_TOOLS for t in tools):
        return None
    if answer.tool_call is not None or answer.finish != "stop" or prompt.tool_result is not None:
        return None
    choice = body.get("tool_choice")
    forced = isinstance(choice, dict) and choice.get("type") in SEARCH_TOOLS
    asked = re.search(r"\b(search|web|look up)\b", prompt.last_user_text, re.IGNORECASE) is not None
    if choice == "none" or not (forced or asked):
        return None
    return prompt.last_user_text.strip()[:200] or "search"


def with_search(
    extras: Extras, body: JSONObject, answer: Answer, query: str, count: Any
) -> tuple[Extras, Answer]:
    """The search's item, and the answer citing its one (fake) result: `([host](url))` after the text."""
    url = f"https://{SEARCH_HOST}/{answer.digest[:16]}"
    title = f"Simulated search result for {query[:60]!r}"
    action: JSONObject = {"type": "search", "query": query}
    if "web_search_call.action.sources" in (body.get("include") or ()):
        action["sources"] = [{"type": "url", "url": url}]
    item = {
        "id": f"ws_{answer.digest[:32]}",
        "type": "web_search_call",
        "status": "completed",
        "action": action,
    }
    link = f"[{SEARCH_HOST}]({url})"
    text = f"{answer.text} ({link})"
    start = len(answer.text) + 2
    citation = {
        "type": "url_citation",
        "start_index": start,
        "end_index": start + len(link),
        "url": url,
        "title": title,
    }
    cited = replace(
        answer, text=text, completion_tokens=answer.completion_tokens + count(text[len(answer.text) :])
    )
    return replace(extras, search=item, citation=citation), cited


def _usage(answer: Answer, extras: Extras) -> JSONObject:
    output = answer.completion_tokens + extras.reasoning_tokens
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": extras.reasoning_tokens},
        "total_tokens": answer.prompt_tokens + output,
    }


def _reasoning_item(answer: Answer, extras: Extras) -> JSONObject:
    shown = (
        [{"type": "summary_text", "text": extras.reasoning}] if extras.summary and extras.reasoning else []
    )
    item: JSONObject = {"id": f"rs_{answer.digest[:32]}", "type": "reasoning", "summary": shown}
    if extras.encrypted is not None:
        item["encrypted_content"] = extras.encrypted
    return item


def _items(answer: Answer, extras: Extras) -> list[JSONObject]:
    status = "incomplete" if answer.finish == "length" else "completed"
    lead: list[JSONObject] = [_reasoning_item(answer, extras)] if extras.reasoning is not None else []
    if extras.search is not None:
        lead.append(extras.search)
    if answer.tool_call is not None:
        return [
            *lead,
            {
                "id": f"fc_{answer.digest[:32]}",
                "type": "function_call",
                "status": "completed",
                "arguments": answer.tool_call.arguments_json,
                "call_id": f"call_{answer.digest[:24]}",
                "name": answer.tool_call.name,
            },
        ]
    annotations = [extras.citation] if extras.citation is not None else []
    return [
        *lead,
        {
            "id": f"msg_{answer.digest[:32]}",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": answer.text, "annotations": annotations, "logprobs": []}
            ],
        },
    ]


def render(
    answer: Answer,
    model: SimModel,
    body: JSONObject,
    rid: str,
    status: str | None = None,
    extras: Extras = NO_EXTRAS,
) -> JSONObject:
    done = "incomplete" if answer.finish == "length" else "completed"
    final = status is None
    reasoning = body.get("reasoning") or {}
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": done if final else status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if final and done == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model.upstream_id,
        "output": _items(answer, extras) if final else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": _usage(answer, extras) if final else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def render_events(
    answer: Answer, model: SimModel, body: JSONObject, rid: str, extras: Extras = NO_EXTRAS
) -> list[Event]:
    """created, in_progress, each item's added/deltas/done events, then completed (or incomplete)."""
    events: list[JSONObject] = []

    def emit(kind: str, **payload: JSON) -> None:
        events.append({"type": kind, "sequence_number": len(events), **payload})

    emit("response.created", response=render(answer, model, body, rid, "in_progress"))
    emit("response.in_progress", response=render(answer, model, body, rid, "in_progress"))
    final = render(answer, model, body, rid, extras=extras)
    for index, item in enumerate(final["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            for n, part in enumerate(item["summary"]):
                empty = {"type": "summary_text", "text": ""}
                emit("response.reasoning_summary_part.added", **where, summary_index=n, part=empty)
                for delta in behaviour.word_deltas(part["text"]):
                    emit("response.reasoning_summary_text.delta", **where, summary_index=n, delta=delta)
                emit("response.reasoning_summary_text.done", **where, summary_index=n, text=part["text"])
                emit("response.reasoning_summary_part.done", **where, summary_index=n, part=part)
        elif item["type"] == "web_search_call":
            added = {**item, "status": "in_progress", "action": {"type": "search"}}
            emit("response.output_item.added", output_index=index, item=added)
            for phase in ("in_progress", "searching", "completed"):
                emit(f"response.web_search_call.{phase}", **where)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for frag in behaviour.json_fragments(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=frag)
            emit(
                "response.function_call_arguments.done",
                **where,
                arguments=item["arguments"],
                name=item["name"],
            )
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "content": [], "status": "in_progress"},
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            emit("response.content_part.added", **where, content_index=0, part=part)
            for delta in behaviour.word_deltas(answer.text):
                emit("response.output_text.delta", **where, content_index=0, delta=delta, logprobs=[])
            for n, annotation in enumerate(item["content"][0]["annotations"]):
                emit(
                    "response.output_text.annotation.added",
                    **where,
                    content_index=0,
                    annotation_index=n,
                    annotation=annotation,
                )
            emit("response.output_text.done", **where, content_index=0, text=answer.text, logprobs=[])
            emit("response.content_part.done", **where, content_index=0, part=item["content"][0])
        emit("response.output_item.done", output_index=index, item=item)
    emit(f"response.{final['status']}", response=final)
    return [Event(e, e["type"]) for e in events]


def _history(call: Call, previous: JSON) -> list[JSON]:
    if previous is None:
        return []
    stored = call.responses.get(str(previous))
    if stored is None or stored["provider"] != call.provider.name:
        raise invalid(f"Previous response with id '{previous}' not found.", "previous_response_id")
    return [*stored["history"], *stored["response"]["output"]]


async def create(call: Call) -> web.StreamResponse:
    body = call.json_object(BAD_JSON)
    history = _history(call, body.get("previous_response_id"))
    prompt = parse_request(body, call, history)
    model = find_model(call.provider, body, "chat", "v1/responses")
    label = f"{call.provider.name}/{model.upstream_id}"
    answer = behaviour.answer(prompt, label, call.count_tokens)
    extras = reasoning_extras(body, model, prompt, label, answer.digest, call.count_tokens)
    query = search_query(body, prompt, answer)
    if query is not None:
        extras, answer = with_search(extras, body, answer, query, call.count_tokens)
    rid = f"resp_{behaviour.stable_hash(answer.digest, str(len(call.responses)))[:48]}"
    final = render(answer, model, body, rid, extras=extras)
    if body.get("store", True):
        raw = body.get("input")
        items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
        call.responses[rid] = {
            "provider": call.provider.name,
            "response": final,
            "history": [*history, *items],
        }
    if not body.get("stream"):
        return json_response(final)
    return await send_events(call, render_events(answer, model, body, rid, extras))


def _stored(call: Call) -> JSONObject:
    stored = call.responses.get(call.tail)
    if stored is None or stored["provider"] != call.provider.name:
        raise SimError(404, f"Response with id '{call.tail}' not found.", param="response_id")
    return stored


async def retrieve(call: Call) -> web.StreamResponse:
    return json_response(_stored(call)["response"])


async def delete(call: Call) -> web.StreamResponse:
    _stored(call)
    del call.responses[call.tail]
    return json_response({"id": call.tail, "object": "response", "deleted": True})


ENDPOINTS: Final = (
    Endpoint("POST", "/responses", create),
    Endpoint("GET", "/responses/*", retrieve),
    Endpoint("DELETE", "/responses/*", delete),
)
