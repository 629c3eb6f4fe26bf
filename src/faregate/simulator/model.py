"""The simulator's data: providers and models it serves, the requests it received, and its one error type.

Frozen dataclasses only; the mutable state (current providers, faults, received requests) lives on the
`Simulator` instance in `app.py`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from aiohttp import web

from faregate.values import frozen

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]
Api = Literal["openai", "anthropic", "gemini", "openai-responses"]
Listing = Literal["openai", "anthropic", "gemini", "openrouter", "ollama", "together"]
CountTokens: TypeAlias = Callable[[str], int]

SIMULATOR_HEADER = "X-Faregate-Simulator"
AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization"})
REDACTED = "<redacted>"


@frozen
class SimModel:
    """One model a simulated provider serves; prices in USD per 1M tokens."""

    upstream_id: str
    name: str
    kind: Literal["chat", "embedding"]
    context: int
    input_price: Decimal
    output_price: Decimal
    responses_only: bool = False  # served only at /v1/responses (OpenAI's pro models): chat completions 404


@frozen
class SimProvider:
    """A simulated provider: `api` picks the wire format, `listing` the shape of its model listing."""

    name: str
    api: Api
    listing: Listing
    models: tuple[SimModel, ...]

    def model(self, upstream_id: str) -> SimModel | None:
        return next((m for m in self.models if m.upstream_id == upstream_id), None)


@frozen
class Received:
    """A request as it reached the simulator; credential values are redacted."""

    provider: str
    method: str
    path: str
    body: bytes | None
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def json(self) -> JSON:
        return json.loads(self.body) if self.body else None


class SimError(Exception):
    """A client-visible failure; each wire format renders it in its own error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})


class StreamDropped(Exception):
    """Raised after a drop-stream fault closed the transport: the handler has nothing more to send."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("stream dropped by fault injection")
        self.response = response


@frozen
class Call:
    """One request to a provider endpoint, with what its handler needs from the simulator."""

    request: web.Request
    provider: SimProvider
    body: bytes | None
    tail: str
    count_tokens: CountTokens
    stream_delay_s: float = 0.0
    drop_after: int | None = None
    responses: dict[str, JSONObject] = field(default_factory=dict)  # the simulator's stored responses

    def json_object(self, bad_json: str) -> JSONObject:
        """The body as a JSON object, or a 400 with the provider's own wording (`bad_json`)."""
        try:
            data = json.loads(self.body or b"")
        except ValueError:
            raise SimError(400, bad_json) from None
        if not isinstance(data, dict):
            raise SimError(400, bad_json)
        return data


Handler: TypeAlias = Callable[[Call], Awaitable[web.StreamResponse]]


@frozen
class Endpoint:
    """A route under a provider: `path` is relative to the provider's base path (`root`: to `/{provider}`).

    A `path` ending in `/*` matches any tail, handed to the handler as `Call.tail`.
    """

    method: str
    path: str
    handle: Handler
    root: bool = False

    def match(self, method: str, rel_path: str) -> str | None:
        if method != self.method:
            return None
        if self.path.endswith("/*"):
            prefix = self.path[:-1]
            return (
                rel_path[len(prefix) :]
                if rel_path.startswith(prefix) and len(rel_path) > len(prefix)
                else None
            )
        return "" if rel_path == self.path else None


@frozen
class Wire:
    """What the simulator needs to know about one wire format."""

    base_path: str
    endpoints: tuple[Endpoint, ...]
    check_auth: Callable[[web.Request, SimProvider], None]
    render_error: Callable[[SimError], JSONObject]


def dumps(obj: JSON) -> str:
    """Compact JSON, as the providers send it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(obj: JSON, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(obj, status=status, headers=headers, dumps=dumps)
