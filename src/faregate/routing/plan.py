"""Build the plan for one request: the ordered channels it will try, each with the reason it is there.

Precedence (DESIGN "Choosing a channel"): `Faregate-Model` / `Faregate-Provider` headers over the body;
an explicit model pins it (no rules, still fallback across its channels); an alias (or no model: `auto`)
walks its route and the first rule whose `when` holds gives the candidates. The request's preferences
then narrow the plan, never widen it. Pure: health and randomness come in as arguments.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from faregate.config.model import Preferences
from faregate.errors import InvalidRequest, ModelNotFound, ModelRetired
from faregate.routing.compile import entries as numbered
from faregate.routing.compile import model_candidates, provider_rank, sort_channels, static_exclusion
from faregate.routing.features import Features, matches
from faregate.routing.health import HealthView, NoHealth
from faregate.routing.preferences import NO_PREFERENCES, RequestPreferences, Sort, narrow, provider_name
from faregate.routing.table import (
    DOCUMENTS,
    HOSTED_TOOLS,
    PROVIDER_FILES,
    Candidates,
    Channel,
    CompiledRule,
    DecisionTable,
    Retirement,
)
from faregate.routing.table import PlanEntry as PlanEntry  # re-exported: it belongs to the plan
from faregate.values import frozen

Kind = Literal["chat", "embedding"]
NO_HEALTH = NoHealth()
NO_CAPS: frozenset[str] = frozenset()
# Why a channel cannot take the request's input files (matched by the server to name the file's `param`).
NO_PROVIDER_FILES = "input files by id or URL need an api: openai-responses channel"
NO_DOCUMENTS = "no PDF input (an anthropic, gemini or openai-responses channel reads PDFs)"
STABLE = frozenset({"cheapest", "ordered"})  # strategies whose compiled order holds for every request
# The first of the request's parameters a channel would not carry, or None (`provider.require_parameters`):
# the wire formats know what they carry, so the caller passes it in (`providers/parameters.py::lacks`).
Lacks = Callable[[Channel, Features], str | None]


@frozen
class Plan:
    requested: str  # what the request named ("auto" when it named nothing)
    pinned: bool  # an explicit model, not an alias
    route: str | None
    rule: str | None
    entries: tuple[PlanEntry, ...]
    skipped: tuple[tuple[str, str], ...]  # (channel id, why) removed for this request
    generation: int = 0
    ignored: tuple[str, ...] = ()  # request fields accepted but not acted on (reported in dropped_params)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(e.channel for e in self.entries)

    def unavailable_only(self) -> bool:
        """True when every removed channel was cooling down: 503, not the request's fault."""
        return all(why.startswith("cooling down") for _, why in self.skipped)


def resolve(table: DecisionTable, model: str, f: Features) -> Candidates:
    """An alias walks its route; a model id (canonical or an unambiguous upstream id) is pinned."""
    rules = table.route_for(model)
    if rules is not None:
        rule = first_match(rules, f)
        if rule is None:
            raise InvalidRequest(
                f"no rule of route '{table.aliases[model]}' matches this request", param="model"
            )
        if rule.retired and not rule.channels:
            raise ModelRetired(
                f"{retired_message(rule.retired)}; rule '{rule.name}' of route '{rule.route}' has no other "
                "candidate",
                param="model",
            )
        return rule.candidates
    model_id = model if model in table.known else table.upstream_ids.get(model)
    if model_id is None:
        among = table.ambiguous_ids.get(model)
        if among:
            raise ModelNotFound(
                f"The model '{model}' is ambiguous: it is the upstream id of {', '.join(among)}; "
                "name one of them",
                param="model",
            )
        hint = (
            f" ('{model}' is a route of routes.yaml, but a request names an alias, and no alias names it)"
            if model in table.routes
            else ""
        )
        raise ModelNotFound(
            f"The model '{model}' does not exist or is not an alias of this gateway{hint}", param="model"
        )
    found = table.by_model.get(model_id)
    if found is None and model_id in table.retired:
        raise ModelRetired(retired_message((table.retired[model_id],)), param="model")
    return found or model_candidates(model_id, ())  # known, but no channel to route to


def retired_message(gone: Sequence[Retirement]) -> str:
    """`The model 'x/y' is retired: its offering at 'groq' left groq's listing on 2026-12-03 (catalog
    sync); its replacement is 'x/z'` (several models: one clause each)."""
    return "; ".join(
        f"The model '{g.model_id}' is retired: its offering at '{g.provider}' {g.said}"
        + (f"; its replacement is '{g.replacement}'" if g.replacement else "")
        for g in gone
    )


def first_match(rules: Sequence[CompiledRule], f: Features) -> CompiledRule | None:
    for rule in rules:
        if matches(rule.when, f):
            return rule
    return None


