"""Gemini's own API in, any provider out (the google-genai SDK works unchanged):

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse
    POST /v1beta/models/{model}:countTokens
    POST /v1beta/models/{model}:embedContent, :batchEmbedContents
    GET  /v1beta/models, GET /v1beta/models/{model}

and the same under `/v1` (google-genai's default API version): `POST /v1/models/{model}:method`, and
`GET /v1/models[/{model}]` in Gemini's shape when a Google client asks (`middleware.speaks_gemini`).

`{model}` is anything faregate routes on (`google/gemini-2.5-flash`, a bare upstream id, `auto`), with or
without the `models/` prefix. Generation is a `Wire` over the chat pipeline (`server/endpoint.py`) with a
`GeminiInbound`; counting through the count handler; embedding is a `Wire` over the same pipeline with an
`EmbeddingJob` (server/embeddings.py). The key comes as `x-goog-api-key` or `?key=` (see
`middleware.bearer_or_api_key`), errors in Google's envelope (each route's, `server/envelope.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

from faregate.canonical import ChatRequest, EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.errors import InvalidRequest, ModelNotFound, NotFound, google_envelope, openai_envelope
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.gemini import GeminiInbound
from faregate.providers.gemini import embeddings as gemini_embeddings
from faregate.providers.gemini.inbound import bare_model
from faregate.routing.table import DecisionTable
from faregate.server.appkeys import RUNTIME
from faregate.server.context import json_bytes_response, read_json
from faregate.server.count import count_handler
from faregate.server.embeddings import EmbeddingJob
from faregate.server.endpoint import ChatJob, Parse, Wire, chat_job, serve
from faregate.server.envelope import ErrorBody, Route, speaks, unserved
from faregate.server.middleware import speaks_gemini
from faregate.server.models import list_models

PREFIX: Final = "/v1beta"
ENDPOINT: Final = "gemini"
GENERATE: Final = "generateContent"
STREAM: Final = "streamGenerateContent"
COUNT: Final = "countTokens"
EMBED: Final = "embedContent"
BATCH_EMBED: Final = "batchEmbedContents"
METHODS: Final = (GENERATE, STREAM, COUNT, EMBED, BATCH_EMBED)
CHAT_METHODS: Final = (GENERATE, STREAM, COUNT)  # what a listed model (chat or alias) supports
EMBED_METHODS: Final = (EMBED, BATCH_EMBED)  # an embedding model's (`models.get` finds it; the list has chat)
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 1000


def split_target(request: web.Request) -> tuple[str, str]:
    """`{model}:{method}` from the URL, the model without its `models/` prefix."""
    model, sep, method = request.match_info["target"].rpartition(":")
    if not sep or not model:
        raise NotFound(f"no method in {request.path!r}: use models/{{model}}:{GENERATE}", param="model")
    return bare_model(model) or model, method


def generate_parser(stream: bool) -> Parse:
    """`:generateContent` / `:streamGenerateContent`: the model from the URL, the rest from the body."""

    async def parse(request: web.Request, rt: Runtime, ex: Exchange) -> ChatJob:
        if stream and request.query.get("alt") != "sse":
            raise InvalidRequest(
                f"{STREAM}: faregate streams as server-sent events only: add ?alt=sse to the URL", param="alt"
            )
        model, _ = split_target(request)
        return chat_job(GeminiInbound(model, stream), request, await read_json(request))

    return parse


GENERATE_WIRE: Final = Wire(ENDPOINT, generate_parser(False), google_envelope)
STREAM_WIRE: Final = Wire(ENDPOINT, generate_parser(True), google_envelope)


def parse_count(request: web.Request, body: Any) -> tuple[ChatRequest, JSONObject]:
    """countTokens takes `contents` or a whole `generateContentRequest`."""
    model, _ = split_target(request)
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        body = body["generateContentRequest"]
    return GeminiInbound(model).parse_chat(body)


def render_count(tokens: int, info: JSONObject) -> JSONObject:
    """Gemini's `CountTokensResponse`, with faregate's account of the count beside it."""
    return {"totalTokens": tokens, "x-faregate": info}


handle_count = count_handler("gemini", render_count, parse=parse_count)

EmbedParse = Callable[[object, str], tuple[EmbeddingRequest, JSONObject]]
EmbedRender = Callable[[EmbeddingResponse, Usage, Mapping[str, Any]], JSONObject]


def embed_wire(parse_body: EmbedParse, render: EmbedRender) -> Wire:
    """`:embedContent` / `:batchEmbedContents`: an `EmbeddingJob` answered in Gemini's shape."""

    async def parse(request: web.Request, rt: Runtime, ex: Exchange) -> EmbeddingJob:
        model, _ = split_target(request)
        req, routing = parse_body(await read_json(request), model)
        return EmbeddingJob(req, routing, lambda resp, _model, usage, extras: render(resp, usage, extras))

    return Wire(ENDPOINT, parse, google_envelope)


