"""`GeminiAdapter`: the `api: gemini` wire format (Google AI Studio's v1beta REST API), as one object."""

from __future__ import annotations

import faregate.providers.gemini.errors as errors
import faregate.providers.gemini.request as request
import faregate.providers.gemini.response as response
from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    WireApi,
)
from faregate.errors import UpstreamError
from faregate.providers.base import StreamDecoder, Target, UpstreamCall
from faregate.providers.gemini.stream import GeminiStreamDecoder


class GeminiAdapter:
    """Pure: builds calls and parses bodies; the server owns the session. Stateless, so one is shared."""

    __slots__ = ()
    api: WireApi = "gemini"

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall:
        return request.chat_call(req, target)

    def parameters(self, upstream_id: str) -> frozenset[str]:
        return request.parameters(upstream_id)

    def parse_chat_response(self, body: bytes) -> ChatResponse:
        return response.parse_chat_response(body)

    def stream_decoder(self) -> StreamDecoder:
        return GeminiStreamDecoder()

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall:
        return request.embeddings_call(req, target)

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse:
        return response.parse_embeddings_response(body)

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        return errors.classify_error(status, body)
