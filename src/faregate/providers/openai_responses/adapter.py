"""The seam objects for the Responses API: `ResponsesAdapter` (faregate → an `api: openai-responses`
upstream, `POST {base_url}/responses`) and `ResponsesInbound`, one per `POST /v1/responses` (it carries
that response's id and echoed fields, and hands the final response object to the store).
"""

from __future__ import annotations

import faregate.providers.openai_responses.request as request
import faregate.providers.openai_responses.response as response
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
from faregate.providers.openai.adapter import headers_for
from faregate.providers.openai.request import render_embeddings
from faregate.providers.openai.response import parse_embeddings_response
from faregate.providers.openai_responses.errors import classify_error
from faregate.providers.openai_responses.inbound import parse_responses
from faregate.providers.openai_responses.render import (
    OnFinal,
    ResponseMeta,
    ResponsesStreamEncoder,
    render_response,
)
from faregate.providers.openai_responses.stream import ResponsesStreamDecoder
from faregate.providers.wire import dumps, join_url


class ResponsesAdapter:
    """`api: openai-responses` upstreams: chat at `{base_url}/responses`; embeddings (and errors) as on
    OpenAI, whose API serves both."""

    __slots__ = ()
    api: WireApi = "openai-responses"

    def chat_request(self, req: ChatRequest, target: Target) -> UpstreamCall:
        body, dropped = request.render_request(req, target.upstream_id)
        url = join_url(target.base_url, "/responses")
        return UpstreamCall("POST", url, headers_for(target), dumps(body), dropped)

    def parameters(self, upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
        return request.parameters(upstream_id)

    def parse_chat_response(self, body: bytes) -> ChatResponse:
        return response.parse_chat_response(body)

    def stream_decoder(self) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder()

    def embeddings_request(self, req: EmbeddingRequest, target: Target) -> UpstreamCall:
        body, dropped = render_embeddings(req, target.upstream_id)
        return UpstreamCall(
            "POST", join_url(target.base_url, "/embeddings"), headers_for(target), dumps(body), dropped
        )

    def parse_embeddings_response(self, body: bytes) -> EmbeddingResponse:
        return parse_embeddings_response(body)

    def classify_error(self, status: int, body: bytes) -> UpstreamError:
        return classify_error(status, body)


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
            self.on_final(out)  # whole, for the store
        return self.meta.shown(out)

    def stream_encoder(self, model: str, include_usage: bool, request_id: str = "") -> ResponsesStreamEncoder:
        # A response keeps its own stored id (`resp_...`), which `GET /v1/responses/{id}` finds.
        return ResponsesStreamEncoder(self.meta, model, self.on_final)

    def error_body(self, err: FaregateError) -> JSONObject:
        return openai_envelope(err)
