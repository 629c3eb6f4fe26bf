"""OpenRouter's `provider.require_parameters`: which of a request's parameters a channel would not carry.

A channel carries a parameter when its wire format maps it for that model (each adapter's `parameters`,
what `GET /v1/models` lists as `supported_parameters`), less tools and JSON mode where the offering lacks
them, plus the OpenRouter sampling fields its provider declares (`params:`). A field no format knows (a
newer OpenAI argument, an Anthropic client's `service_tier`) reaches only an upstream of the client's own
format, which gets it as sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from faregate.canonical import WireApi
from faregate.providers.fields import OPENROUTER_ONLY, SAMPLING
from faregate.providers.reasoning import REASONING_PARAMETERS
from faregate.providers.registry import ADAPTERS, adapter_for
from faregate.routing.features import Features
from faregate.routing.table import Channel

TOOL_PARAMETERS: Final = frozenset({"tools", "tool_choice", "parallel_tool_calls"})
# OpenRouter's own features, not a model's parameters (reported in `dropped_params` when sent): OpenRouter
# does not weigh them for `require_parameters` either.
FEATURES: Final = frozenset({"plugins", "debug", "preset", "session_id"})
# Another format's name for a chat-completions parameter (Gemini's `generationConfig.seed` is `seed`).
CHAT_NAMES: Final[Mapping[tuple[WireApi, str], str]] = MappingProxyType(
    {(api, name): m["openai"] for m in SAMPLING for api, name in m.items() if api != "openai"}
)


def carried_parameters(c: Channel) -> frozenset[str]:
    """The chat-completions parameters `c` takes: what `GET /v1/models` lists for its model."""
    carried = adapter_for(c.api).parameters(c.upstream_id, c.params)
    if "tools" not in c.caps:
        carried -= TOOL_PARAMETERS
    if "json" not in c.caps:
        carried -= {"response_format"}
    return carried


def _known() -> frozenset[str]:
    """Every parameter some format maps (a name outside it is a field only its own format knows)."""
    names: set[str] = (
        set(REASONING_PARAMETERS) | {m["openai"] for m in SAMPLING} | (OPENROUTER_ONLY - FEATURES)
    )
    for adapter in ADAPTERS.values():
        names |= adapter.parameters("", frozenset(OPENROUTER_ONLY))
    return frozenset(names)


KNOWN: Final = _known()


def lacking_parameter(c: Channel, parameters: Iterable[str], source: WireApi) -> str | None:
    """The first of the request's `parameters` (chat-completions names for what is canonical, the client's
    own names for the rest) that `c` would not carry, or None."""
    carried: frozenset[str] | None = None
    for name in parameters:
        if name in FEATURES:
            continue
        chat = CHAT_NAMES.get((source, name), name)
        if chat in KNOWN:
            carried = carried_parameters(c) if carried is None else carried
            if chat not in carried:
                return name
        elif c.api != source:
            return name  # only the client's own format takes it as sent
    return None


def lacks(c: Channel, f: Features) -> str | None:
    """`routing/plan.py::Lacks` for the request whose features `f` are."""
    return lacking_parameter(c, f.parameters, f.source_api)
