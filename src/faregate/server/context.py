"""One request's bookkeeping on its way through a handler: identity, plan, attempts, cost, the record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

from faregate import jsonio
from faregate.accounting.attribution import app_attribution
from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Ticket
from faregate.accounting.pricing import cost_usd, savings, usd_number, usd_text
from faregate.accounting.record import RequestRecord
from faregate.canonical import FilePart, Usage
from faregate.errors import AllChannelsFailed, FaregateError, InvalidRequest, ModelNotFound, PayloadTooLarge
from faregate.pipeline.accounts import DEFAULT_MAX_OUTPUT
from faregate.pipeline.execute import Walk
from faregate.pipeline.runtime import Runtime
from faregate.routing.features import Features
from faregate.routing.plan import NO_DOCUMENTS, NO_PROVIDER_FILES, Plan, build_plan
from faregate.routing.preferences import parse_request_preferences
from faregate.routing.table import Channel, DecisionTable
from faregate.server.appkeys import CALLER_KEY, OPTIONS, REQUEST_ID


def request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = os.urandom(16).hex()  # 128 random bits, like a uuid4, at a fraction of the cost
        request[REQUEST_ID] = rid
    return rid


async def read_json(request: web.Request) -> Any:
    """The body as JSON. Too large → 413 (aiohttp enforces `client_max_size`), malformed → 400, and so are
    nesting deeper than `jsonio.MAX_DEPTH` and non-finite numbers (`NaN`), with `param` naming the field."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[OPTIONS].max_body_bytes
        raise PayloadTooLarge(f"request body too large: the limit is {limit} bytes") from None
    if not raw:
        raise InvalidRequest("the request body is empty: send a JSON object")
    try:
        return jsonio.loads_request(raw)
    except jsonio.JsonLimitError as e:
        raise InvalidRequest(str(e), param=e.path or None) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"the request body is not valid JSON: {e}") from None


def plan_request(
    request: web.Request,
    rt: Runtime,
    table: DecisionTable,
    model: str | None,
    f: Features,
    routing: Mapping[str, Any],
    *,
    kind: Literal["chat", "embedding"] = "chat",
    max_tokens: int | None = None,
    fit_tokens: int | None = None,
) -> Plan:
    """The request's plan on `table`: its routing fields and headers, with the runtime's health and RNG."""
    return build_plan(
        table,
        model,
        f,
        parse_request_preferences(routing),
        kind=kind,
        header_model=request.headers.get("Faregate-Model"),
        header_provider=request.headers.get("Faregate-Provider"),
        health=rt.health,
        now=time.monotonic(),
        rng=rt.rng,
        max_tokens=max_tokens,
        fit_tokens=fit_tokens,
    )


