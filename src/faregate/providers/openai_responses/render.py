"""Canonical answers → what a Responses API client reads: the `response` object, and the semantic SSE
stream (`event:` lines, increasing `sequence_number`, no `[DONE]`) written by a per-response encoder.

`ResponseMeta` is the request's side of every response object (its id, creation time, the fields a
response echoes, and what the client asked to see of the reasoning); faregate's `usage.cost` and
`x-faregate` ride on the final object, as on chat. The object handed to the store (`on_final`) is whole:
every reasoning item keeps its summary and encrypted content, so `previous_response_id` can send each
thought back to its origin; the client sees them as it asked (`reasoning.view`).

Streamed, each thought is a `reasoning` item (`response.output_item.added`, then with summaries
`response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`/`.done`,
`response.reasoning_summary_part.done`, then `response.output_item.done`) ahead of the item that follows
it. A Responses upstream's own items and events (`web_search_call` and its
`response.web_search_call.in_progress`/`searching`/`completed`, `response.output_text.annotation.added`)
are relayed unchanged but for `sequence_number` and `output_index`, which are this stream's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from faregate.canonical import (
    ChatResponse,
    Finish,
    FinishReason,
    JSONObject,
    ProviderEvent,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    Thought,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    Usage,
)
from faregate.errors import FaregateError
from faregate.providers.openai_responses.items import (
    function_call_item,
    message_item,
    output_items,
    output_text_part,
)
from faregate.providers.openai_responses.reasoning import ORIGIN, reasoning_item, view, view_response
from faregate.providers.wire import dumps
from faregate.values import frozen

EXTRAS_KEY: Final = "x-faregate"
# Why an answer is incomplete, by canonical finish reason (the others complete it).
INCOMPLETE: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {"length": "max_output_tokens", "content_filter": "content_filter"}
)

NewId = Callable[[str], str]
OnFinal = Callable[[JSONObject], None]


@frozen
class ResponseMeta:
    id: str  # resp_…
    created_at: int
    echo: Mapping[str, Any]
    new_id: NewId  # item ids (rs_…, msg_…, fc_…)
    summaries: bool = False  # the client asked `reasoning.summary`: reasoning items carry their text
    encrypted: bool = False  # `include: ["reasoning.encrypted_content"]`

    def view(self, item: Mapping[str, Any]) -> JSONObject:
        return view(item, self.summaries, self.encrypted)

    def shown(self, response: JSONObject) -> JSONObject:
        """The response object as the client sees it (the stored one is whole)."""
        return view_response(response, self.summaries, self.encrypted)


def render_usage(usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    out: JSONObject = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }
    if "cost" in extras:
        out["cost"] = extras["cost"]
    return out


def status_of(finish: FinishReason) -> tuple[str, JSONObject | None]:
    reason = INCOMPLETE.get(finish)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(
    meta: ResponseMeta,
    model: str,
    status: str,
    output: list[JSONObject],
    *,
    usage: JSONObject | None = None,
    incomplete: JSONObject | None = None,
    error: JSONObject | None = None,
    extras: Mapping[str, Any] | None = None,
) -> JSONObject:
    body: JSONObject = {
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        **meta.echo,
        "usage": usage,
    }
    if extras and EXTRAS_KEY in extras:
        body[EXTRAS_KEY] = extras[EXTRAS_KEY]
    return body


def render_response(
    meta: ResponseMeta, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject
) -> JSONObject:
    """The whole response object (what is stored); `meta.shown` gives the client's view of it."""
    status, incomplete = status_of(resp.finish_reason)
    items = output_items(resp, meta.new_id, "incomplete" if status == "incomplete" else "completed")
    return response_object(
        meta,
        model,
        status,
        items,
        usage=render_usage(usage, extras),
        incomplete=incomplete,
        extras=extras,
    )


@dataclass(slots=True)
class _Open:
    """An output item being streamed: a message (text so far, annotations), a function call (arguments so
    far), a reasoning item (its text so far, then its signature), or a provider's own item (as last sent)."""

    index: int
    item_id: str
    call: ToolCall | None = None
    text: list[str] = field(default_factory=list)
    done: bool = False
    thought: Thought | None = None  # a reasoning item (its signature and origin, once known)
    provider: Mapping[str, Any] | None = None  # a Responses upstream's own item
    annotations: list[Mapping[str, Any]] = field(default_factory=list)
    summary_open: bool = False  # a reasoning item's summary part was announced to the client

    def whole(self, status: str) -> JSONObject:
        """The item as stored (`ResponseMeta.view` trims a reasoning item for the client)."""
        text = "".join(self.text)
        if self.provider is not None:
            return dict(self.provider)
        if self.thought is not None:
            t = Thought(text, self.thought.signature, self.thought.origin, self.thought.redacted)
            return reasoning_item(self.item_id, t)
        if self.call is not None:
            return function_call_item(self.item_id, ToolCall(self.call.id, self.call.name, text), status)
        return message_item(self.item_id, text, status, self.annotations)