def build_plan(
    table: DecisionTable,
    model: str | None,
    f: Features,
    prefs: RequestPreferences = NO_PREFERENCES,
    *,
    kind: Kind = "chat",
    header_model: str | None = None,
    header_provider: str | None = None,
    health: HealthView = NO_HEALTH,
    now: float = 0.0,
    rng: random.Random | None = None,
    max_tokens: int | None = None,
    fit_tokens: int | None = None,
    lacks: Lacks | None = None,
) -> Plan:
    """`fit_tokens`: the prompt tokens a channel's context must hold when fewer than the prompt's (the
    middle-out transform shortens the conversation per channel); rules still see the whole prompt.
    `lacks`: under `require_parameters`, the parameter of the request a channel would not carry."""
    # `models` without `model` is the model list (OpenRouter): its first entry is the model.
    requested = header_model or model or (prefs.models[0] if prefs.models else "auto")
    name, variant = model_variant(table, requested)
    if header_provider:
        prefs = _with_only(prefs, provider_name(header_provider))
    variant_sort = VARIANT_SORT.get(variant or "")
    if variant_sort is not None and prefs.sort is None:
        prefs = replace(prefs, sort=variant_sort)
    free_only = variant == "free"
    effective = narrow(table.preferences, prefs)
    # The table's channels already passed routes.yaml's preferences: check them again only when the
    # request narrowed them. `need`, `min_context`: the request's hard requirements, computed once.
    recheck = _narrower(effective, table.preferences)
    need = _needs(f, prefs.require_parameters)
    lacking = lacks if prefs.require_parameters else None
    answer = max_tokens or 0
    # enough for any channel this large: no count needed for it (middle-out may fit a shorter prompt)
    fit = f.ceiling if fit_tokens is None else min(fit_tokens, f.ceiling)
    min_context = fit + answer
    keep_order = prefs.sort is None and prefs.order is None
    cooling = health.cooling
    first = resolve(table, name, f)
    sources = [(first, "")]
    for i, extra in enumerate(prefs.models):
        if extra == requested:
            continue
        try:
            sources.append((resolve(table, model_variant(table, extra)[0], f), f"models[{i}] fallback: "))
        except (ModelNotFound, InvalidRequest) as e:
            raise type(e)(f"models[{i}]: {e.message}", param=f"models[{i}]") from None
    entries: list[PlanEntry] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for cands, prefix in sources:
        kept = []
        for c in cands.channels:
            if c.id in seen:
                continue
            seen.add(c.id)
            if (
                c.kind == kind
                and (c.context >= min_context or f.fits(c.context - answer))
                and (not need or need <= c.caps)
                and not (recheck and static_exclusion(c, effective))
                and not cooling(c.id, now)
                and (not free_only or c.price.is_free())
                and (lacking is None or lacking(c, f) is None)
            ):
                kept.append(c)
            else:  # the slow path, for the reason only
                why = _unusable(c, kind, fit, f, effective, prefs.require_parameters, health, now, max_tokens)
                if why is None and lacking is not None:
                    missing = lacking(c, f)
                    why = f"does not take '{missing}' (require_parameters)" if missing else None
                skipped.append((c.id, why or "not free (:free)"))
        filtered = len(kept) < len(cands.channels)
        if not filtered and not prefix and keep_order and cands.strategy in STABLE:
            entries += cands.entries  # the compiled plan as it stands: nothing to remove or reorder
            continue
        ordered = _order(kept, filtered, cands, prefs, effective, health, rng)
        entries += numbered(ordered, cands.reason, prefix)
    # No fallback: one attempt; but `order` with `allow_fallbacks: false` already kept exactly the
    # providers of `order` (in `narrow`), each of which may be tried, unless routes.yaml itself says no.
    exact_order = prefs.order is not None and prefs.allow_fallbacks is False
    if not table.preferences.allow_fallbacks or (not effective.allow_fallbacks and not exact_order):
        entries = entries[:1]
    return Plan(
        requested,
        first.route is None,
        first.route,
        first.rule,
        tuple(entries),
        tuple(skipped),
        table.generation,
        prefs.ignored,
    )


# OpenRouter's model variants: `model:floor` is cheapest first, `model:nitro` fastest first, `model:free`
# only free offerings. `openrouter/auto` is OpenRouter's name for its own router: faregate's `auto`.
VARIANT_SORT: Mapping[str, Sort] = MappingProxyType({"floor": "price", "nitro": "throughput"})
VARIANTS = frozenset({"floor", "nitro", "free"})
ALIASES: Mapping[str, str] = MappingProxyType({"openrouter/auto": "auto"})


def model_variant(table: DecisionTable, name: str) -> tuple[str, str | None]:
    """(the name to resolve, its variant suffix). A name the table knows as it is keeps its colon (Ollama's
    `llama3.1:8b`, a catalog id that has one); otherwise a known suffix is split off."""
    if _known(table, name):
        return name, None
    base, sep, suffix = name.rpartition(":")
    if sep and suffix in VARIANTS and base:
        return ALIASES.get(base, base), suffix
    return ALIASES.get(name, name), None