def json_bytes_response(body: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(body=jsonio.dumps(body), headers=headers, content_type="application/json")


def file_field(part: FilePart) -> str:
    """The field of an `input_file` that says where the file is: `file_id`, `file_url` or `file_data`."""
    return "file_id" if part.file_id is not None else "file_url" if part.url is not None else "file_data"


def file_error(plan: Plan, files: Sequence[FilePart]) -> InvalidRequest | None:
    """A 400 naming the input file no channel of the plan can take, when that is why the plan is empty."""
    for why, blocking in ((NO_PROVIDER_FILES, False), (NO_DOCUMENTS, True)):
        part = next((p for p in files if p.pdf is blocking), None)
        if part is None or all(w != why for _, w in plan.skipped):
            continue
        where = file_field(part)
        kind = f" of type {part.media_type}" if where == "file_data" and part.media_type else ""
        return InvalidRequest(
            f"an input file given by {where}{kind} cannot be sent to any channel of this request's plan: {why}"
            " (faregate never fetches or uploads files itself).",
            param=f"{part.source}.{where}" if part.source else None,
            code="no_capable_channel",
        )
    return None


def no_channel_error(
    plan: Plan, table: DecisionTable, rt: Runtime, files: Sequence[FilePart] = ()
) -> FaregateError:
    """An empty plan: 503 when channels are cooling down or providers inactive, 400 when no channel can
    serve this particular request (capabilities, context, the request's own preferences; an input file
    no channel takes is named by its `param`)."""
    if plan.skipped and plan.unavailable_only():
        left = [rt.health.cooldown_left_s(cid, time.monotonic()) for cid, _ in plan.skipped]
        err = AllChannelsFailed([], skipped=len(plan.skipped))
        err.headers["Retry-After"] = str(max(1, int(min(left) + 0.999)))
        return err
    if not plan.skipped and plan.pinned:
        unpriced = _unpriced_at(table, plan.requested)
        if unpriced:
            return ModelNotFound(
                f"The model '{plan.requested}' is known (listed by {', '.join(unpriced)}) but has no price"
                " anywhere: it is not routable until priced (declare its price under `models:` in routes.yaml)",
                param="model",
                code="model_not_priced",
            )
    if not plan.skipped:
        inactive = "; ".join(f"{p}: {why}" for p, why in table.inactive.items())
        err = AllChannelsFailed([], skipped=0)
        err.message = f"no active channel for '{plan.requested}'" + (
            f" (inactive providers: {inactive})" if inactive else ""
        )
        return err
    by_file = file_error(plan, files) if files else None
    if by_file is not None:
        return by_file
    reasons = "; ".join(f"{cid}: {why}" for cid, why in plan.skipped[:8])
    return InvalidRequest(
        f"no channel can serve this request ({reasons})", param="model", code="no_capable_channel"
    )


def _unpriced_at(table: DecisionTable, requested: str) -> list[str]:
    """The providers where `requested` (a model id or a bare upstream id) is listed with no price."""
    model_id = requested if requested in table.known else table.upstream_ids.get(requested)
    return sorted({o.provider for o in table.unpriced_offerings if o.model_id == model_id})


@dataclass(slots=True)
class Exchange:
    id: str
    endpoint: str
    created: float
    started: float
    key_id: str | None = None
    key_group: str | None = None
    requested: str = "auto"
    stream: bool = False
    features: Features | None = None
    plan: Plan | None = None
    walk: Walk | None = None
    channel: Channel | None = None
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = Decimal(0)
    baseline_cost: Decimal = Decimal(0)
    status: int = 200
    error: str | None = None
    ttft_ms: float | None = None
    key: ApiKey | None = None
    ticket: Ticket | None = None
    app: str | None = None  # app attribution (HTTP-Referer / X-Title): a label, never an identity
    app_url: str | None = None
    finish_reason: str | None = None  # the answer's, once it has ended

    @classmethod
    def begin(cls, request: web.Request, endpoint: str) -> Exchange:
        key = request.get(CALLER_KEY)
        app, app_url = app_attribution(request.headers)
        return cls(
            app=app,
            app_url=app_url,
            key=key,
            id=request_id(request),
            endpoint=endpoint,
            created=time.time(),
            started=time.perf_counter(),
            key_id=key.id if key else None,
            key_group=(key.group or None) if key else None,
        )

    def charge(self, ch: Channel, usage: Usage, table: DecisionTable, rt: Runtime) -> dict[str, Any]:
        """Cost and savings of the answer, and the `x-faregate` object that reports them."""
        self.channel, self.usage = ch, usage
        self.cost = cost_usd(ch.price, usage)
        # The baseline is a chat model: embeddings are measured against nothing rather than against it.
        baseline = table.baseline if self.endpoint != "embeddings" else None
        saved = savings(self.cost, baseline.price if baseline else None, usage)
        self.baseline_cost = saved.alternative_cost
        plan = self.plan
        reason = next((e.reason for e in plan.entries if e.channel.id == ch.id), "") if plan else ""
        return {
            "cost": usd_number(self.cost),
            "x-faregate": {
                "request_id": self.id,
                "routing": {
                    "provider": ch.provider,
                    "model": ch.model_id,
                    "channel": ch.id,
                    "route": plan.route if plan else None,
                    "rule": plan.rule if plan else None,
                    "reason": reason,
                    "attempts": [a.as_json() for a in (self.walk.attempts if self.walk else ())],
                    "transforms": list(self.walk.transforms) if self.walk else [],
                    "dropped_params": [
                        *(plan.ignored if plan else ()),
                        *(self.walk.dropped if self.walk else ()),
                    ],
                },
                "savings": {**saved.as_json(), "baseline": baseline.model_id if baseline else None},
                **self._budget_json(),
                "usage_estimated": usage.estimated,
                "simulated": rt.simulated,
            },
        }

    def _budget_json(self) -> dict[str, Any]:
        """`budget` in `x-faregate`, when the key's remaining budget lowered the answer's bound."""
        t = self.ticket
        if t is None or t.max_tokens is None:
            return {}
        left = t.left_usd if t.left_usd is not None else Decimal(0)
        return {
            "budget": {
                "max_tokens": t.max_tokens,
                "default_max_tokens": DEFAULT_MAX_OUTPUT,
                "remaining_usd": usd_text(left),
                "reason": f"max_tokens lowered from {DEFAULT_MAX_OUTPUT} to {t.max_tokens}: what the key's"
                f" remaining budget (${usd_text(left)}) affords at the dearest channel of the plan",
            }
        }

    async def admit(self, rt: Runtime, plan: Plan, f: Features, max_tokens: int | None) -> None:
        """Rate limits and budget, before any upstream call (raises 429 / 402). The prompt is counted
        only for a key whose tokens-per-minute limit or budget needs the count."""
        key = self.key
        if key is not None and rt.accounts is not None:
            needs_count = key.tpm is not None or key.budget_usd is not None
            self.ticket = await rt.accounts.admit(
                key, plan, f.prompt_tokens if needs_count else 0, max_tokens
            )
            self._hold(rt)

    def _hold(self, rt: Runtime) -> None:
        """Journal the budget reservation: a restart after a crash charges it unless the request is recorded."""
        t = self.ticket
        if t is not None and t.reserved_usd and rt.accounts is not None:
            rt.accounts.usage.hold(
                self.id,
                key_id=t.key_id,
                reserved_usd=t.reserved_usd,
                created=self.created,
                endpoint=self.endpoint,
                alias=self.requested,
            )

    def answer_bound(self, max_tokens: int | None) -> int | None:
        """The `max_tokens` to send: the request's own; else, for a key with a budget, the bound its
        reservation was made at (the default, or what the remaining budget affords)."""
        if max_tokens is not None or self.ticket is None or self.key is None or self.key.budget_usd is None:
            return max_tokens
        return self.ticket.max_tokens or DEFAULT_MAX_OUTPUT

    def settle(self, rt: Runtime) -> None:
        """Settle the budget reservation with the cost recorded (zero when nothing was billed), so the
        budget and the usage log always agree."""
        if self.ticket is not None and rt.accounts is not None:
            rt.accounts.settle(self.ticket, self.cost, self.usage.completion_tokens)

    def response_headers(self, ch: Channel, *, with_cost: bool = True) -> dict[str, str]:
        h = {
            "X-Faregate-Request-Id": self.id,  # a stream is prepared before the middleware could add it
            "X-Faregate-Provider": ch.provider,
            "X-Faregate-Model": ch.model_id,
            "X-Faregate-Channel": ch.id,
        }
        if self.plan and self.plan.rule:
            h["X-Faregate-Rule"] = self.plan.rule
        if with_cost:
            h["X-Faregate-Cost"] = usd_text(self.cost)
        return h

    @contextlib.contextmanager
    def recorded(self, rt: Runtime) -> Iterator[None]:
        """Around a handler: whatever happens, settle the budget and write exactly one record."""
        try:
            yield
        except FaregateError as e:
            self.fail(e)
            raise
        except BaseException as e:  # a bug or a cancelled request: the record must not say 200
            self.fail_unexpected(e)
            raise
        finally:
            self.settle(rt)  # the budget settles now
            # Recorded before a plain answer's bytes go out (aiohttp sends them once the handler returns), so
            # the row reaches the journal first; a stream has journaled its row before its closing events.
            rt.recorder.record(self.record())

    def provisional(self, rt: Runtime) -> None:
        """A stream's row as it stands before its closing events are written; the final record replaces it."""
        rt.recorder.provisional(self.record())

    def fail_unexpected(self, e: BaseException) -> None:
        cancelled = isinstance(e, asyncio.CancelledError)
        self.status = 499 if cancelled else 500
        self.error = "the client went away" if cancelled else f"internal error ({type(e).__name__})"

    def fail(self, e: FaregateError, *, status: int | None = None) -> None:
        self.status = status or e.status
        self.error = e.message

    def record(self) -> RequestRecord:
        plan, f = self.plan, self.features
        return RequestRecord(
            id=self.id,
            created=self.created,
            endpoint=self.endpoint,
            requested=self.requested,
            status=self.status,
            key_id=self.key_id,
            route=plan.route if plan else None,
            rule=plan.rule if plan else None,
            model_id=self.channel.model_id if self.channel else None,
            provider=self.channel.provider if self.channel else None,
            channel=self.channel.id if self.channel else None,
            stream=self.stream,
            usage=self.usage,
            cost_usd=self.cost,
            baseline_cost_usd=self.baseline_cost,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 2),
            ttft_ms=None if self.ttft_ms is None else round(self.ttft_ms, 2),
            attempts=tuple(self.walk.attempts) if self.walk else (),
            plan=tuple(e.channel.id for e in plan.entries) if plan else (),
            features={} if f is None else f.as_json(),
            error=self.error,
            app=self.app,
            app_url=self.app_url,
            finish_reason=self.finish_reason,
        )
