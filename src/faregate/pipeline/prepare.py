"""Prepare: from what a parsed request asks (`Demand`) to its plan, then admission (rate limits and the
budget reservation), before any upstream is called. Every endpoint that answers goes through here.

Each step takes what it needs and returns a value: `plan_for` the `Plan`, `check_plan` the error of an
empty one, `admit` the key's `Ticket`, `answer_bound` the `max_tokens` to send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Ticket
from faregate.canonical import FilePart, ImagePart
from faregate.errors import AllChannelsFailed, FaregateError, InvalidRequest, ModelNotFound
from faregate.pipeline.accounts import DEFAULT_MAX_OUTPUT
from faregate.pipeline.execute import Fit
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.parameters import lacks
from faregate.routing.features import Features
from faregate.routing.plan import NO_DOCUMENTS, NO_PROVIDER_FILES, Plan, build_plan
from faregate.routing.preferences import parse_request_preferences
from faregate.routing.table import DecisionTable
from faregate.values import frozen

Kind = Literal["chat", "embedding"]


@frozen
class Demand:
    """What a parsed request asks of routing and admission."""

    model: str | None
    features: Features
    routing: Mapping[str, Any]  # faregate's own fields of the body (`provider`, `models`, `transforms`)
    kind: Kind = "chat"
    max_tokens: int | None = None  # the request's answer bound; None: the default, lowered by a budget
    admit_tokens: int | None = None  # the answer bound admission reserves for (0: no answer tokens)
    fit_tokens: int | None = None  # the tokens a channel must hold when middle-out may shorten the prompt
    fit: Fit | None = None  # the per-channel rewriting execution applies (middle-out)
    files: Callable[[], Sequence[FilePart | ImagePart]] = (
        tuple  # input files, asked for when the plan is empty
    )
    stream: bool = False


def plan_for(
    rt: Runtime,
    table: DecisionTable,
    model: str | None,
    f: Features,
    routing: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    kind: Kind = "chat",
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
        header_model=headers.get("Faregate-Model"),
        header_provider=headers.get("Faregate-Provider"),
        health=rt.health,
        now=time.monotonic(),
        rng=rt.rng,
        max_tokens=max_tokens,
        fit_tokens=fit_tokens,
        lacks=lacks,
    )


def plan_demand(rt: Runtime, table: DecisionTable, demand: Demand, headers: Mapping[str, str]) -> Plan:
    return plan_for(
        rt,
        table,
        demand.model,
        demand.features,
        demand.routing,
        headers,
        kind=demand.kind,
        max_tokens=demand.max_tokens,
        fit_tokens=demand.fit_tokens,
    )


def check_plan(plan: Plan, table: DecisionTable, rt: Runtime, demand: Demand) -> None:
    """Raise the error of an empty plan (`no_channel_error`)."""
    if not plan.entries:
        raise no_channel_error(plan, table, rt, demand.files())


def file_field(part: FilePart | ImagePart) -> str:
    """The field of an `input_file` (or of an `input_image` by id) that says where the file is: `file_id`,
    `file_url` or `file_data`."""
    return "file_id" if part.file_id is not None else "file_url" if part.url is not None else "file_data"


def file_error(plan: Plan, files: Sequence[FilePart | ImagePart]) -> InvalidRequest | None:
    """A 400 naming the input file no channel of the plan can take, when that is why the plan is empty."""
    for why, blocking in ((NO_PROVIDER_FILES, False), (NO_DOCUMENTS, True)):
        part = next((p for p in files if (isinstance(p, FilePart) and p.pdf) is blocking), None)
        if part is None or all(w != why for _, w in plan.skipped):
            continue
        where = file_field(part)
        kind = f" of type {part.media_type}" if where == "file_data" and part.media_type else ""
        noun = "image" if isinstance(part, ImagePart) else "file"
        return InvalidRequest(
            f"an input {noun} given by {where}{kind} cannot be sent to any channel of this request's plan: {why}"
            " (faregate never fetches or uploads files itself).",
            param=f"{part.source}.{where}" if part.source else None,
            code="no_capable_channel",
        )
    return None


def no_channel_error(
    plan: Plan, table: DecisionTable, rt: Runtime, files: Sequence[FilePart | ImagePart] = ()
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


async def admit(rt: Runtime, ex: Exchange, plan: Plan, demand: Demand) -> Ticket | None:
    """Rate limits and budget, before any upstream call (raises 429 / 402); the reservation journaled. The
    prompt is counted only for a key whose tokens-per-minute limit or budget needs the count."""
    key = ex.key
    if key is None or rt.accounts is None:
        return None
    needs_count = key.tpm is not None or key.budget_usd is not None
    f = demand.features
    max_tokens = demand.max_tokens if demand.admit_tokens is None else demand.admit_tokens
    ticket = await rt.accounts.admit(key, plan, f.prompt_tokens if needs_count else 0, max_tokens)
    if ticket.reserved_usd:
        # A restart after a crash charges the reservation unless the request is recorded.
        rt.accounts.usage.hold(
            ex.id,
            key_id=ticket.key_id,
            reserved_usd=ticket.reserved_usd,
            created=ex.created,
            endpoint=ex.endpoint,
            alias=plan.requested,
        )
    return ticket


def answer_bound(key: ApiKey | None, ticket: Ticket | None, max_tokens: int | None) -> int | None:
    """The `max_tokens` to send: the request's own; else, for a key with a budget, the bound its
    reservation was made at (the default, or what the remaining budget affords)."""
    if max_tokens is not None or ticket is None or key is None or key.budget_usd is None:
        return max_tokens
    return ticket.max_tokens or DEFAULT_MAX_OUTPUT
