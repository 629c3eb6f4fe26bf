"""Turn a schema-valid routes.yaml into a `RoutesSpec`, and load one from disk.

Shape problems are the schema's job (validate.py); this step only converts (prices to `Decimal`,
regexes compiled) and reports what the schema cannot say: a bad regex.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from faregate.config.load import ConfigIssue, PathElem, YamlDoc, load_yaml, parse_yaml, plain
from faregate.config.model import (
    CorsSpec,
    OfferingPatch,
    Preferences,
    ProviderPatch,
    RoutesSpec,
    RuleSpec,
    Selector,
    ServerSpec,
    When,
)
from faregate.config.validate import schema_issues, valid_part
from faregate.values import frozen

CAPS = ("tools", "vision", "json", "streaming")


def money(value: Any) -> Decimal:
    """USD from YAML: `repr` of a float is the shortest text that reads back as it, i.e. what was typed."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def opt_money(value: Any) -> Decimal | None:
    return None if value is None else money(value)


@frozen
class RoutesRead:
    """routes.yaml read as far as it goes. With schema errors, `spec` is built from the part that
    validated (`doc`, positions kept) so the semantic checks can still run: `complete` is False then,
    `pruned` holds the paths removed and `dropped` the providers, models, routes and aliases whose
    definitions went entirely."""

    spec: RoutesSpec | None
    doc: YamlDoc | None
    issues: list[ConfigIssue]
    complete: bool = True
    pruned: tuple[tuple[PathElem, ...], ...] = ()
    dropped: frozenset[str] = frozenset()

    def follows_on(self, path: Sequence[PathElem], message: str) -> bool:
        """A semantic finding that only repeats a schema error: in or above a removed part, or naming
        a definition that was removed."""
        p = tuple(path)
        return any(q[: len(p)] == p or p[: len(q)] == q for q in self.pruned) or any(
            f"'{name}'" in message for name in self.dropped
        )


def load_routes(path: Path) -> tuple[RoutesSpec | None, YamlDoc | None, list[ConfigIssue]]:
    return strict(read_routes(path))


def parse_routes(
    text: str, name: str = "routes.yaml"
) -> tuple[RoutesSpec | None, YamlDoc | None, list[ConfigIssue]]:
    doc, issues = parse_yaml(text, name)
    if doc is None:
        return None, None, issues
    return strict(read_doc(doc))


def strict(read: RoutesRead) -> tuple[RoutesSpec | None, YamlDoc | None, list[ConfigIssue]]:
    """A spec only for a file without errors."""
    ok = read.complete and not read.issues
    return (read.spec if ok else None), read.doc, read.issues


def read_routes(path: Path) -> RoutesRead:
    doc, issues = load_yaml(path)
    if doc is None:
        return RoutesRead(None, None, issues, complete=False)
    return read_doc(doc)


def read_doc(doc: YamlDoc) -> RoutesRead:
    data, issues = schema_issues(doc, "routes")
    if not issues:
        spec, more = build_spec(doc.file, cast(dict[str, Any], data), doc)
        return RoutesRead(spec, doc, more)
    part, pruned = valid_part(doc, "routes")
    if part is None:
        return RoutesRead(None, doc, issues, complete=False)
    spec, more = build_spec(doc.file, cast(dict[str, Any], plain(part.root)), part, partial=True)
    # A removed list item (a rule) holds no later finding, and the items after it moved up: only
    # removed mapping entries are kept for `follows_on`.
    keys = tuple(p for p in pruned if p and isinstance(p[-1], str))
    return RoutesRead(spec, part, sorted(set(issues + more)), False, keys, _dropped(doc, part))


def _dropped(doc: YamlDoc, part: YamlDoc) -> frozenset[str]:
    names: set[str] = set()
    for section in ("providers", "models", "routes", "aliases"):
        before, after = doc.root.get(section), part.root.get(section)
        if isinstance(before, dict):
            names |= {str(k) for k in before if not isinstance(after, dict) or k not in after}
    return frozenset(names)


def build_spec(
    file: str, data: dict[str, Any], doc: YamlDoc, *, partial: bool = False
) -> tuple[RoutesSpec | None, list[ConfigIssue]]:
    """`partial`: `data` is what validated of a file with schema errors; the spec is returned anyway,
    for the semantic checks."""
    issues: list[ConfigIssue] = []
    providers = {name: _provider(name, raw) for name, raw in (data.get("providers") or {}).items()}
    offerings: list[OfferingPatch] = []
    names: dict[str, str] = {}
    for model_id, raw in (data.get("models") or {}).items():
        if "name" in raw:
            names[model_id] = raw["name"]
        for provider, o in raw["offerings"].items():
            offerings.append(_offering(model_id, provider, o))
    routes: dict[str, tuple[RuleSpec, ...]] = {}
    for route, rules in (data.get("routes") or {}).items():
        built = []
        for i, raw in enumerate(rules):
            when, when_issues = _when(raw.get("when") or {}, ("routes", route, i, "when"), doc)
            issues += when_issues
            built.append(_rule(route, i, raw, when))
        routes[route] = tuple(built)
    aliases = dict(data.get("aliases") or {})
    srv = dict(data.get("server") or {})
    if "store" in data and "store" not in srv:  # `store:` at the top (a path or a postgresql:// URL)
        srv["store"] = data["store"]
    if "allowed_hosts" in srv:
        srv["allowed_hosts"] = tuple(str(h).lower() for h in srv["allowed_hosts"])
    est = data.get("estimate") or {}
    cat = data.get("catalog") or {}
    savings = data.get("savings") or {}
    spec = RoutesSpec(
        file=file,
        auth=data.get("auth", "open"),
        server=_server(srv),
        state=data.get("state"),
        providers=MappingProxyType(providers),
        offerings=tuple(offerings),
        model_names=MappingProxyType(names),
        aliases=MappingProxyType(aliases),
        alias_paths=MappingProxyType({a: ("aliases", a) for a in aliases}),
        routes=MappingProxyType(routes),
        preferences=_preferences(data.get("preferences") or {}),
        preferences_path=("preferences",),
        baseline=savings.get("baseline"),
        estimate_input_tokens=est.get("input_tokens", 1000),
        estimate_output_tokens=est.get("output_tokens", 300),
        sync_interval_s=cat.get("sync_interval_s", 86400),
        sync_providers=tuple(cat["sync_providers"]) if "sync_providers" in cat else None,
        responses_retention_s=float((data.get("responses") or {}).get("retention_days", 30)) * 86400,
    )
    return (None if issues and not partial else spec), issues


