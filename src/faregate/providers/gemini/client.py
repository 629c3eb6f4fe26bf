"""`GeminiInbound`: the `Inbound` for Gemini's own endpoints (`:generateContent`, `:streamGenerateContent`).

The model and whether to stream come from the URL, not the body, so one is made per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from faregate.canonical import ChatRequest, ChatResponse, JSONObject, Usage
from faregate.errors import FaregateError, google_envelope
from faregate.providers.gemini.inbound import parse_request
from faregate.providers.gemini.render import GeminiStreamEncoder, render_response


@dataclass(frozen=True, slots=True)
class GeminiInbound:
    model: str | None = None  # from the URL (`models/{model}:generateContent`)
    stream: bool = False  # `:streamGenerateContent`

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        return parse_request(body, self.model, stream=self.stream)

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        return render_response(resp, model, usage, extras)

    def stream_encoder(self, model: str, include_usage: bool, request_id: str = "") -> GeminiStreamEncoder:
        return GeminiStreamEncoder(model, request_id)  # usageMetadata is part of every answer

    def error_body(self, err: FaregateError) -> JSONObject:
        return google_envelope(err)
