"""Compile routes.yaml + catalog into the `DecisionTable` (DESIGN "Choosing a channel").

Everything that does not depend on the request is decided here, once: channels from offerings and
keys, static preferences applied, candidates resolved and sorted by each rule's strategy. Pure: the
environment comes in as a mapping, problems go out as `Problem`s placed in routes.yaml by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from decimal import Decimal
from types import MappingProxyType

from faregate.catalog.merge import Merged, Problem, by_model, retired_text, warning
from faregate.catalog.model import MILLION, Offering, ProviderInfo
from faregate.config.model import Preferences, RoutesSpec, RuleSpec, Selector
from faregate.routing.table import (
    API_CAPS,
    Baseline,
    Candidates,
    Channel,
    CompiledRule,
    DecisionTable,
    PlanEntry,
    Retirement,
)
from faregate.values import frozen


@frozen
class Compiled:
    table: DecisionTable
    problems: tuple[Problem, ...]


def compile_table(
    spec: RoutesSpec,
    merged: Merged,
    env: Mapping[str, str],
    *,
    generation: int = 0,
    assume_keys: bool = False,
) -> Compiled:
    """`assume_keys` plans as if every provider had a key (explain, benchmarks): channels carry no key."""
    problems: list[Problem] = list(merged.problems)
    prefs = spec.preferences
    problems += _check_provider_refs(spec, merged.providers)
    declared_providers = _declared_providers(spec, merged.providers)
    every, inactive = _channels(merged, env, spec, assume_keys)
    channels = [c for c in every if c.provider not in inactive]
    allowed = [c for c in channels if not static_exclusion(c, prefs)]
    order = provider_rank(prefs.order)
    models = {
        model_id: tuple(sorted(chs, key=lambda c: (order(c.provider), c.expected_cost_usd, c.id)))
        for model_id, chs in _group(allowed).items()
    }
    known = by_model(merged.offerings)
    # Models whose declaration under `models:` was rejected by the merge: that problem is reported
    # there, so references to them are not reported again (as unknown, unroutable, bad baseline).
    rejected = {
        str(p.path[1]) for p in merged.problems if p.is_error and len(p.path) > 1 and p.path[0] == "models"
    }
    retired = retired_models(known)
    upstream: dict[str, set[str]] = {}
    for o in merged.offerings:
        for uid in (o.upstream_id, *o.aliases):  # a dated snapshot id names its model too
            upstream.setdefault(uid, set()).add(o.model_id)
            # and so does the id under its provider's name, as LiteLLM configs spell a model
            upstream.setdefault(f"{o.provider}/{uid}", set()).add(o.model_id)
    upstream_ids = {u: next(iter(m)) for u, m in upstream.items() if len(m) == 1 and u not in known}
    aliases, alias_problems = _resolve_aliases(spec)
    problems += alias_problems
    for alias in spec.aliases:  # names resolve as aliases first: a model of the same name is unreachable
        if alias in known or alias in upstream:
            hidden = ", ".join(sorted(upstream.get(alias, ()))) or alias
            problems.append(
                Problem(
                    spec.alias_paths[alias],
                    f"alias '{alias}' hides the model id '{alias}' ({hidden}): requests for it would get "
                    "the route",
                )
            )
    problems += _unnamed_routes(spec, aliases, alias_problems)
    routes = {}
    for route, rules in spec.routes.items():
        routes[route] = tuple(
            _compile_rule(
                r,
                known,
                upstream_ids,
                retired,
                rejected,
                declared_providers,
                every,
                set(inactive),
                prefs,
                order,
                problems,
            )
            for r in rules
        )
        problems += _reachability(rules)
    baseline = None
    if spec.baseline:
        priced = [o.price for o in known.get(spec.baseline, []) if o.price is not None]
        if priced:
            baseline = Baseline(spec.baseline, min(priced, key=lambda p: (p.input, p.output)))
        elif spec.baseline not in rejected:
            problems.append(
                Problem(
                    ("savings", "baseline"), f"unknown or unpriced baseline model '{spec.baseline}'", True
                )
            )
    table = DecisionTable(
        routes=MappingProxyType(routes),
        aliases=MappingProxyType(aliases),
        models=MappingProxyType(models),
        upstream_ids=MappingProxyType(upstream_ids),
        ambiguous_ids=MappingProxyType(
            {u: tuple(sorted(m)) for u, m in upstream.items() if len(m) > 1 and u not in known}
        ),
        channels=MappingProxyType({c.id: c for c in channels}),
        preferences=prefs,
        baseline=baseline,
        inactive=MappingProxyType(inactive),
        unpriced=tuple(sorted(o.key for o in merged.offerings if o.price is None)),
        model_names=MappingProxyType({o.model_id: o.name for o in merged.offerings if o.name}),
        known=frozenset(known),
        offerings=len(merged.offerings),
        by_model=MappingProxyType({m: model_candidates(m, chs) for m, chs in models.items()}),
        unpriced_offerings=tuple(
            o for o in merged.offerings if o.price is None and not o.retired and o.provider not in inactive
        ),
        retired=MappingProxyType(retired),
        generation=generation,
    )
    return Compiled(table, tuple(problems))


def retired_models(known: Mapping[str, list[Offering]]) -> dict[str, Retirement]:
    """Models whose every priced offering is retired: requests for them get 404 `model_retired`.
    The latest retirement speaks for the model (a sync's over the shipped catalog's)."""
    out = {}
    for model_id, offs in known.items():
        if any(o.price is not None and not o.retired for o in offs):
            continue
        gone = sorted((o for o in offs if o.retired), key=lambda o: (o.retired_on or "", o.provider))
        if gone:
            out[model_id] = retirement(gone[-1], offs)
    return out


def retirement(o: Offering, offs: Iterable[Offering] = ()) -> Retirement:
    replacement = o.replacement or next((x.replacement for x in offs if x.replacement), None)
    return Retirement(
        o.model_id, o.provider, o.retired_by or "catalog", retired_text(o), o.retired_on, replacement
    )


def provider_rank(order: Sequence[str]) -> Callable[[str], int]:
    """Position in a provider order; providers not listed come after, in their existing order."""
    rank = {p: i for i, p in enumerate(order)}
    last = len(order)
    return lambda provider: rank.get(provider, last)


def static_exclusion(c: Channel, prefs: Preferences) -> str | None:
    """Why `prefs` forbids channel `c`, or None. Shared by compile (routes.yaml) and plan (requests)."""
    if prefs.data_collection == "deny" and c.data_collection == "allow":
        return f"{c.provider} may collect data (data_collection: deny)"
    if prefs.only is not None and c.provider not in prefs.only:
        return f"{c.provider} not in only"
    if c.provider in prefs.ignore:
        return f"{c.provider} ignored"
    if prefs.max_price_prompt is not None and c.price.input > prefs.max_price_prompt:
        return f"input price {c.price.input} > max_price.prompt {prefs.max_price_prompt}"
    if prefs.max_price_completion is not None and c.price.output > prefs.max_price_completion:
        return f"output price {c.price.output} > max_price.completion {prefs.max_price_completion}"
    return None


def _channels(
    merged: Merged, env: Mapping[str, str], spec: RoutesSpec, assume_keys: bool
) -> tuple[list[Channel], dict[str, str]]:
    """One channel per offering and key present (`#2` for a provider's second key), of every provider:
    those of inactive ones (no key) too, so checks do not depend on which keys are set here."""
    channels: list[Channel] = []
    inactive: dict[str, str] = {}
    keys: dict[str, list[tuple[str | None, str | None]]] = {}
    for name, info in merged.providers.items():
        present: list[tuple[str | None, str | None]] = [
            (var, env[var]) for var in info.api_key_env if env.get(var)
        ]
        if info.api_key_env and not present:
            if assume_keys:
                present = [(info.api_key_env[0], None)]
            else:
                inactive[name] = f"no key: set {' or '.join(info.api_key_env)}"
        keys[name] = present or [(None, None)]
    for o in merged.offerings:
        if o.price is None or o.retired:
            continue
        info = merged.providers[o.provider]
        for n, (var, key) in enumerate(keys[o.provider], start=1):
            channels.append(_channel(o, info, var, key, n, spec))
    return channels, inactive


def _channel(
    o: Offering, info: ProviderInfo, var: str | None, key: str | None, n: int, spec: RoutesSpec
) -> Channel:
    assert o.price is not None
    api = o.api or info.api
    expected = (
        o.price.input * spec.estimate_input_tokens + o.price.output * spec.estimate_output_tokens
    ) / MILLION
    return Channel(
        id=f"{o.provider}:{o.upstream_id}" + (f"#{n}" if n > 1 else ""),
        provider=o.provider,
        model_id=o.model_id,
        upstream_id=o.upstream_id,
        api=api,
        base_url=info.base_url.rstrip("/"),
        kind=o.kind,
        price=o.price,
        context=o.context,
        max_output=o.max_output,
        caps=o.caps | API_CAPS.get(api, frozenset()),
        data_collection=info.data_collection,
        expected_cost_usd=expected,
        key_env=var,
        api_key=key,
        params=info.params if o.params is None else o.params,
    )


def _group(channels: Iterable[Channel]) -> dict[str, list[Channel]]:
    out: dict[str, list[Channel]] = {}
    for c in channels:
        out.setdefault(c.model_id, []).append(c)
    return out


def _declared_providers(spec: RoutesSpec, providers: Mapping[str, ProviderInfo]) -> set[str]:
    """Names a reference may use: those under `providers:` (disabled ones too), else the catalog's."""
    return set(spec.providers) or set(providers)


def _check_provider_refs(spec: RoutesSpec, providers: Mapping[str, ProviderInfo]) -> list[Problem]:
    declared = _declared_providers(spec, providers)
    out = []
    for field in ("order", "only", "ignore"):
        for i, p in enumerate(getattr(spec.preferences, field) or ()):
            if p not in declared:
                out.append(
                    Problem(("preferences", field, i), f"unknown provider '{p}' in preferences.{field}")
                )
    for i, p in enumerate(spec.sync_providers or ()):
        if p not in declared:
            out.append(
                Problem(("catalog", "sync_providers", i), f"unknown provider '{p}' in catalog.sync_providers")
            )
    return out


def _resolve_aliases(spec: RoutesSpec) -> tuple[dict[str, str], list[Problem]]:
    resolved: dict[str, str] = {}
    problems = []
    for alias in spec.aliases:
        seen = [alias]
        target = spec.aliases[alias]
        while target in spec.aliases and target not in spec.routes:
            if target in seen:
                cycle = " -> ".join([*seen, target])
                problems.append(Problem(spec.alias_paths[alias], f"alias cycle: {cycle}", True))
                break
            seen.append(target)
            target = spec.aliases[target]
        else:
            if target in spec.routes:
                resolved[alias] = target
            else:
                problems.append(
                    Problem(
                        spec.alias_paths[alias],
                        f"alias '{alias}' names unknown route or alias '{target}'",
                        True,
                    )
                )
    return resolved, problems


def _unnamed_routes(
    spec: RoutesSpec, aliases: Mapping[str, str], alias_problems: Sequence[Problem]
) -> list[Problem]:
    """Routes no alias names: a request names a model or an alias, never a route (DESIGN "Choosing a
    channel"), so such a route serves nothing. A warning: it harms no request, and a route kept for later
    is not a mistake; a route named `auto` is the likely slip (`auto` is the alias a request without a
    model asks for). Not reported while an alias is broken (that error says what is wrong)."""
    if any(p.is_error for p in alias_problems):
        return []
    named = set(aliases.values())
    out = []
    for route in spec.routes:
        if route in named:
            continue
        if route == "auto":
            why = (
                "route 'auto' is named by no alias, so no request reaches it: `auto` (and a request without "
                "a model) asks for the alias `auto`, not a route; add `aliases: {auto: auto}`"
            )
        else:
            why = f"route '{route}' is named by no alias, so no request reaches it; add one, e.g. `aliases: {{{route}: {route}}}`"
        out.append(warning(("routes", route), why))
    return out


def _reachability(rules: Sequence[RuleSpec]) -> list[Problem]:
    """Rules that can never be the first to match: after a catch-all, after a rule with the very same
    conditions, or with a token range that no count satisfies."""
    out = []
    catch_all = None
    for i, r in enumerate(rules):
        twin = next((e for e in rules[:i] if e.when == r.when), None)
        if catch_all is not None:
            out.append(
                Problem(
                    r.path,
                    f"rule '{r.name}' can never match: rule '{catch_all}' before it matches every request",
                )
            )
        elif twin is not None:
            out.append(
                Problem(
                    r.path,
                    f"rule '{r.name}' can never match: rule '{twin.name}' before it has the same conditions",
                )
            )
        elif r.when.unconditional:
            catch_all = r.name
        gt, lt = r.when.prompt_tokens_gt, r.when.prompt_tokens_lt
        if gt is not None and lt is not None and lt <= gt + 1:
            out.append(
                Problem(
                    (*r.path, "when"),
                    f"rule '{r.name}' can never match: prompt_tokens_gt {gt} and prompt_tokens_lt {lt}",
                )
            )
    return out


def _compile_rule(
    r: RuleSpec,
    known: Mapping[str, list[Offering]],
    upstream_ids: Mapping[str, str],
    retired: Mapping[str, Retirement],
    rejected: Set[str],
    providers: Set[str],
    channels: Sequence[Channel],
    inactive: set[str],
    prefs: Preferences,
    order: Callable[[str], int],
    problems: list[Problem],
) -> CompiledRule:
    """`channels` includes those of inactive providers, so checks do not depend on which keys are set.
    `rejected`: models whose declaration was rejected (already reported); `providers`: the provider
    names a selector may use. A rule that retirements by the catalog or a sync leave without a
    candidate is a warning (its requests get 404 `model_retired`); routes.yaml's own doing is an error."""
    unknown = 0
    found: list[Problem] = []
    gone: tuple[Retirement, ...] = ()
    if isinstance(r.use, Selector):
        for i, p in enumerate(r.use.providers or ()):
            if p not in providers:
                unknown += 1
                problems.append(Problem((*r.path, "use", "providers", i), f"unknown provider '{p}'"))
        pool = [c for c in channels if c.kind == "chat" and _selects(r.use, c)]
        models = tuple(sorted({c.model_id for c in pool}))
        if not unknown and not models:
            gone = _retired_matches(r.use, known)
            if _catalog_caused(gone):
                found.append(
                    warning(
                        (*r.path, "use"),
                        f"rule '{r.name}': every model this filter matched is retired "
                        f"({_retired_list(gone)}); its requests get 404 model_retired",
                    )
                )
            else:
                problems.append(
                    Problem((*r.path, "use"), f"rule '{r.name}': no model in the catalog matches this filter")
                )
    else:
        models = tuple(upstream_ids.get(m, m) for m in r.use)  # an upstream id names its model
        for i, m in enumerate(models):
            if m not in known:
                unknown += 1
                if m not in rejected:
                    problems.append(Problem((*r.path, "use", i), f"unknown model '{m}'"))
        wanted = set(models)
        pool = [c for c in channels if c.model_id in wanted]
        if pool:  # with no candidate left, the rule's own warning below says it all
            for i, m in enumerate(models):
                found += _retired_offerings(r, i, m, known.get(m, ()), retired.get(m))
        if not pool and not unknown and rejected.isdisjoint(models):
            gone = tuple(retired[m] for m in models if m in retired)
            if _catalog_caused(gone):
                found.append(
                    warning(
                        (*r.path, "use"),
                        f"rule '{r.name}': no routable offering of {', '.join(models)}: "
                        f"{_retired_list(gone)}; its requests get 404 model_retired",
                    )
                )
            else:
                cause = (
                    "retired in routes.yaml" if gone else "unpriced: declare input and output under models:"
                )
                problems.append(
                    Problem(
                        (*r.path, "use"),
                        f"rule '{r.name}': no routable offering of {', '.join(models)} ({cause})",
                    )
                )
    problems += found
    excluded = []
    kept = []
    for c in pool:
        why = static_exclusion(c, prefs)
        if why:
            excluded.append((c.id, why))
        elif c.provider in inactive:
            excluded.append((c.id, f"{c.provider} inactive"))
        else:
            kept.append(c)
    if pool and all(static_exclusion(c, prefs) for c in pool):
        reasons = "; ".join(sorted({why for _, why in excluded}))
        problems.append(
            Problem(
                (*r.path, "use"), f"rule '{r.name}': every candidate is excluded by preferences ({reasons})"
            )
        )
    weights = dict(r.weights)
    for m in weights:
        if m not in models:
            problems.append(
                Problem(
                    (*r.path, "weights", m), f"weight for '{m}', which is not a candidate of rule '{r.name}'"
                )
            )
    if r.strategy == "weighted":
        weights = {m: weights.get(m, Decimal(1)) for m in models}
    sorted_channels = sort_channels(kept, r.strategy, models, weights, order)
    reason = f"rule '{r.name}' ({r.strategy})"
    frozen_weights = MappingProxyType(weights)
    return CompiledRule(
        route=r.route,
        index=r.index,
        name=r.name,
        when=r.when,
        strategy=r.strategy,
        models=tuple(models),
        channels=sorted_channels,
        candidates=Candidates(
            r.route,
            r.name,
            sorted_channels,
            reason,
            r.strategy,
            tuple(models),
            frozen_weights,
            entries(sorted_channels, reason),
        ),
        weights=frozen_weights,
        excluded=tuple(excluded),
        warnings=tuple(p.message for p in found),
        retired=gone if not sorted_channels else (),
    )


def _catalog_caused(gone: Sequence[Retirement]) -> bool:
    return any(g.by != "routes.yaml" for g in gone)


def _retired_list(gone: Iterable[Retirement]) -> str:
    return "; ".join(
        f"'{g.model_id}' at '{g.provider}' {g.said}"
        + (f", replacement '{g.replacement}'" if g.replacement else "")
        for g in gone
    )


def _retired_offerings(
    r: RuleSpec, i: int, model_id: str, offs: Sequence[Offering], whole: Retirement | None
) -> list[Problem]:
    """Warnings for a listed model's offerings that the catalog or a sync retired (not routes.yaml)."""
    where = (*r.path, "use", i)
    if whole is not None:
        if whole.by == "routes.yaml":
            return []
        return [
            warning(
                where,
                f"rule '{r.name}': {_retired_list((whole,))}: not routed, the rule's other candidates serve it",
            )
        ]
    return [
        warning(where, f"rule '{r.name}': '{model_id}' at '{o.provider}' {retired_text(o)}, not routed")
        for o in offs
        if o.retired and o.retired_by != "routes.yaml" and o.price is not None
    ]


def _retired_matches(s: Selector, known: Mapping[str, list[Offering]]) -> tuple[Retirement, ...]:
    """The retired offerings a selector would have matched, by model."""
    out: dict[str, Retirement] = {}
    for model_id, offs in known.items():
        for o in offs:
            if (
                o.retired
                and o.price is not None
                and o.kind == "chat"
                and _matches(s, o.model_id, o.provider, o.context, o.caps, o.price.input, o.price.output)
            ):
                out.setdefault(model_id, retirement(o, offs))
    return tuple(out.values())


def model_candidates(model_id: str, channels: tuple[Channel, ...]) -> Candidates:
    """A pinned model's candidates: its channels, provider order then cost (no rules)."""
    return Candidates(
        None, None, channels, "pinned model", models=(model_id,), entries=entries(channels, "pinned model")
    )


def entries(channels: Iterable[Channel], reason: str, prefix: str = "") -> tuple[PlanEntry, ...]:
    """Plan entries numbered from 1: made once per rule here, per request only when a plan differs."""
    return tuple(PlanEntry(c, f"{prefix}{reason} #{i}") for i, c in enumerate(channels, start=1))


def sort_channels(
    channels: Iterable[Channel],
    strategy: str,
    models: Sequence[str],
    weights: Mapping[str, Decimal],
    order: Callable[[str], int],
) -> tuple[Channel, ...]:
    """Model groups ordered by strategy; within a model, provider order then expected cost.
    Also run per request when a request removes or reorders channels, so it does only what it must."""
    groups = _group(channels)
    for chs in groups.values():
        if len(chs) > 1:
            chs.sort(key=lambda c: (order(c.provider), c.expected_cost_usd, c.id))
    if len(groups) < 2:
        return tuple(c for chs in groups.values() for c in chs)
    key: Callable[[str], tuple[object, ...]]
    if strategy == "ordered":
        position = {m: i for i, m in enumerate(models)}
        key = lambda m: (position.get(m, len(position)), m)  # noqa: E731
    else:  # cheapest, fastest (cost is its prior), weighted (by weight, then cost)
        cheapest = {m: min(c.expected_cost_usd for c in chs) for m, chs in groups.items()}
        if strategy == "weighted":
            key = lambda m: (-weights.get(m, Decimal(0)), cheapest[m], m)  # noqa: E731
        else:
            key = lambda m: (cheapest[m], m)  # noqa: E731
    return tuple(c for m in sorted(groups, key=key) for c in groups[m])


def _selects(s: Selector, c: Channel) -> bool:
    return _matches(s, c.model_id, c.provider, c.context, c.caps, c.price.input, c.price.output)


def _matches(
    s: Selector, model_id: str, provider: str, context: int, caps: frozenset[str], inp: Decimal, out: Decimal
) -> bool:
    return (
        (s.min_context is None or context >= s.min_context)
        and all(
            getattr(s, cap) is None or (cap in caps) == getattr(s, cap) for cap in ("tools", "vision", "json")
        )
        and (s.providers is None or provider in s.providers)
        and (s.authors is None or model_id.split("/", 1)[0] in s.authors)
        and (s.max_input_price is None or inp <= s.max_input_price)
        and (s.max_output_price is None or out <= s.max_output_price)
    )
