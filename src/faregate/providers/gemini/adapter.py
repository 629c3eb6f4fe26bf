"""The gemini wire format's two seams: `GeminiAdapter` upstream (`api: gemini`, Google AI Studio's v1beta
REST API) and `GeminiInbound` for Gemini's own client endpoints (`:generateContent`,
`:streamGenerateContent`), whose model and streaming come from the URL, so one is made per request.
"""

from __future__ import annotations

import faregate.providers.gemini.errors as errors
import faregate.providers.gemini.request as request
import faregate.providers.gemini.response as response
from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    JSONObject,
    Usage,
    WireApi,
)
from faregate.errors import FaregateError, UpstreamError, google_envelope
from faregate.providers.base import StreamDecoder, Target, UpstreamCall
from faregate.providers.gemini.inbound import parse_request
from faregate.providers.gemini.render import GeminiStreamEncoder, render_response
from faregate.providers.gemini.stream import GeminiStreamDecoder
from faregate.values import frozen


class GeminiAdapter:
    """Pure: builds calls and parses bodies; the server owns the session. Stateless, so one is shared.
    `thoughts`: also read the model's thought parts and signatures (the gateway's adapter does; without,
    the answer alone, as the format's golden payloads pin it)."""

    __slots__ = ("thoughts",)
    api: WireApi = "gemini"

    def __init__(self, thoughts: bool = False) -> None:
        self.thoughts = thoughts

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall:
        return request.chat_call(req, target)

    def parameters(self, upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
        return request.parameters(upstream_id)

    def parse_chat_response(self, body: bytes) -> ChatResponse:
        return response.parse_chat_response(body, self.thoughts)

    def stream_decoder(self) -> StreamDecoder:
        return GeminiStreamDecoder(thoughts=self.thoughts)

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall:
        return request.embeddings_call(req, target)

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse:
        return response.parse_embeddings_response(body)

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        return errors.classify_error(status, body)


@frozen
class GeminiInbound:
    """The `Inbound` for `models/{model}:generateContent` and `:streamGenerateContent`."""

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
