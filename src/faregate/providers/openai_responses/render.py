"""Canonical answers → what a Responses API client reads: the `response` object, and the semantic SSE
stream (`event:` lines, increasing `sequence_number`, no `[DONE]`) written by a per-response encoder.

`ResponseMeta` is the request's side of every response object (its id, creation time and the fields a
response echoes); faregate's `usage.cost` and `x-faregate` ride on the final object, as on chat.
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
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
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
from faregate.providers.wire import dumps

EXTRAS_KEY: Final = "x-faregate"
# Why an answer is incomplete, by canonical finish reason (the others complete it).
INCOMPLETE: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {"length": "max_output_tokens", "content_filter": "content_filter"}
)

NewId = Callable[[str], str]
OnFinal = Callable[[JSONObject], None]


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    id: str  # resp_…
    created_at: int
    echo: Mapping[str, Any]
    new_id: NewId  # item ids (msg_…, fc_…)


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
    """An output item being streamed: a message (text so far) or a function call (arguments so far)."""

    index: int
    item_id: str
    call: ToolCall | None = None
    text: list[str] = field(default_factory=list)
    done: bool = False


@dataclass(slots=True)
class ResponsesStreamEncoder:
    """Canonical stream events → Responses API events. `on_final` receives the last response object
    (completed, incomplete or failed) before its event is written, so a stored response is readable as
    soon as the client has seen it end."""

    start_usage: ClassVar[bool] = False  # usage rides on the final response object only
    meta: ResponseMeta
    model: str
    on_final: OnFinal | None = None
    seq: int = 0
    started: bool = False
    items: list[_Open] = field(default_factory=list)
    calls: dict[int, _Open] = field(default_factory=dict)  # canonical tool call index → its item
    message: _Open | None = None  # the message item currently taking text

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

    def _open_message(self) -> bytes:
        item = _Open(len(self.items), self.meta.new_id("msg_"))
        self.items.append(item)
        self.message = item
        added = self._event(
            "response.output_item.added",
            {"output_index": item.index, "item": message_item(item.item_id, "", "in_progress")},
        )
        part = self._event(
            "response.content_part.added",
            {
                "item_id": item.item_id,
                "output_index": item.index,
                "content_index": 0,
                "part": output_text_part(""),
            },
        )
        return added + part

    def _close(self, item: _Open, status: str) -> bytes:
        if item.done:
            return b""
        item.done = True
        where = {"item_id": item.item_id, "output_index": item.index}
        if item.call is None:
            if item is self.message:
                self.message = None
            text = "".join(item.text)
            return (
                self._event(
                    "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
                )
                + self._event(
                    "response.content_part.done",
                    {**where, "content_index": 0, "part": output_text_part(text)},
                )
                + self._event(
                    "response.output_item.done",
                    {"output_index": item.index, "item": message_item(item.item_id, text, status)},
                )
            )
        call = ToolCall(item.call.id, item.call.name, "".join(item.text))
        return self._event(
            "response.function_call_arguments.done",
            {**where, "arguments": call.arguments, "name": call.name},
        ) + self._event(
            "response.output_item.done",
            {"output_index": item.index, "item": function_call_item(item.item_id, call, status)},
        )

    def encode(self, ev: StreamEvent) -> bytes:
        out = self._start()
        match ev:
            case Start():
                return out
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
                if self.message is not None:
                    out += self._close(self.message, "completed")
                call = ToolCall(ev.id, ev.name, "")
                item = _Open(len(self.items), self.meta.new_id("fc_"), call)
                self.items.append(item)
                self.calls[ev.index] = item
                added = function_call_item(item.item_id, call, "in_progress")
                return out + self._event(
                    "response.output_item.added", {"output_index": item.index, "item": added}
                )
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
            case ReasoningDelta():
                return out  # reasoning output items: not yet rendered

    def _output(self, status: str) -> list[JSONObject]:
        out: list[JSONObject] = []
        for item in self.items:
            if item.call is None:
                out.append(message_item(item.item_id, "".join(item.text), status))
            else:
                call = ToolCall(item.call.id, item.call.name, "".join(item.text))
                out.append(function_call_item(item.item_id, call, status))
        return out

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        out = self._start()
        status, incomplete = status_of(finish.finish_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        if not self.items:
            out += self._open_message()  # an empty answer is still one (empty) message, as non-streamed
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
        if self.on_final is not None:
            self.on_final(final)
        return out + self._event(f"response.{status}", {"response": final})

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
        if self.on_final is not None:
            self.on_final(failed)
        return out + self._event("response.failed", {"response": failed})
