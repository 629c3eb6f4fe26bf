"""The seam objects for the Responses API: `ResponsesInbound`, one per `POST /v1/responses` (it carries
that response's id and echoed fields, and hands the final response object to the store).
"""

from __future__ import annotations

from faregate.canonical import ChatRequest, ChatResponse, JSONObject, Usage
from faregate.errors import FaregateError, openai_envelope
from faregate.providers.openai_responses.inbound import parse_responses
from faregate.providers.openai_responses.render import (
    OnFinal,
    ResponseMeta,
    ResponsesStreamEncoder,
    render_response,
)


class ResponsesInbound:
    """Clients of `POST /v1/responses`: an `Inbound` bound to one response."""

    __slots__ = ("meta", "on_final")

    def __init__(self, meta: ResponseMeta, on_final: OnFinal | None = None) -> None:
        self.meta = meta
        self.on_final = on_final

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        parsed = parse_responses(body)
        return parsed.chat, parsed.routing

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        out = render_response(self.meta, resp, model, usage, extras)
        if self.on_final is not None:
            self.on_final(out)
        return out

    def stream_encoder(self, model: str, include_usage: bool, request_id: str = "") -> ResponsesStreamEncoder:
        # A response keeps its own stored id (`resp_...`), which `GET /v1/responses/{id}` finds.
        return ResponsesStreamEncoder(self.meta, model, self.on_final)

    def error_body(self, err: FaregateError) -> JSONObject:
        return openai_envelope(err)