EMBED_WIRE: Final = embed_wire(gemini_embeddings.parse_embed, gemini_embeddings.render_embed)
BATCH_EMBED_WIRE: Final = embed_wire(gemini_embeddings.parse_batch, gemini_embeddings.render_batch)

HANDLERS: Final[dict[str, Callable[[web.Request, str], Any]]] = {
    GENERATE: lambda request, model: serve(request, GENERATE_WIRE),
    STREAM: lambda request, model: serve(request, STREAM_WIRE),
    COUNT: lambda request, model: handle_count(request),
    EMBED: lambda request, model: serve(request, EMBED_WIRE),
    BATCH_EMBED: lambda request, model: serve(request, BATCH_EMBED_WIRE),
}


async def handle_post(request: web.Request) -> web.StreamResponse:
    model, method = split_target(request)
    handler = HANDLERS.get(method)
    if handler is None:
        raise NotFound(
            f"method {method!r} is not served by faregate (it serves {', '.join(METHODS)})", param="method"
        )
    response: web.StreamResponse = await handler(request, model)
    return response


# --- the model list ---------------------------------------------------------------------------------


def gemini_model(entry: JSONObject) -> JSONObject:
    """One `/v1/models` entry in Gemini's `Model` shape, named `models/{faregate id}`."""
    out: JSONObject = {
        "name": f"models/{entry['id']}",
        "baseModelId": entry["id"],
        "version": "faregate",
        "displayName": entry.get("name") or entry["id"],
        "description": entry.get("name") or entry["id"],
        "supportedGenerationMethods": list(
            EMBED_METHODS if entry.get("kind") == "embedding" else CHAT_METHODS
        ),
    }
    if entry.get("alias"):
        out["description"] = f"{out['displayName']}: each request walks the route's rules"
        return out
    out["inputTokenLimit"] = entry["context_length"]
    limits = [o["max_output"] for o in entry.get("offerings", ()) if o.get("max_output")]
    if limits:
        out["outputTokenLimit"] = max(limits)
    return out


def gemini_models(table: DecisionTable) -> list[JSONObject]:
    """Aliases and routable chat models: what `:generateContent` can be called with."""
    return [
        gemini_model(e)
        for e in list_models(table)
        if e.get("alias") or (e.get("routable") and e.get("kind") == "chat")
    ]


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    try:
        size = int(raw)
    except ValueError:
        raise InvalidRequest("pageSize: must be an integer", param="pageSize") from None
    return min(max(size, 1), MAX_PAGE) if size > 0 else DEFAULT_PAGE


def _page_start(raw: str | None) -> int:
    if not raw:
        return 0
    if not raw.isdigit():
        raise InvalidRequest("pageToken: not a token this server gave", param="pageToken")
    return int(raw)


async def handle_list(request: web.Request) -> web.Response:
    models = gemini_models(request.app[RUNTIME].holder.current.table)
    start, size = _page_start(request.query.get("pageToken")), _page_size(request.query.get("pageSize"))
    body: JSONObject = {"models": models[start : start + size]}
    if start + size < len(models):
        body["nextPageToken"] = str(start + size)
    return json_bytes_response(body, {})


async def handle_get(request: web.Request) -> web.Response:
    table = request.app[RUNTIME].holder.current.table
    info = request.match_info
    wanted = bare_model(info.get("target", info.get("model_id", "")).rstrip("/")) or ""
    resolved = wanted if wanted in table.known or wanted in table.aliases else table.upstream_ids.get(wanted)
    found = next((m for m in gemini_models(table) if m["baseModelId"] == resolved), None)
    if found is None and resolved in table.models:  # an embedding model: `:embedContent` takes it
        entry = next((e for e in list_models(table) if e["id"] == resolved), None)
        if entry is not None and entry.get("routable") and entry.get("kind") == "embedding":
            found = gemini_model(entry)
    if found is None:
        raise ModelNotFound(f"models/{wanted} is not found or not routable here", param="model")
    return json_bytes_response(found, {})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def for_google_clients(gemini_handler: Handler, other: Handler) -> Handler:
    """`gemini_handler` for a request in Gemini's format, `other` (OpenAI's `/v1/models`) for the rest."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await (gemini_handler if speaks_gemini(request) else other)(request)

    return handle


def for_google_clients_envelope(request: web.Request) -> ErrorBody:
    """The envelope of a route `for_google_clients` serves: Google's for a request in Gemini's format."""
    return google_envelope if speaks_gemini(request) else openai_envelope


GOOGLE: Final = speaks(google_envelope)
ROUTES: Final[tuple[Route, ...]] = (
    Route("GET", f"{PREFIX}/models", handle_list, GOOGLE),
    Route("GET", f"{PREFIX}/models/{{target:.+}}", handle_get, GOOGLE),
    Route("POST", f"{PREFIX}/models/{{target:.+}}", handle_post, GOOGLE),
    Route("POST", "/v1/models/{target:.+}", handle_post, GOOGLE),
    Route("*", f"{PREFIX}/{{tail:.*}}", unserved, GOOGLE),  # any other path under /v1beta: Google's 404
)
