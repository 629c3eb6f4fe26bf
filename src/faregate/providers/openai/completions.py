"""OpenAI's legacy completions (`POST /v1/completions`) as a client speaks them, translated to chat: the
prompt is one user message, the answer's text is the completion (after the prompt when `echo`).

A body is read here into the chat-completions body it stands for, which the chat inbound then validates (the
sampling fields share their names). What chat has no place for is handled here: `echo` by the renderer,
`logprobs: N` as chat's `logprobs` + `top_logprobs` (rendered back in the completions shape), `suffix` and
`best_of` reported in `dropped_params`. `max_tokens` defaults to 16, as OpenAI's does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    Choice,
    Finish,
    FinishReason,
    JSONObject,
    Start,
    StreamEvent,
    TextDelta,
    Usage,
)
from faregate.errors import FaregateError, InvalidRequest, openai_envelope
from faregate.providers.openai.embeddings import Decode, is_tokens
from faregate.providers.openai.inbound import parse_chat as parse_chat_request
from faregate.providers.openai.render import DONE, EXTRAS_KEY, render_usage
from faregate.providers.wire import dumps
from faregate.values import frozen

ID_PREFIX: Final = "cmpl-"
DEFAULT_MAX_TOKENS: Final = 16  # OpenAI's default for legacy completions
MAX_LOGPROBS: Final = 5
# Read here; every other field goes on to the chat body as it is.
OWN_FIELDS: Final = frozenset({"prompt", "suffix", "echo", "logprobs", "best_of"})
FINISH_REASONS: Final[Mapping[FinishReason, str]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "content_filter": "content_filter",
    "error": "stop",
}


@frozen
class CompletionsRequest:
    chat_body: JSONObject  # the chat-completions body this request stands for
    prompt: str
    echo: bool = False
    dropped: tuple[str, ...] = ()  # completions fields chat cannot carry
    from_tokens: bool = False  # the prompt came as token ids (decoded into `prompt`)


def parse_prompt(raw: object, model: str | None, decode: Decode | None) -> tuple[str, bool]:
    """One prompt: a string or a token array (decoded), alone or as the only item of a list. Returns the
    text and whether it came as tokens."""
    if isinstance(raw, list) and len(raw) == 1 and (isinstance(raw[0], str) or is_tokens(raw[0])):
        raw = raw[0]
    if isinstance(raw, str):
        return raw, False
    if is_tokens(raw):
        if decode is None:
            raise InvalidRequest("token-array prompts are not supported here: send text", param="prompt")
        try:
            return decode(raw, model), True
        except ValueError as e:
            raise InvalidRequest(f"'prompt': {e}", param="prompt") from None
    if isinstance(raw, list) and len(raw) > 1:
        raise InvalidRequest(
            "faregate answers one prompt per request: send each prompt on its own", param="prompt"
        )
    if raw is None:
        raise InvalidRequest("'prompt' is a required property", param="prompt")
    raise InvalidRequest("'prompt' must be a string or a list of token ids", param="prompt")


def parse_completions(body: object, decode: Decode | None = None) -> CompletionsRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    model = body.get("model")
    prompt, from_tokens = parse_prompt(body.get("prompt"), model if isinstance(model, str) else None, decode)
    chat: JSONObject = {k: v for k, v in body.items() if k not in OWN_FIELDS}
    chat["messages"] = [{"role": "user", "content": prompt}]
    if chat.get("max_tokens") is None:
        chat["max_tokens"] = DEFAULT_MAX_TOKENS
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= MAX_LOGPROBS:
            raise InvalidRequest(f"'logprobs' must be an integer from 0 to {MAX_LOGPROBS}", param="logprobs")
        chat["logprobs"] = True
        chat["top_logprobs"] = logprobs
    echo = body.get("echo", False)
    if not isinstance(echo, bool) and echo is not None:
        raise InvalidRequest("'echo' must be a boolean", param="echo")
    dropped = tuple(
        k for k, unset in (("suffix", (None, "")), ("best_of", (None, 1))) if body.get(k) not in unset
    )
    return CompletionsRequest(chat, prompt, bool(echo), dropped, from_tokens)


def parse_request(parsed: CompletionsRequest) -> tuple[ChatRequest, JSONObject]:
    """The canonical chat request (and routing fields) a parsed completions request stands for."""
    return parse_chat_request(parsed.chat_body)


def random_id() -> str:
    return ID_PREFIX + secrets.token_hex(12)


# --- rendering -------------------------------------------------------------------------------------


def completion_id(extras: Mapping[str, Any]) -> str:
    """`cmpl-<request id>`: unique per request, and `GET /v1/requests/{it}` finds the trace."""
    rid = extras.get(EXTRAS_KEY, {}).get("request_id")
    return ID_PREFIX + rid if isinstance(rid, str) and rid else random_id()


def completion_logprobs(chat: Mapping[str, Any] | None, offset: int) -> JSONObject | None:
    """Chat's `logprobs.content` in the completions shape: `tokens`, `token_logprobs`, `top_logprobs`
    (token -> logprob per position) and `text_offset` (from `offset`, the echoed prompt's length)."""
    if chat is None:
        return None
    content = [c for c in chat.get("content") or () if isinstance(c, Mapping)]
    offsets: list[int] = []
    for c in content:
        offsets.append(offset)
        offset += len(str(c.get("token", "")))
    return {
        "tokens": [c.get("token") for c in content],
        "token_logprobs": [c.get("logprob") for c in content],
        "top_logprobs": [
            {t.get("token"): t.get("logprob") for t in c.get("top_logprobs") or () if isinstance(t, Mapping)}
            for c in content
        ],
        "text_offset": offsets,
    }


def with_dropped(extras: JSONObject, dropped: tuple[str, ...]) -> JSONObject:
    """`extras` with the completions fields chat could not carry added to `dropped_params`."""
    info = extras.get(EXTRAS_KEY)
    if not dropped or not isinstance(info, dict) or not isinstance(info.get("routing"), dict):
        return extras
    routing = {**info["routing"], "dropped_params": [*info["routing"].get("dropped_params", ()), *dropped]}
    return {**extras, EXTRAS_KEY: {**info, "routing": routing}}


@frozen
class CompletionsInbound:
    """The `Inbound` for `POST /v1/completions`, made per request: it knows the prompt to echo."""

    echo: str = ""  # the prompt, when the client asked for it back before each completion
    dropped: tuple[str, ...] = ()

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        return parse_request(parse_completions(body))

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        extras = with_dropped(extras, self.dropped)
        first = Choice(resp.text, (), resp.finish_reason, resp.logprobs)
        body: JSONObject = {
            "id": completion_id(extras),
            "object": "text_completion",
            "created": resp.created or int(time.time()),
            "model": model,
            "choices": [
                {
                    "text": self.echo + c.text,
                    "index": i,
                    "logprobs": completion_logprobs(c.logprobs, len(self.echo)),
                    "finish_reason": FINISH_REASONS[c.finish_reason],
                }
                for i, c in enumerate((first, *resp.more_choices))
            ],
            "usage": render_usage(usage, extras),
        }
        if EXTRAS_KEY in extras:
            body[EXTRAS_KEY] = extras[EXTRAS_KEY]
        return body

    def stream_encoder(
        self, model: str, include_usage: bool, request_id: str = ""
    ) -> CompletionsStreamEncoder:
        rid = ID_PREFIX + request_id if request_id else random_id()
        return CompletionsStreamEncoder(model, include_usage, rid, echo=self.echo, dropped=self.dropped)

    def error_body(self, err: FaregateError) -> JSONObject:
        return openai_envelope(err)


@dataclass(slots=True)
class CompletionsStreamEncoder:
    """`text_completion` chunks: the echoed prompt first (when asked), each text delta (of each choice, with
    its logprobs when asked), then the finish-reason chunks, the usage chunk (`choices: []`, with
    `include_usage`) and `[DONE]`."""

    start_usage: ClassVar[bool] = False
    model: str
    include_usage: bool
    id: str
    created: int = field(default_factory=lambda: int(time.time()))
    echo: str = ""
    dropped: tuple[str, ...] = ()
    offsets: dict[int, int] = field(default_factory=dict)  # choice -> characters sent so far (echo included)

    def _frame(self, choices: list[JSONObject], fields: JSONObject | None = None) -> bytes:
        chunk: JSONObject = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **(fields or {}),
        }
        return b"data: " + dumps(chunk) + b"\n\n"

    def _open(self, n: int) -> bytes:
        """Choice `n`'s echoed prompt, before its first text (once per choice)."""
        if n in self.offsets:
            return b""
        self.offsets[n] = 0
        return self._emit(n, self.echo) if self.echo else b""

    def _emit(self, n: int, text: str, logprobs: JSONObject | None = None) -> bytes:
        self.offsets[n] += len(text)
        return self._frame([{"text": text, "index": n, "logprobs": logprobs, "finish_reason": None}])

    def _text(self, n: int, text: str, tokens: tuple[Mapping[str, Any], ...] = ()) -> bytes:
        head = self._open(n)
        logprobs = completion_logprobs({"content": tokens}, self.offsets[n]) if tokens else None
        return head + self._emit(n, text, logprobs)

    def _start(self) -> bytes:
        return self._open(0)

    def encode(self, ev: StreamEvent) -> bytes:
        match ev:
            case Start():
                return self._start()
            case TextDelta() if ev.text or ev.logprobs:
                return self._start() + self._text(ev.choice, ev.text, ev.logprobs)
            case Finish():
                return self.finish(ev, ev.usage or Usage(), {})
            case _:
                return b""

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        extras = with_dropped(extras, self.dropped)
        trailer: JSONObject = {EXTRAS_KEY: extras[EXTRAS_KEY]} if EXTRAS_KEY in extras else {}
        ends: list[JSONObject] = [
            {"text": "", "index": n, "logprobs": None, "finish_reason": FINISH_REASONS[reason]}
            for n, reason in ((0, finish.finish_reason), *finish.more)
        ]
        if not self.include_usage:
            body = b"".join(self._frame([end]) for end in ends[:-1])
            return self._start() + body + self._frame([ends[-1]], trailer) + DONE
        last = self._frame([], {"usage": render_usage(usage, extras), **trailer})
        return self._start() + b"".join(self._frame([end]) for end in ends) + last + DONE

    def error(self, err: FaregateError) -> bytes:
        return b"data: " + dumps(openai_envelope(err)) + b"\n\n" + DONE
