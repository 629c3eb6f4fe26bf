"""A Responses API event stream (an `api: openai-responses` upstream) → canonical `StreamEvent`s.

Events are told apart by their `type` (the `event:` line says the same). Text deltas and function-call
argument deltas map one to one; a function call whose arguments arrive only in its `output_item.done`
still gets them. A reasoning item's summary (or raw reasoning text) deltas are `ReasoningDelta`s, and its
`encrypted_content`, read from its `output_item.done`, signs the thought. A built-in tool's items and
events (`web_search_call`, `response.web_search_call.searching`, ...) and the annotations of the text are
`ProviderEvent`s, for a Responses client to receive unchanged. The stream ends with `response.completed` or `response.incomplete`; `response.failed`,
an `error` event, or EOF before the end are protocol errors (the channel's fault).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faregate import jsonio
from faregate.canonical import (
    Finish,
    ProviderEvent,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
)
from faregate.providers.errors import protocol_error
from faregate.providers.openai_responses.reasoning import ORIGIN, SEPARATOR, summary_texts
from faregate.providers.openai_responses.response import _int, failure_message, finish_reason, parse_usage
from faregate.providers.sse import SseEvent
from faregate.providers.wire import mask_secrets

TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
ENDS = frozenset({"response.completed", "response.incomplete"})
CANONICAL_ITEMS = frozenset({"message", "function_call", "reasoning"})
ANNOTATION = "response.output_text.annotation.added"


def provider_event(kind: str) -> bool:
    """An event of a built-in tool's item (`response.web_search_call.searching`,
    `response.code_interpreter_call_code.delta`, `response.mcp_call_arguments.done`, ...)."""
    parts = kind.split(".")
    return (
        len(parts) == 3
        and parts[0] == "response"
        and "_call" in parts[1]
        and parts[1] != "function_call_arguments"
    )


@dataclass(slots=True)
class ResponsesStreamDecoder:
    started: bool = False
    finished: bool = False
    slots: dict[int, int] = field(default_factory=dict)  # output_index of a function call → canonical index
    args_seen: set[int] = field(default_factory=set)
    reasoning: dict[int, int] = field(
        default_factory=dict
    )  # a reasoning item's output_index → last part with text

    def feed(self, ev: SseEvent) -> list[StreamEvent]:
        if self.finished or not ev.data.strip():
            return []
        try:
            data = jsonio.loads(ev.data)
        except ValueError:
            raise protocol_error("stream: an event is not valid JSON") from None
        if not isinstance(data, dict):
            raise protocol_error("stream: an event is not a JSON object")
        kind = data.get("type") or ev.event
        out: list[StreamEvent] = []
        if not self.started:
            self.started = True
            response = _response(data)
            out.append(Start(str(response.get("id") or ""), str(response.get("model") or "")))
        out.extend(self._dispatch(kind, data))
        return out

    def _dispatch(self, kind: Any, data: dict[str, Any]) -> list[StreamEvent]:
        if kind in TEXT_DELTAS:
            delta = data.get("delta")
            return [TextDelta(delta)] if isinstance(delta, str) and delta else []
        index = _index(data)
        if kind in REASONING_DELTAS:
            delta = data.get("delta")
            if not isinstance(delta, str) or not delta:
                return []
            part = _int(data.get("summary_index"))
            before = self.reasoning.get(index)
            self.reasoning[index] = part
            lead = SEPARATOR if before is not None and before != part else ""  # the item's next summary part
            return [ReasoningDelta(lead + delta, origin=ORIGIN)]
        if kind == ANNOTATION or (isinstance(kind, str) and provider_event(kind)):
            return [ProviderEvent(kind, _payload(data), ORIGIN)]
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") not in CANONICAL_ITEMS:
                return [ProviderEvent(kind, _payload(data), ORIGIN)]
            if isinstance(item, dict) and item.get("type") == "reasoning":
                return self._reasoning_item(kind, index, item)
        if kind == "response.output_item.added":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                new_slot = self.slots[int(data.get("output_index") or 0)] = len(self.slots)
                call_id = str(item.get("call_id") or item.get("id") or "")
                events: list[StreamEvent] = [ToolCallStart(new_slot, call_id, str(item.get("name") or ""))]
                if item.get("arguments"):
                    self.args_seen.add(new_slot)
                    events.append(ToolArgsDelta(new_slot, str(item["arguments"])))
                return events
            return []
        if kind == "response.function_call_arguments.delta":
            slot = self.slots.get(int(data.get("output_index") or 0))
            delta = data.get("delta")
            if slot is None or not isinstance(delta, str) or not delta:
                return []
            self.args_seen.add(slot)
            return [ToolArgsDelta(slot, delta)]
        if kind == "response.output_item.done":
            slot = self.slots.get(int(data.get("output_index") or 0))
            item = data.get("item")
            if (
                slot is not None
                and slot not in self.args_seen
                and isinstance(item, dict)
                and item.get("arguments")
            ):
                self.args_seen.add(slot)
                return [ToolArgsDelta(slot, str(item["arguments"]))]
            return []
        if kind in ENDS:
            self.finished = True
            response = _response(data)
            reason = finish_reason(
                response.get("status"), response.get("incomplete_details"), bool(self.slots)
            )
            return [Finish(reason, parse_usage(response.get("usage")))]
        if kind == "response.failed":
            raise protocol_error(f"stream: upstream error: {failure_message(_response(data))}")
        if kind == "error":
            raise protocol_error(
                f"stream: upstream error: {mask_secrets(str(data.get('message') or 'error'))}"
            )
        return []

    def _reasoning_item(self, kind: str, index: int, item: dict[str, Any]) -> list[StreamEvent]:
        """A reasoning item's `output_item.done`: its text when no delta carried it, then its signature."""
        if kind != "response.output_item.done":
            return []
        out: list[StreamEvent] = []
        text = summary_texts(item)
        if index not in self.reasoning and text:
            out.append(ReasoningDelta(text, origin=ORIGIN))
        encrypted = item.get("encrypted_content")
        if isinstance(encrypted, str) and encrypted:
            out.append(ReasoningDelta("", signature=encrypted, origin=ORIGIN))
        return out

    def close(self) -> list[StreamEvent]:
        """EOF before `response.completed`: the answer may be cut anywhere, a protocol error."""
        if not self.finished:
            raise protocol_error("stream ended before response.completed")
        return []


def _index(data: dict[str, Any]) -> int:
    return _int(data.get("output_index"))


def _payload(data: dict[str, Any]) -> dict[str, Any]:
    """The event less what the client's stream numbers itself (`type`, `sequence_number`)."""
    return {k: v for k, v in data.items() if k not in ("type", "sequence_number")}


def _response(data: dict[str, Any]) -> dict[str, Any]:
    response = data.get("response")
    return response if isinstance(response, dict) else {}
