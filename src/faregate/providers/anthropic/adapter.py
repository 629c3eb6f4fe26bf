"""The Anthropic Messages format's two seams: `AnthropicAdapter` upstream (`api: anthropic` providers,
`POST {base_url}/v1/messages`) and `AnthropicInbound` for `/v1/messages` clients.

Pure: builds the `UpstreamCall` and parses bytes back; the server owns the HTTP session. Anthropic has no
embeddings API, so the embeddings methods refuse (the router never sends embeddings to this format).
"""

from __future__ import annotations

from typing import Final

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    JSONObject,
    Usage,
    WireApi,
)
from faregate.errors import FaregateError, InvalidRequest, UpstreamError, anthropic_envelope
from faregate.providers.anthropic.errors import classify_error
from faregate.providers.anthropic.inbound import parse_request
from faregate.providers.anthropic.render import AnthropicStreamEncoder, render_response
from faregate.providers.anthropic.request import parameters, render_request
from faregate.providers.anthropic.response import parse_response
from faregate.providers.anthropic.stream import AnthropicStreamDecoder
from faregate.providers.base import Target, UpstreamCall
from faregate.providers.wire import dumps

ANTHROPIC_VERSION: Final = "2023-06-01"


def messages_url(base_url: str) -> str:
    """`base_url` is the bare origin (Anthropic's docs); a root given with `/v1` is accepted too."""
    root = base_url.rstrip("/")
    return (root[: -len("/v1")] if root.endswith("/v1") else root) + "/v1/messages"


class AnthropicAdapter:
    """One object for every `api: anthropic` channel; per-response state lives in the stream decoder."""

    api: WireApi = "anthropic"

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall:
        body, dropped = render_request(req, target.upstream_id, target.max_output_tokens)
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return UpstreamCall(
            method="POST",
            url=messages_url(target.base_url),
            headers=headers,
            body=dumps(body),
            dropped=tuple(dropped),
        )

    def parameters(self, upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
        return parameters(upstream_id)

    def parse_chat_response(self, body: bytes) -> ChatResponse:
        return parse_response(body)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall:
        raise InvalidRequest("anthropic has no embeddings API")

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse:
        raise InvalidRequest("anthropic has no embeddings API")

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        return classify_error(status, body)


class AnthropicInbound:
    """The `Inbound` for `POST /v1/messages`."""

    def parse_chat(self, body: object) -> tuple[ChatRequest, JSONObject]:
        return parse_request(body)

    def render_chat(self, resp: ChatResponse, model: str, usage: Usage, extras: JSONObject) -> JSONObject:
        return render_response(resp, model, usage, extras)

    def stream_encoder(self, model: str, include_usage: bool, request_id: str = "") -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(model, request_id)  # usage is part of Anthropic's grammar: always sent

    def error_body(self, err: FaregateError) -> JSONObject:
        return anthropic_envelope(err)