def _known(table: DecisionTable, name: str) -> bool:
    return (
        name in table.aliases
        or name in table.known
        or name in table.upstream_ids
        or name in table.ambiguous_ids
    )


def _with_only(prefs: RequestPreferences, provider: str) -> RequestPreferences:
    only = (provider,) if prefs.only is None else tuple(p for p in prefs.only if p == provider)
    return replace(prefs, only=only)


def _narrower(effective: Preferences, static: Preferences) -> bool:
    """Does the request exclude more than routes.yaml? (`order` and `allow_fallbacks` exclude nothing.)"""
    return effective is not static and (
        effective.data_collection != static.data_collection
        or effective.only != static.only
        or effective.ignore != static.ignore
        or effective.max_price_prompt != static.max_price_prompt
        or effective.max_price_completion != static.max_price_completion
    )


def _needs(f: Features, require_parameters: bool) -> frozenset[str]:
    """Capabilities a channel must have: tools and images always, JSON mode under require_parameters."""
    if not (
        f.has_tools
        or f.has_images
        or f.hosted_tools
        or f.documents
        or f.provider_files
        or (require_parameters and f.json_mode)
    ):
        return NO_CAPS
    return frozenset(
        cap
        for cap, needed in (
            ("tools", f.has_tools),
            (HOSTED_TOOLS, f.hosted_tools),
            (DOCUMENTS, f.documents),
            (PROVIDER_FILES, f.provider_files),
            ("vision", f.has_images),
            ("json", require_parameters and f.json_mode),
        )
        if needed
    )


def _unusable(
    c: Channel,
    kind: Kind,
    fit: int,
    f: Features,
    prefs: Preferences,
    require_parameters: bool,
    health: HealthView,
    now: float,
    max_tokens: int | None,
) -> str | None:
    """Why `c` cannot serve this request, or None. Tools and images are hard requirements (an upstream
    without them fails the request); JSON mode only under `require_parameters` (OpenRouter's meaning)."""
    if c.kind != kind:
        return f"{c.kind} model, not {kind}"
    why = static_exclusion(c, prefs)
    if why:
        return why
    if f.has_tools and "tools" not in c.caps:
        return "no tool support"
    if f.has_images and "vision" not in c.caps:
        return "no image input"
    if f.hosted_tools and HOSTED_TOOLS not in c.caps:
        return "built-in tools need an api: openai-responses channel"
    if f.provider_files and PROVIDER_FILES not in c.caps:
        return NO_PROVIDER_FILES
    if f.documents and DOCUMENTS not in c.caps:
        return NO_DOCUMENTS
    if require_parameters and f.json_mode and "json" not in c.caps:
        return "no JSON mode (require_parameters)"
    if fit + (max_tokens or 0) > c.context:
        return f"context {c.context} < {fit} prompt tokens" + (
            f" + {max_tokens} max_tokens" if max_tokens else ""
        )
    if health.cooling(c.id, now):
        return "cooling down after a failure"
    return None


def _order(
    kept: list[Channel],
    filtered: bool,
    cands: Candidates,
    req: RequestPreferences,
    effective: Preferences,
    health: HealthView,
    rng: random.Random | None,
) -> Iterable[Channel]:
    """The compiled order is right as long as nothing was removed and the provider order is routes.yaml's;
    otherwise sort again the same way (removing a model's cheapest channel can move the model back)."""
    if req.sort == "price":
        return sorted(kept, key=lambda c: c.expected_cost_usd)
    if req.sort in ("latency", "throughput") or cands.strategy == "fastest":
        return _by_latency(kept, health)
    if req.order is not None or filtered:
        rank = provider_rank(effective.order)
        kept = list(sort_channels(kept, cands.strategy, cands.models, cands.weights, rank))
    if cands.strategy == "weighted" and cands.weights and kept:
        return _weighted_first(kept, cands.weights, rng or random.Random())  # the server passes its own
    return kept


def _by_latency(kept: list[Channel], health: HealthView) -> list[Channel]:
    """Observed latency first (moving average); channels never measured keep their order after them."""
    measured = [(lat, i, c) for i, c in enumerate(kept) if (lat := health.latency_ms(c.id)) is not None]
    unmeasured = [c for c in kept if health.latency_ms(c.id) is None]
    return [c for _, _, c in sorted(measured, key=lambda t: (t[0], t[1]))] + unmeasured


def _weighted_first(kept: list[Channel], weights: Mapping[str, Decimal], rng: random.Random) -> list[Channel]:
    models = list(dict.fromkeys(c.model_id for c in kept))
    w = [float(weights.get(m, 0)) for m in models]
    if sum(w) <= 0:
        return kept
    pick = rng.choices(models, weights=w, k=1)[0]
    return [c for c in kept if c.model_id == pick] + [c for c in kept if c.model_id != pick]
