"""The provider simulator: one aiohttp app serving every simulated provider under `/{provider}/...`.

A request is recorded, then faults apply, then the route is found from the provider's `api` and `listing`
(never its name), then auth, then the handler. The control API under `/_sim/` mirrors the methods.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from aiohttp import web

import faregate.simulator.anthropic as anthropic
import faregate.simulator.gemini as gemini
import faregate.simulator.openai as openai
import faregate.simulator.responses as responses
from faregate.simulator.faults import FaultBook
from faregate.simulator.listings import LISTINGS
from faregate.simulator.model import (
    AUTH_HEADERS,
    JSON,
    REDACTED,
    SIMULATOR_HEADER,
    Api,
    Call,
    CountTokens,
    Endpoint,
    JSONObject,
    Listing,
    Received,
    SimError,
    SimModel,
    SimProvider,
    StreamDropped,
    Wire,
    json_response,
)

# An OpenAI-format provider serves chat completions and the Responses API side by side, as OpenAI does.
OPENAI_WIRE: Final = dataclasses.replace(
    openai.WIRE, endpoints=(*openai.WIRE.endpoints, *responses.ENDPOINTS)
)
WIRES: Final[Mapping[Api, Wire]] = MappingProxyType(
    {
        "openai": OPENAI_WIRE,
        "anthropic": anthropic.WIRE,
        "gemini": gemini.WIRE,
        "openai-responses": OPENAI_WIRE,
    }
)
# OpenRouter's API root is `/api/v1`, not `/v1`: base_url and routes both follow it.
BASE_PATH_OVERRIDES: Final[Mapping[Listing, str]] = MappingProxyType({"openrouter": "/api/v1"})
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CONTROL = "_sim"
MAX_BODY_BYTES = 64 * 1024 * 1024  # base64 images are large


class UnknownProvider(KeyError):
    """No simulated provider has that name."""


def base_path(provider: SimProvider) -> str:
    return BASE_PATH_OVERRIDES.get(provider.listing, WIRES[provider.api].base_path)


def find_endpoint(provider: SimProvider, method: str, rel_path: str) -> tuple[Endpoint, str] | None:
    """The endpoint serving `method rel_path` (relative to `/{provider}`) and its captured tail."""
    base = base_path(provider)
    for endpoint in (*WIRES[provider.api].endpoints, *LISTINGS[provider.listing]):
        if endpoint.root:
            sub = rel_path
        elif rel_path.startswith(base + "/"):
            sub = rel_path[len(base) :]
        else:
            continue
        tail = endpoint.match(method, sub)
        if tail is not None:
            return endpoint, tail
    return None


class Simulator:
    """Simulated providers on loopback: deterministic answers, real wire formats, injectable faults."""

    def __init__(
        self, providers: Iterable[SimProvider], count_tokens: CountTokens, *, stream_delay_s: float = 0.0
    ) -> None:
        self._providers: dict[str, SimProvider] = {}
        for provider in providers:
            if not PROVIDER_NAME.match(provider.name) or provider.name in self._providers:
                raise ValueError(f"provider name {provider.name!r} is not a unique URL path segment")
            self._providers[provider.name] = provider
        self._count_tokens = count_tokens
        self._faults = FaultBook()
        self._received: list[Received] = []
        self._listing_bodies: dict[str, JSON] = {}  # provider -> what its listing answers instead
        self._responses: dict[str, JSONObject] = {}  # stored Responses API responses, by id
        self.stream_delay_s = stream_delay_s  # between SSE events

    @property
    def providers(self) -> Mapping[str, SimProvider]:
        return MappingProxyType(self._providers)

    def base_url(self, origin: str, provider: str) -> str:
        """The provider's base_url as its own docs give it, on this simulator's `origin`."""
        return f"{origin.rstrip('/')}/{provider}{base_path(self._provider(provider))}"

    def create_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get(f"/{CONTROL}/health", self._health)
        app.router.add_get(f"/{CONTROL}/received", self._received_counts)
        app.router.add_delete(f"/{CONTROL}/received", self._reset_received)
        app.router.add_post(f"/{CONTROL}/clear", self._clear)
        app.router.add_post(f"/{CONTROL}/{{provider}}/{{action}}", self._control)
        app.router.add_put(f"/{CONTROL}/{{provider}}/models", self._put_models)
        app.router.add_route("*", "/{provider}/{tail:.*}", self._dispatch)
        app.on_response_prepare.append(_label)
        app.on_shutdown.append(self._release)
        return app

    # -- faults ----------------------------------------------------------------------------------------

    def fail(
        self, provider: str, status: int = 500, times: int | None = None, error_type: str | None = None
    ) -> None:
        """The next `times` requests (None: until cleared) get `status` in the provider's error envelope."""
        self._faults.fail(self._provider(provider).name, status, times, error_type)

    def slow(self, provider: str, delay_s: float) -> None:
        self._faults.slow(self._provider(provider).name, delay_s)

    def hang(self, provider: str) -> None:
        self._faults.hang(self._provider(provider).name)

    def drop_stream(self, provider: str, after_events: int) -> None:
        self._faults.drop_stream(self._provider(provider).name, after_events)

    def clear(self, provider: str | None = None) -> None:
        self._faults.clear(None if provider is None else self._provider(provider).name)
        for name in list(self._listing_bodies) if provider is None else [provider]:
            self._listing_bodies.pop(name, None)

    def malform_listing(self, provider: str, body: JSON) -> None:
        """The provider's listing endpoints answer `body` (status 200) instead of the listing, until cleared."""
        self._listing_bodies[self._provider(provider).name] = body

    # -- catalog changes -------------------------------------------------------------------------------

    def set_models(self, provider: str, models: Iterable[SimModel]) -> None:
        self._providers[provider] = dataclasses.replace(self._provider(provider), models=tuple(models))

    def set_price(self, provider: str, upstream_id: str, input_price: Decimal, output_price: Decimal) -> None:
        current = self._provider(provider)
        if current.model(upstream_id) is None:
            raise KeyError(f"{provider} has no model {upstream_id!r}")
        models = [
            dataclasses.replace(m, input_price=input_price, output_price=output_price)
            if m.upstream_id == upstream_id
            else m
            for m in current.models
        ]
        self.set_models(provider, models)

    # -- what was received -----------------------------------------------------------------------------

    @property
    def received(self) -> Sequence[Received]:
        return tuple(self._received)

    def received_for(self, provider: str) -> list[Received]:
        return [r for r in self._received if r.provider == provider]

    def reset_received(self) -> None:
        self._received.clear()

    # -- serving ---------------------------------------------------------------------------------------

    def _provider(self, name: str) -> SimProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProvider(f"no simulated provider named {name!r}") from None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["provider"]
        body = await request.read() if request.can_read_body else None
        self._received.append(_record(name, request, body))
        provider = self._providers.get(name)
        if provider is None:
            unknown = SimError(404, f"No simulated provider named '{name}'.", code="provider_not_found")
            return json_response(openai.render_error(unknown), status=404)
        wire = WIRES[provider.api]
        try:
            await self._faults.apply(name, request)
            found = find_endpoint(provider, request.method, "/" + request.match_info["tail"])
            if found is None:
                raise SimError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
            endpoint, tail = found
            wire.check_auth(request, provider)
            call = Call(
                request,
                provider,
                body or None,
                tail,
                self._count_tokens,
                self.stream_delay_s,
                self._faults.drop_after(name),
                self._responses,
            )
            if name in self._listing_bodies and endpoint in LISTINGS[provider.listing]:
                return json_response(self._listing_bodies[name])
            return await endpoint.handle(call)
        except SimError as e:
            return json_response(wire.render_error(e), status=e.status, headers=e.headers)
        except StreamDropped as e:
            return e.response
        except (TypeError, AttributeError, KeyError, ValueError) as e:
            # a field of the wrong JSON type slipped past validation: still a 400, as upstreams answer
            error = SimError(400, f"Invalid request body: {type(e).__name__}: {e}")
            return json_response(wire.render_error(error), status=400)

    async def _release(self, app: web.Application) -> None:
        self._faults.release_hangs()  # shutting down: let held requests finish

    # -- control API -----------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return json_response({"status": "ok", "providers": sorted(self._providers)})

    async def _received_counts(self, request: web.Request) -> web.StreamResponse:
        counts: dict[str, int] = {}
        for r in self._received:
            counts[r.provider] = counts.get(r.provider, 0) + 1
        return json_response(counts)

    async def _reset_received(self, request: web.Request) -> web.StreamResponse:
        self.reset_received()
        return json_response({"ok": True})

    async def _clear(self, request: web.Request) -> web.StreamResponse:
        return await _controlled(lambda body: self.clear(body.get("provider")), request)

    async def _control(self, request: web.Request) -> web.StreamResponse:
        name, action = request.match_info["provider"], request.match_info["action"]
        actions: dict[str, Callable[[JSONObject], None]] = {
            "fail": lambda b: self.fail(name, int(b.get("status", 500)), b.get("times"), b.get("error_type")),
            "slow": lambda b: self.slow(name, float(b["delay_s"])),
            "hang": lambda b: self.hang(name),
            "drop_stream": lambda b: self.drop_stream(name, int(b["after_events"])),
            "price": lambda b: self.set_price(
                name, b["upstream_id"], _price(b["input_price"]), _price(b["output_price"])
            ),
        }
        if action not in actions:
            return json_response({"error": {"message": f"unknown control action {action!r}"}}, status=404)
        return await _controlled(actions[action], request)

    async def _put_models(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["provider"]
        return await _controlled(
            lambda body: self.set_models(name, map(model_from_json, body["models"])), request
        )


def model_from_json(data: JSON) -> SimModel:
    """A `SimModel` from the control API's JSON (prices as strings or numbers, USD per 1M)."""
    return SimModel(
        upstream_id=str(data["upstream_id"]),
        name=str(data.get("name", data["upstream_id"])),
        kind="embedding" if data.get("kind") == "embedding" else "chat",
        context=int(data.get("context", 128_000)),
        input_price=_price(data.get("input_price", 0)),
        output_price=_price(data.get("output_price", 0)),
        responses_only=data.get("api") == "openai-responses",
    )


def _price(value: JSON) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a price: {value!r}") from None


async def _controlled(action: Callable[[JSONObject], None], request: web.Request) -> web.StreamResponse:
    """Run a control action on the request's JSON body (a bare list is taken as `{"models": [...]}`)."""
    try:
        raw = await request.json() if request.can_read_body else {}
        body: JSONObject = {"models": raw} if isinstance(raw, list) else raw
        action(body)
    except UnknownProvider as e:
        return json_response({"error": {"message": str(e).strip("'\"")}}, status=404)
    except KeyError as e:
        return json_response(
            {"error": {"message": f"bad control request: missing or unknown {e}"}}, status=400
        )
    except (ValueError, TypeError, AttributeError) as e:
        return json_response({"error": {"message": f"bad control request: {e}"}}, status=400)
    return json_response({"ok": True})


def _record(name: str, request: web.Request, body: bytes | None) -> Received:
    headers = {k: REDACTED if k.lower() in AUTH_HEADERS else v for k, v in request.headers.items()}
    query = {k: REDACTED if k == "key" else v for k, v in request.query.items()}
    return Received(
        name, request.method, request.path, body or None, MappingProxyType(headers), MappingProxyType(query)
    )


async def _label(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer says it is simulated, and by which provider (`_sim` for the control API)."""
    response.headers[SIMULATOR_HEADER] = request.path.split("/")[1]


async def run_simulator(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve `sim` on `host:port` (0: any free port); returns the runner (call `cleanup()`) and the origin."""
    runner = web.AppRunner(sim.create_app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"
