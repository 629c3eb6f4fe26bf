"""Canonical response → what an OpenAI client reads: a `chat.completion` object, or `chat.completion.chunk`
SSE frames written by a per-response encoder (with faregate's `usage.cost` and `x-faregate`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from faregate.canonical import (
    ChatResponse,
    Choice,
    Finish,
    FinishReason,
    JSONObject,
    ProviderEvent,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from faregate.errors import FaregateError, openai_envelope
from faregate.providers.openai.request import render_tool_call
from faregate.providers.openai.thoughts import render_delta, render_fields
from faregate.providers.wire import dumps

# OpenAI has no "error" finish reason: a stream that fails ends with an error event instead.
FINISH_REASONS: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "content_filter": "content_filter",
        "error": "stop",
    }
)
EXTRAS_KEY: Final = "x-faregate"
DONE: Final = b"data: [DONE]\n\n"


ID_PREFIX: Final = "chatcmpl-"


def new_id() -> str:
    return ID_PREFIX + secrets.token_hex(12)


def render_usage(usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    out: JSONObject = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    if "cost" in extras:
        # OpenRouter's usage accounting block: the cost is what the upstream charges at its prices.
        out["cost"] = extras["cost"]
        out["is_byok"] = False
        out["cost_details"] = {"upstream_inference_cost": extras["cost"]}
    return out


def response_id(resp: ChatResponse, extras: Mapping[str, Any]) -> str:
    """`chatcmpl-<request id>`: unique per request, and `GET /v1/requests/{it}` finds the trace."""
    rid = extras.get(EXTRAS_KEY, {}).get("request_id")
    return ID_PREFIX + rid if isinstance(rid, str) and rid else resp.id or new_id()


def render_choice(index: int, choice: Choice) -> JSONObject:
    message: JSONObject = {
        "role": "assistant",
        "content": choice.text if choice.text or not choice.tool_calls else None,
        "refusal": None,
    }
    if choice.tool_calls:
        message["tool_calls"] = [render_tool_call(c) for c in choice.tool_calls]
    return {
        "index": index,
        "message": message,
        "logprobs": None if choice.logprobs is None else dict(choice.logprobs),
        "finish_reason": FINISH_REASONS[choice.finish_reason],
    }


def render_chat(resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
    first = Choice(resp.text, resp.tool_calls, resp.finish_reason, resp.logprobs)
    choices = [render_choice(i, c) for i, c in enumerate((first, *resp.more_choices))]
    choices[0]["message"].update(render_fields(resp.thoughts))
    body: JSONObject = {
        "id": response_id(resp, extras),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": model,
        "choices": choices,
        "usage": render_usage(usage, extras),
        "system_fingerprint": extras.get("system_fingerprint"),
    }
    if EXTRAS_KEY in extras:
        body[EXTRAS_KEY] = extras[EXTRAS_KEY]
    return body


_OPEN_CHOICE: Final = b'{"index":0,"delta":'
_CLOSE_CHOICE: Final = b',"logprobs":null,"finish_reason":null}'
_ROLE_DELTA: Final = b'{"role":"assistant","content":"","refusal":null}'
# The first choice's last delta, per finish reason: `{"index":0,"delta":{},"logprobs":null,"finish_reason":..}`.
_END_CHOICE: Final[Mapping[FinishReason, bytes]] = MappingProxyType(
    {
        reason: _OPEN_CHOICE + b'{},"logprobs":null,"finish_reason":' + dumps(wire) + b"}"
        for reason, wire in FINISH_REASONS.items()
    }
)


@dataclass(slots=True)
class OpenAIStreamEncoder:
    """Every chunk shares `id`, `created` and `model`; the constant bytes around each delta are built once."""

    start_usage: ClassVar[bool] = False  # OpenAI's stream reports usage once, at the end
    model: str
    include_usage: bool
    id: str = field(default_factory=new_id)
    created: int = field(default_factory=lambda: int(time.time()))
    own_id: bool = False  # `id` is faregate's (from the request id): the upstream's never replaces it
    started: bool = False
    opened: set[int] = field(default_factory=set)  # choices after 0 whose role chunk has been sent
    thought: int = 0  # index of the open thought in `reasoning_details` (a signature closes it)
    _head: bytes = field(default=b"", init=False, repr=False)
    _tail: bytes = field(default=b"", init=False, repr=False)

    def __post_init__(self) -> None:
        self._tail = b'],"usage":null}\n\n' if self.include_usage else b"]}\n\n"
        self._build_head()

    def _build_head(self) -> None:
        self._head = b"".join(
            (
                b'data: {"id":',
                dumps(self.id),
                b',"object":"chat.completion.chunk","created":',
                str(self.created).encode(),
                b',"model":',
                dumps(self.model),
                b',"choices":[',
            )
        )

    def _chunk(self, delta: bytes) -> bytes:
        return self._head + _OPEN_CHOICE + delta + _CLOSE_CHOICE + self._tail

    def _start(self) -> bytes:
        """The role chunk OpenAI opens every stream with (sent once, even if `Start` never came)."""
        if self.started:
            return b""
        self.started = True
        return self._chunk(_ROLE_DELTA)

    def _choice_chunk(self, n: int, delta: JSONObject, logprobs: tuple[Mapping[str, Any], ...] = ()) -> bytes:
        """A delta of choice `n` (OpenAI's `n`), or one carrying logprobs: built whole, not from the
        constant bytes of choice 0's plain deltas. A choice after 0 gets its role chunk first."""
        head = b""
        if n and n not in self.opened:
            self.opened.add(n)
            head = self._choice_chunk(n, {"role": "assistant", "content": ""})
        choice = {
            "index": n,
            "delta": delta,
            "logprobs": {"content": list(logprobs), "refusal": None} if logprobs else None,
            "finish_reason": None,
        }
        return head + self._frame([choice], {"usage": None} if self.include_usage else {})

    def _delta(self, n: int, delta: JSONObject, logprobs: tuple[Mapping[str, Any], ...] = ()) -> bytes:
        if n or logprobs:
            return self._start() + self._choice_chunk(n, delta, logprobs)
        return self._start() + self._chunk(dumps(delta))

    def text(self, text: str) -> bytes:
        """A text delta of the first choice, without logprobs (most of a stream): `encode(TextDelta(text))`."""
        return self._start() + self._chunk(b'{"content":' + dumps(text) + b"}")

    def encode(self, ev: StreamEvent) -> bytes:
        match ev:
            case Start():
                if ev.id and not self.started and not self.own_id:
                    self.id = ev.id
                    self._build_head()
                return self._start()
            case TextDelta():
                if ev.choice or ev.logprobs:
                    return self._delta(ev.choice, {"content": ev.text}, ev.logprobs)
                return self.text(ev.text)
            case ToolCallStart():
                call = {
                    "index": ev.index,
                    "id": ev.id,
                    "type": "function",
                    "function": {"name": ev.name, "arguments": ""},
                }
                return self._delta(ev.choice, {"tool_calls": [call]})
            case ToolArgsDelta():
                call = {"index": ev.index, "function": {"arguments": ev.arguments}}
                return self._delta(ev.choice, {"tool_calls": [call]})
            case Finish():
                return self.finish(ev, ev.usage or Usage(), {})
            case ReasoningDelta():
                out = self._delta(ev.choice, render_delta(ev, self.thought))
                if ev.signature is not None or ev.redacted:
                    self.thought += 1
                return out
            case ProviderEvent():
                return b""  # another format's own event

    def _frame(self, choices: list[JSONObject], fields: JSONObject) -> bytes:
        chunk: JSONObject = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        chunk.update(fields)
        return b"data: " + dumps(chunk) + b"\n\n"

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        """The finish-reason chunk, then (with `include_usage`, as OpenAI does) a `choices: []` chunk with the
        usage; `x-faregate` rides on the last chunk. Without `include_usage` no empty-choices chunk is sent:
        clients that did not ask for one often read `choices[0]` unguarded."""
        if not finish.more:  # one choice (most streams): the chunks from constant bytes
            return self._finish_first(finish, usage, extras)
        reasons = [(0, finish.finish_reason), *finish.more]
        ends: list[JSONObject] = [
            {"index": n, "delta": {}, "logprobs": None, "finish_reason": FINISH_REASONS[reason]}
            for n, reason in reasons
        ]
        trailer: JSONObject = {EXTRAS_KEY: extras[EXTRAS_KEY]} if EXTRAS_KEY in extras else {}
        if not self.include_usage:
            body = b"".join(self._frame([end], {}) for end in ends[:-1])
            return self._start() + body + self._frame([ends[-1]], trailer) + DONE
        body = b"".join(self._frame([end], {"usage": None}) for end in ends)
        last = self._frame([], {"usage": render_usage(usage, extras), **trailer})
        return self._start() + body + last + DONE

    def _finish_first(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        """`finish` for an answer of one choice: what `_frame` writes, from `_head` and constant bytes."""
        head, end = self._start() + self._head, _END_CHOICE[finish.finish_reason]
        trailer = b',"x-faregate":' + dumps(extras[EXTRAS_KEY]) if EXTRAS_KEY in extras else b""
        if not self.include_usage:
            return head + end + b"]" + trailer + b"}\n\n" + DONE
        usage_json = dumps(render_usage(usage, extras))
        return head + end + self._tail + self._head + b'],"usage":' + usage_json + trailer + b"}\n\n" + DONE

    def error(self, err: FaregateError) -> bytes:
        return b"data: " + dumps(openai_envelope(err)) + b"\n\n" + DONE
