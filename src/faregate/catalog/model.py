"""What the catalog knows: providers, offerings and their prices (USD per 1M tokens, `Decimal`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from faregate.config.model import Api, Listing, Policy
from faregate.values import frozen

Kind = Literal["chat", "embedding"]
RetiredBy = Literal["catalog", "sync", "routes.yaml"]  # who took an offering out of routing
MILLION = Decimal(1_000_000)


@frozen
class Price:
    """USD per 1M tokens. Cache prices default to the input price when a provider publishes none."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    # Derived once: (input, output, cache read, cache write) in picodollars (1e-12 USD) per token, None
    # when one is not a whole number of them. accounting/pricing.py costs answers with these integers.
    pusd_per_token: tuple[int, int, int, int] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "pusd_per_token", _pusd_per_token(self))

    def is_free(self) -> bool:
        return self.input == 0 and self.output == 0


def _pusd_per_token(p: Price) -> tuple[int, int, int, int] | None:
    read = p.input if p.cached_input is None else p.cached_input
    write = p.input if p.cache_write is None else p.cache_write
    scaled = [d.scaleb(6) for d in (p.input, p.output, read, write)]  # USD per 1M tokens -> pUSD per token
    if not all(d.is_finite() and d == d.to_integral_value() for d in scaled):
        return None
    a, b, c, d = (int(x) for x in scaled)
    return a, b, c, d


@frozen
class ProviderInfo:
    name: str
    api: Api
    base_url: str
    api_key_env: tuple[str, ...]  # empty: keyless (a local server)
    data_collection: Policy
    listing: Listing | None = None
    free: bool = False
    source_url: str | None = None
    source_taken: str | None = None
    # Sampling fields beyond the wire format's own that the API accepts (top_k, min_p, ...): forwarded
    params: frozenset[str] = frozenset()


@frozen
class Offering:
    """One provider's way to serve one model. `price` None: known but not routable (no price anywhere)."""

    model_id: str
    provider: str
    upstream_id: str
    kind: Kind
    price: Price | None
    context: int
    max_output: int | None = None
    caps: frozenset[str] = frozenset()
    name: str | None = None
    retired: bool = False
    api: Api | None = None  # the wire format when it differs from the provider's (e.g. openai-responses)
    aliases: tuple[str, ...] = ()  # other upstream ids the provider answers to (dated snapshots)
    retired_on: str | None = None  # YYYY-MM-DD it shut down or left the listing, where known
    retired_by: RetiredBy | None = None  # set with `retired`
    replacement: str | None = None  # the successor model id the catalog names for a retired offering
    synced_price: Price | None = None  # the last synced listing price (None: no sync priced it)
    params: frozenset[str] | None = None  # replaces the provider's `params` (None: the provider's)

    @property
    def key(self) -> tuple[str, str]:
        return (self.model_id, self.provider)


@frozen
class Catalog:
    providers: Mapping[str, ProviderInfo] = field(default_factory=lambda: MappingProxyType({}))
    offerings: tuple[Offering, ...] = ()