@dataclass(slots=True)
class ResponsesStreamEncoder:
    """Canonical stream events → Responses API events. `on_final` receives the last response object
    (completed, incomplete or failed), whole, before its event is written, so a stored response is readable
    as soon as the client has seen it end."""

    start_usage: ClassVar[bool] = False  # usage rides on the final response object only
    meta: ResponseMeta
    model: str
    on_final: OnFinal | None = None
    seq: int = 0
    started: bool = False
    items: list[_Open] = field(default_factory=list)
    calls: dict[int, _Open] = field(default_factory=dict)  # canonical tool call index → its item
    message: _Open | None = None  # the message item currently taking text
    reasoning: _Open | None = None  # the reasoning item currently taking thought
    provided: dict[str, _Open] = field(default_factory=dict)  # a provider item's id → its item

    def _event(self, kind: str, payload: JSONObject) -> bytes:
        data = dumps({"type": kind, "sequence_number": self.seq, **payload})
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        snapshot = response_object(self.meta, self.model, "in_progress", [])
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def _add(self, item: _Open, shown: JSONObject) -> bytes:
        self.items.append(item)
        return self._event("response.output_item.added", {"output_index": item.index, "item": shown})

    def _open_message(self) -> bytes:
        out = self._close_reasoning()
        item = _Open(len(self.items), self.meta.new_id("msg_"))
        self.message = item
        out += self._add(item, message_item(item.item_id, "", "in_progress"))
        part = {
            "item_id": item.item_id,
            "output_index": item.index,
            "content_index": 0,
            "part": output_text_part(""),
        }
        return out + self._event("response.content_part.added", part)

    def _open_reasoning(self, ev: ReasoningDelta) -> bytes:
        out = self._close_message()
        thought = Thought("", None, ev.origin, ev.redacted)
        item = _Open(len(self.items), self.meta.new_id("rs_"), thought=thought)
        self.reasoning = item
        return out + self._add(item, reasoning_item(item.item_id, Thought()))

    def _close_message(self) -> bytes:
        item, self.message = self.message, None
        return b"" if item is None else self._close(item, "completed")

    def _close_reasoning(self) -> bytes:
        item, self.reasoning = self.reasoning, None
        return b"" if item is None else self._close(item, "completed")

    def _close(self, item: _Open, status: str) -> bytes:
        if item.done:
            return b""
        item.done = True
        if item is self.message:
            self.message = None
        if item is self.reasoning:
            self.reasoning = None
        where = {"item_id": item.item_id, "output_index": item.index}
        text = "".join(item.text)
        out = b""
        if item.provider is not None:
            pass  # closed by the upstream's own output_item.done, or left as last sent
        elif item.thought is not None:
            if item.summary_open:
                part = {"type": "summary_text", "text": text}
                out += self._event(
                    "response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text}
                )
                out += self._event(
                    "response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part}
                )
        elif item.call is None:
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
            )
            out += self._event(
                "response.content_part.done",
                {**where, "content_index": 0, "part": output_text_part(text, item.annotations)},
            )
        else:
            out += self._event(
                "response.function_call_arguments.done",
                {**where, "arguments": text, "name": item.call.name},
            )
        if item.provider is not None:
            return out
        shown = self.meta.view(item.whole(status))
        return out + self._event("response.output_item.done", {"output_index": item.index, "item": shown})

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        if ev.choice:
            return b""
        out = b""
        if ev.redacted or self.reasoning is None:
            out += self._close_reasoning() + self._open_reasoning(ev)
        item = self.reasoning
        assert item is not None and item.thought is not None
        if ev.text:
            where = {"item_id": item.item_id, "output_index": item.index, "summary_index": 0}
            if self.meta.summaries and not item.summary_open:
                item.summary_open = True
                part = {"type": "summary_text", "text": ""}
                out += self._event("response.reasoning_summary_part.added", {**where, "part": part})
            item.text.append(ev.text)
            if item.summary_open:
                out += self._event("response.reasoning_summary_text.delta", {**where, "delta": ev.text})
        if ev.signature is not None or ev.redacted:
            item.thought = Thought("", ev.signature, ev.origin or item.thought.origin, ev.redacted)
            out += self._close_reasoning()
        return out

    def _provider(self, ev: ProviderEvent) -> bytes:
        """A Responses upstream's own event, with this stream's output index (its item ids kept)."""
        if ev.origin != ORIGIN:
            return b""
        data = dict(ev.data)
        if ev.type == "response.output_item.added":
            raw = data.get("item")
            if not isinstance(raw, Mapping):
                return b""
            out = self._close_message() + self._close_reasoning()
            item = _Open(len(self.items), str(raw.get("id") or ""), provider=raw, done=False)
            self.provided[item.item_id] = item
            return out + self._add(item, dict(raw))
        if ev.type == "response.output_text.annotation.added":
            annotation = data.get("annotation")
            if not isinstance(annotation, Mapping):
                return b""
            out = b"" if self.message is not None else self._open_message()
            msg = self.message
            assert msg is not None
            msg.annotations.append(annotation)
            payload = {"item_id": msg.item_id, "output_index": msg.index, "content_index": 0}
            payload |= {"annotation_index": len(msg.annotations) - 1, "annotation": dict(annotation)}
            return out + self._event(ev.type, payload)
        raw = data.get("item")
        key = data.get("item_id") or (raw.get("id") if isinstance(raw, Mapping) else None)
        known = self.provided.get(str(key or ""))
        if known is None:
            return b""
        if ev.type == "response.output_item.done":
            if isinstance(raw, Mapping):
                known.provider = raw
            known.done = True
        data["output_index"] = known.index
        return self._event(ev.type, data)

    def encode(self, ev: StreamEvent) -> bytes:
        out = self._start()
        match ev:
            case Start():
                return out
            case ReasoningDelta():
                return out + self._reasoning(ev)
            case ProviderEvent():
                return out + self._provider(ev)
            case TextDelta():
                if self.message is None:
                    out += self._open_message()
                item = self.message
                assert item is not None
                item.text.append(ev.text)
                return out + self._event(
                    "response.output_text.delta",
                    {
                        "item_id": item.item_id,
                        "output_index": item.index,
                        "content_index": 0,
                        "delta": ev.text,
                        "logprobs": [],
                    },
                )
            case ToolCallStart():
                out += self._close_message() + self._close_reasoning()
                call = ToolCall(ev.id, ev.name, "")
                item = _Open(len(self.items), self.meta.new_id("fc_"), call)
                self.calls[ev.index] = item
                return out + self._add(item, function_call_item(item.item_id, call, "in_progress"))
            case ToolArgsDelta():
                call_item = self.calls.get(ev.index)
                if call_item is None or call_item.done:
                    return out
                call_item.text.append(ev.arguments)
                return out + self._event(
                    "response.function_call_arguments.delta",
                    {"item_id": call_item.item_id, "output_index": call_item.index, "delta": ev.arguments},
                )
            case Finish():
                return self.finish(ev, ev.usage or Usage(), {})

    def _output(self, status: str) -> list[JSONObject]:
        return [item.whole(status) for item in self.items]

    def _end(self, kind: str, final: JSONObject) -> bytes:
        if self.on_final is not None:
            self.on_final(final)
        return self._event(kind, {"response": self.meta.shown(final)})

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        out = self._start()
        status, incomplete = status_of(finish.finish_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        if not any(i.thought is None and i.provider is None for i in self.items):
            out += self._open_message()  # no answer is still one (empty) message, as non-streamed
        for item in self.items:
            out += self._close(item, item_status)
        final = response_object(
            self.meta,
            self.model,
            status,
            self._output(item_status),
            usage=render_usage(usage, extras),
            incomplete=incomplete,
            extras=extras,
        )
        return out + self._end(f"response.{status}", final)

    def error(self, err: FaregateError) -> bytes:
        """`response.failed` with the partial output (items still open are marked incomplete)."""
        out = self._start()
        for item in self.items:
            out += self._close(item, "incomplete")
        failed = response_object(
            self.meta,
            self.model,
            "failed",
            self._output("incomplete"),
            error={"code": "server_error", "message": err.message},
        )
        return out + self._end("response.failed", failed)
