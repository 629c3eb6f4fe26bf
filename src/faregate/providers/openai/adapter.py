"""The two seam objects for OpenAI's wire format: `OpenAIAdapter` (faregate → upstream, for OpenAI and
every compatible server) and `OpenAIInbound` (OpenAI clients → faregate). Stateless: one of each is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import faregate.providers.openai.errors as errors
import faregate.providers.openai.inbound as inbound
import faregate.providers.openai.render as render
import faregate.providers.openai.request as request
import faregate.providers.openai.response as response
from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    JSONObject,
    Usage,
    WireApi,
)
from faregate.errors import FaregateError, UpstreamError, openai_envelope
from faregate.providers.base import Target, UpstreamCall
from faregate.providers.openai.stream import OpenAIStreamDecoder
from faregate.providers.wire import dumps, join_url

_JSON_HEADERS: Final[Mapping[str, str]] = MappingProxyType({"Content-Type": "application/json"})


def headers_for(target: Target) -> Mapping[str, str]:
    if not target.api_key:
        return _JSON_HEADERS  # Ollama and other local servers take no key
    return {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}


class OpenAIAdapter:
    """`api: openai` upstreams: POST `{base_url}/chat/completions` and `{base_url}/embeddings`."""

    __slots__ = ()
    api: WireApi = "openai"

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall:
        body, dropped = request.render_request(req, target.upstream_id, target.params)
        url = join_url(target.base_url, "/chat/completions")
        _, local = req.stops_for(names_stop=False)
        return UpstreamCall("POST", url, headers_for(target), dumps(body), dropped, local)

    def parameters(self, upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
        return request.parameters(upstream_id, declared)

    def parse_chat_response(self, body: bytes) -> ChatResponse:
        return response.parse_chat_response(body)

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall:
        body, dropped = request.render_embeddings(req, target.upstream_id)
        url = join_url(target.base_url, "/embeddings")
        return UpstreamCall("POST", url, headers_for(target), dumps(body), dropped)

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse:
        return response.parse_embeddings_response(body)

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        return errors.classify_error(status, body)


class OpenAIInbound:
    """Clients of `POST /v1/chat/completions`."""

    __slots__ = ()

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        return inbound.parse_chat(body)

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        return render.render_chat(resp, model, usage, extras)

    def stream_encoder(
        self, model: str, include_usage: bool, request_id: str = ""
    ) -> render.OpenAIStreamEncoder:
        if not request_id:
            return render.OpenAIStreamEncoder(model, include_usage)
        return render.OpenAIStreamEncoder(model, include_usage, render.ID_PREFIX + request_id, own_id=True)

    def error_body(self, err: FaregateError) -> JSONObject:
        return openai_envelope(err)
