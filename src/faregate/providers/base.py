"""The seams of the providers layer: an upstream `Adapter` per wire format and an `Inbound` per client format.

Adapters are pure: they build an `UpstreamCall` (URL, headers, body bytes) and parse bytes back into
canonical types; the server owns the HTTP session and does the I/O. One adapter object per wire format,
looked up in `registry.py`; stream decoders and encoders are created per response (they hold state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, Protocol

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Finish,
    FinishReason,
    JSONObject,
    StreamEvent,
    Usage,
    WireApi,
)
from faregate.errors import FaregateError, UpstreamError
from faregate.providers.reasoning import ThoughtView
from faregate.providers.sse import SseEvent
from faregate.values import frozen


@frozen
class Target:
    """Where and how to call one channel: filled from a routing `Channel` by the server."""

    base_url: str  # the provider's API root as its docs give it (with /v1 for OpenAI-compatible ones)
    upstream_id: str  # the offering's model id at that provider
    api_key: str | None = field(default=None, repr=False)
    max_output_tokens: int | None = None  # the offering's limit; Anthropic needs max_tokens always
    params: frozenset[str] = frozenset()  # sampling fields beyond the format's own the upstream takes


@frozen
class UpstreamCall:
    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes | None
    dropped: tuple[str, ...] = ()  # request fields this format cannot carry (noted in the trace)
    local_stops: tuple[str, ...] = ()  # stop sequences not sent: faregate matches them (providers/stops.py)


class StreamDecoder(Protocol):
    """Turns one upstream SSE response into canonical events; `Finish` is always the last event."""

    def feed(self, ev: SseEvent) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]:
        """The upstream closed the stream: the events still owed (a `Finish` if none was seen yet)."""
        ...


class Adapter(Protocol):
    """One upstream wire format (`api:` in routes.yaml)."""

    api: WireApi

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall: ...

    def parse_chat_response(self, body: bytes) -> ChatResponse: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall: ...

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse: ...

    def parameters(self, upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
        """The chat-completions request fields that reach this model through this format, translated or
        as they are (what `GET /v1/models` lists as `supported_parameters`); others are dropped and noted.
        `declared`: the channel's `params` (OpenRouter sampling fields its provider says it takes), which
        only a format that forwards them counts."""
        ...

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        """An upstream non-2xx: retryable for 408/429/5xx, else the request's fault. Never keeps raw bodies
        that could hold secrets: only the structured error message and type."""
        ...


class StreamEncoder(Protocol):
    """Writes canonical events in a client's SSE format, one encoder per client response."""

    @property
    def start_usage(self) -> bool:
        """Does `encode(Start)` report the prompt's tokens (Anthropic's `message_start`)? Only then does
        the handler count them for an upstream whose `Start` has none."""
        ...

    def encode(self, ev: StreamEvent) -> bytes:
        """Bytes for one event other than `Finish` (may be b"" when the format has nothing to say)."""
        ...

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        """The closing events: finish reason, usage (with `cost`), the `x-faregate` object, terminator."""
        ...

    def error(self, err: FaregateError) -> bytes:
        """An error event ending a stream that has already started."""
        ...


class RelayedAnswer(Protocol):
    """An upstream answer read by a same-format path (the client and the upstream speak one format): the
    client's body is made from the upstream's own JSON, as the translated path would render it."""

    @property
    def usage(self) -> Usage: ...

    @property
    def finish_reason(self) -> FinishReason: ...

    def render(self, model: str, extras: Mapping[str, Any]) -> JSONObject:
        """The client's body, with `usage` and `extras` (`x-faregate`, `cost`)."""
        ...


# Upstream answer bytes → the relayed answer, or None when only the translated path can read it.
Relay = Callable[[bytes], RelayedAnswer | None]


class StreamRelay(StreamDecoder, Protocol):
    """A same-format path for a stream: it decodes the upstream's events (what the pipeline reads) and makes
    the client's bytes from them as it goes, as the translated path would write them."""

    @property
    def encoder(self) -> StreamEncoder:
        """Writes the closing events and errors, in the state the relayed bytes left it."""
        ...

    @property
    def text(self) -> list[str]:
        """What the upstream generated so far (answer, reasoning, tool arguments), for an estimate."""
        ...

    def take(self) -> bytes:
        """The client's bytes for the events fed since the last `take`."""
        ...


# (the model the client sees, include_usage, the request id, the client's view of thoughts) → the relay of
# one stream.
StreamRelayFor = Callable[[str, bool, str, ThoughtView], StreamRelay]


class Inbound(Protocol):
    """One client-facing format: OpenAI chat completions or Anthropic messages."""

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        """Wire → canonical. Returns the request and faregate's own routing fields (`provider`, `models`),
        which are consumed here and never forwarded. Raises `InvalidRequest` naming the bad `param`."""
        ...

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        """Canonical → wire. `model` is what the client sees; `extras` holds `x-faregate` and `cost`."""
        ...

    def stream_encoder(self, model: str, include_usage: bool, request_id: str = "") -> StreamEncoder:
        """`request_id`: the exchange's id, which the response's own id is made from (unique per request)."""
        ...

    def error_body(self, err: FaregateError) -> JSONObject: ...
