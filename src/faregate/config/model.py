"""Typed, immutable specs of routes.yaml: what `build_spec` makes from the validated YAML.

Each spec that a semantic check can complain about keeps its `path` inside the file, so the issue is
reported at the right line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from faregate.config.load import PathElem
from faregate.values import frozen

Api = Literal["openai", "anthropic", "gemini", "openai-responses"]
Listing = Literal["openai", "anthropic", "gemini", "openrouter", "ollama", "together"]
Policy = Literal["allow", "deny"]
Strategy = Literal["cheapest", "ordered", "fastest", "weighted"]
Path_ = tuple[PathElem, ...]

EMPTY_MAP: Mapping[str, str] = MappingProxyType({})


@frozen
class ProviderPatch:
    """A provider as routes.yaml states it; unset fields come from the catalog file of the same name."""

    name: str
    path: Path_
    api: Api | None = None
    base_url: str | None = None
    api_key_env: tuple[str, ...] | None = None
    data_collection: Policy | None = None
    listing: Listing | None = None
    enabled: bool = True
    params: frozenset[str] | None = None  # sampling fields beyond the wire format's own it accepts


@frozen
class OfferingPatch:
    """An offering as routes.yaml states it, merged over the catalog's (prices USD per 1M tokens)."""

    model_id: str
    provider: str
    path: Path_
    upstream_id: str | None = None
    kind: Literal["chat", "embedding"] | None = None
    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    context: int | None = None
    max_output: int | None = None
    caps: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    retired: bool | str | None = None  # True or a YYYY-MM-DD date: out; False: in; None: not stated
    api: Api | None = None  # this offering's wire format when it differs from its provider's
    params: frozenset[str] | None = None  # replaces the provider's `params` for this offering

    @property
    def declares(self) -> bool:
        """States what it takes to call and price the offering (`id`, `input` or `output`): such a
        declaration is routed as declared whatever the catalog says about retirement."""
        return self.upstream_id is not None or self.input is not None or self.output is not None


@frozen
class When:
    """A rule's conditions; `None` means "not constrained"."""

    has_images: bool | None = None
    has_tools: bool | None = None
    json_mode: bool | None = None
    stream: bool | None = None
    prompt_tokens_gt: int | None = None
    prompt_tokens_lt: int | None = None
    prompt_matches: re.Pattern[str] | None = None
    header: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)  # lower-cased names
    key_group: tuple[str, ...] | None = None

    @property
    def unconditional(self) -> bool:
        return self == ALWAYS


ALWAYS = When()


@frozen
class Selector:
    """`use:` as a filter over the catalog instead of a list of model ids."""

    min_context: int | None = None
    tools: bool | None = None
    vision: bool | None = None
    json: bool | None = None
    providers: tuple[str, ...] | None = None
    authors: tuple[str, ...] | None = None
    max_input_price: Decimal | None = None
    max_output_price: Decimal | None = None


@frozen
class RuleSpec:
    route: str
    index: int
    name: str
    path: Path_
    when: When
    use: tuple[str, ...] | Selector
    strategy: Strategy = "cheapest"
    weights: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))


@frozen
class Preferences:
    """Static preferences from routes.yaml; requests narrow them with the same fields."""

    data_collection: Policy = "allow"
    order: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    max_price_prompt: Decimal | None = None
    max_price_completion: Decimal | None = None


@frozen
class CorsSpec:
    """`server.cors`: the browser origins allowed to call the gateway (none by default)."""

    origins: tuple[str, ...] = ()
    max_age_s: int = 600

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


@frozen
class ServerSpec:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    cooldown_s: float = 30.0
    store: str | None = None
    # Total deadlines and bounds on what an upstream sends (README "Limits and timeouts").
    first_byte_timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    stream_idle_timeout_s: float = 60.0
    stream_total_timeout_s: float = 1800.0
    request_timeout_s: float = 900.0
    max_response_bytes: int = 32 * 1024 * 1024
    max_event_bytes: int = 8 * 1024 * 1024
    max_retry_after_s: float = 300.0
    allowed_hosts: tuple[str, ...] = ()
    cors: CorsSpec = CorsSpec()


@frozen
class RoutesSpec:
    file: str
    auth: Literal["open", "keys"]
    server: ServerSpec
    providers: Mapping[str, ProviderPatch]
    offerings: tuple[OfferingPatch, ...]
    model_names: Mapping[str, str]
    aliases: Mapping[str, str]
    alias_paths: Mapping[str, Path_]
    routes: Mapping[str, tuple[RuleSpec, ...]]
    preferences: Preferences
    preferences_path: Path_
    baseline: str | None
    estimate_input_tokens: int = 1000
    estimate_output_tokens: int = 300
    sync_interval_s: int = 86400
    responses_retention_s: float = 30 * 86400.0  # stored Responses API responses (`responses.retention_days`)
    sync_providers: tuple[str, ...] | None = None
    state: str | None = None  # `state:`: where shared state lives (state/open.py); None: this process