def _provider(name: str, raw: Mapping[str, Any]) -> ProviderPatch:
    keys = raw.get("api_key_env")
    return ProviderPatch(
        name=name,
        path=("providers", name),
        api=raw.get("api"),
        base_url=raw.get("base_url"),
        api_key_env=None if keys is None else ((keys,) if isinstance(keys, str) else tuple(keys)),
        data_collection=raw.get("data_collection"),
        listing=raw.get("listing"),
        enabled=raw.get("enabled", True),
        params=_params(raw),
    )


def _offering(model_id: str, provider: str, raw: Mapping[str, Any]) -> OfferingPatch:
    return OfferingPatch(
        model_id=model_id,
        provider=provider,
        path=("models", model_id, "offerings", provider),
        upstream_id=raw.get("id"),
        kind=raw.get("kind"),
        input=opt_money(raw.get("input")),
        output=opt_money(raw.get("output")),
        cached_input=opt_money(raw.get("cached_input")),
        cache_write=opt_money(raw.get("cache_write")),
        context=raw.get("context"),
        max_output=raw.get("max_output"),
        caps=MappingProxyType({c: raw[c] for c in CAPS if c in raw}),
        retired=raw.get("retired"),
        api=raw.get("api"),
        params=_params(raw),
    )


def _params(raw: Mapping[str, Any]) -> frozenset[str] | None:
    return None if raw.get("params") is None else frozenset(raw["params"])


def _when(raw: Mapping[str, Any], path: tuple[Any, ...], doc: YamlDoc) -> tuple[When, list[ConfigIssue]]:
    pattern = None
    if "prompt_matches" in raw:
        try:
            pattern = re.compile(raw["prompt_matches"])
        except re.error as e:
            return When(), [
                doc.issue((*path, "prompt_matches"), f"bad regex in prompt_matches: {e}", at_value=True)
            ]
    groups = raw.get("key_group")
    return When(
        has_images=raw.get("has_images"),
        has_tools=raw.get("has_tools"),
        json_mode=raw.get("json_mode"),
        stream=raw.get("stream"),
        prompt_tokens_gt=raw.get("prompt_tokens_gt"),
        prompt_tokens_lt=raw.get("prompt_tokens_lt"),
        prompt_matches=pattern,
        header=MappingProxyType({k.lower(): v for k, v in (raw.get("header") or {}).items()}),
        key_group=None if groups is None else ((groups,) if isinstance(groups, str) else tuple(groups)),
    ), []


def _rule(route: str, index: int, raw: Mapping[str, Any], when: When) -> RuleSpec:
    use = raw["use"]
    if isinstance(use, dict):
        selector: tuple[str, ...] | Selector = Selector(
            min_context=use.get("min_context"),
            tools=use.get("tools"),
            vision=use.get("vision"),
            json=use.get("json"),
            providers=tuple(use["providers"]) if "providers" in use else None,
            authors=tuple(use["authors"]) if "authors" in use else None,
            max_input_price=opt_money(use.get("max_input_price")),
            max_output_price=opt_money(use.get("max_output_price")),
        )
    else:
        selector = tuple(use)
    return RuleSpec(
        route=route,
        index=index,
        name=raw["name"],
        path=("routes", route, index),
        when=when,
        use=selector,
        strategy=raw.get("strategy", "cheapest"),
        weights=MappingProxyType({k: money(v) for k, v in (raw.get("weights") or {}).items()}),
    )


def _server(srv: Mapping[str, Any]) -> ServerSpec:
    cors = srv.get("cors") or {}
    rest = {k: v for k, v in srv.items() if k != "cors"}
    return ServerSpec(
        **rest,
        cors=CorsSpec(tuple(cors.get("origins") or ()), int(cors.get("max_age_s", 600))),
    )


def _preferences(raw: Mapping[str, Any]) -> Preferences:
    max_price = raw.get("max_price") or {}
    return Preferences(
        data_collection=raw.get("data_collection", "allow"),
        order=tuple(raw.get("order", ())),
        only=tuple(raw["only"]) if "only" in raw else None,
        ignore=tuple(raw.get("ignore", ())),
        allow_fallbacks=raw.get("allow_fallbacks", True),
        max_price_prompt=opt_money(max_price.get("prompt")),
        max_price_completion=opt_money(max_price.get("completion")),
    )
