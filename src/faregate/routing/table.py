"""The decision table: routes.yaml + catalog compiled once into immutable data that a request walks.

It is part of the loaded state (`pipeline/load.py::Loaded`), which a reload swaps whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal
from types import MappingProxyType

from faregate.catalog.model import MILLION, Kind, Offering, Price, RetiredBy
from faregate.config.model import Api, Policy, Preferences, Strategy, When
from faregate.values import frozen

# Capabilities a channel has by its `api`, never declared. A channel that speaks the Responses API can
# carry the tools its provider runs (`web_search`, `file_search`, ...).
HOSTED_TOOLS = "hosted_tools"
# Input files: by id or URL (the provider fetches them) or of a type only the Responses API reads, and
# inline PDFs, which Anthropic's `document` blocks and Gemini's `inlineData` read too.
PROVIDER_FILES = "provider_files"
DOCUMENTS = "documents"
API_CAPS: Mapping[Api, frozenset[str]] = MappingProxyType(
    {
        "openai-responses": frozenset({HOSTED_TOOLS, PROVIDER_FILES, DOCUMENTS}),
        "anthropic": frozenset({DOCUMENTS}),
        "gemini": frozenset({DOCUMENTS}),
    }
)


@frozen
class Channel:
    """An offering plus the credential used to call it: what routing selects, fails and cools down."""

    id: str  # "groq:llama-3.1-8b-instant", "#2" appended for a provider's second key
    provider: str
    model_id: str
    upstream_id: str
    api: Api
    base_url: str
    kind: Kind
    price: Price
    context: int
    max_output: int | None
    caps: frozenset[str]
    data_collection: Policy
    expected_cost_usd: Decimal  # at the table's estimate shape, for strategy `cheapest`
    key_env: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    params: frozenset[str] = frozenset()  # sampling fields beyond the wire format's own the upstream takes

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.price.input * prompt_tokens + self.price.output * completion_tokens) / MILLION


@frozen
class PlanEntry:
    """One step of a plan: a channel and why it is there ("rule 'tools' (cheapest) #2")."""

    channel: Channel
    reason: str


@frozen
class Candidates:
    """What a name resolves to: a rule's or a pinned model's channels, pre-sorted, with their plan
    entries numbered. Made at compile time, so resolving a request's model allocates nothing."""

    route: str | None  # None: a pinned model
    rule: str | None
    channels: tuple[Channel, ...]
    reason: str  # "rule 'tools' (cheapest)", "pinned model"
    strategy: Strategy = "cheapest"
    models: tuple[str, ...] = ()
    weights: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    entries: tuple[PlanEntry, ...] = ()  # `channels` numbered: the plan when a request removes nothing


@frozen
class Retirement:
    """Why a model has no routable offering left: retired by the catalog, a sync or routes.yaml."""

    model_id: str
    provider: str
    by: RetiredBy
    said: str  # "left together's listing on 2026-12-03 (catalog sync)"
    on: str | None = None  # YYYY-MM-DD
    replacement: str | None = None  # the successor the catalog names, if any


@frozen
class CompiledRule:
    route: str
    index: int
    name: str
    when: When
    strategy: Strategy
    models: tuple[str, ...]  # candidate models in `use` order (after filtering)
    channels: tuple[Channel, ...]  # pre-filtered by static preferences, pre-sorted by strategy
    candidates: Candidates  # the same, ready for the planner
    weights: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    excluded: tuple[tuple[str, str], ...] = ()  # (model or channel, why) left out at compile time
    warnings: tuple[str, ...] = ()  # what the catalog says about this rule's candidates
    retired: tuple[Retirement, ...] = ()  # set when retirements left the rule without a candidate


@frozen
class Baseline:
    model_id: str
    price: Price


@frozen
class DecisionTable:
    routes: Mapping[str, tuple[CompiledRule, ...]]
    aliases: Mapping[str, str]  # alias -> route, chains resolved
    models: Mapping[
        str, tuple[Channel, ...]
    ]  # pinned model -> channels, cheapest first (order preference first)
    upstream_ids: Mapping[str, str]  # upstream id, bare or under its provider -> model id, where unambiguous
    channels: Mapping[str, Channel]
    preferences: Preferences
    baseline: Baseline | None
    inactive: Mapping[str, str]  # provider -> why it has no channels
    unpriced: tuple[tuple[str, str], ...]  # (model, provider): known, not routable
    model_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    known: frozenset[str] = frozenset()  # every model id in the catalog, routable or not
    ambiguous_ids: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    offerings: int = 0  # offerings known (of enabled providers), routable or not
    by_model: Mapping[str, Candidates] = field(default_factory=lambda: MappingProxyType({}))  # a pinned model
    # Offerings of active providers with no price anywhere (a sync found them): listed, never routed.
    unpriced_offerings: tuple[Offering, ...] = ()
    retired: Mapping[str, Retirement] = field(default_factory=lambda: MappingProxyType({}))  # by model
    generation: int = 0

    def route_for(self, alias: str) -> tuple[CompiledRule, ...] | None:
        route = self.aliases.get(alias)
        return None if route is None else self.routes[route]
