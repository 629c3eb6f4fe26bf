"""Request fields that are not the client format's own: faregate's routing fields (OpenRouter's names) and the
OpenRouter-only sampling and feature fields. One table, read by every inbound and every renderer.

- `ROUTING_FIELDS` are consumed by faregate (routing, transforms, usage accounting) and never sent upstream.
- `OPENROUTER_ONLY` fields are kept in a request's `extra` (an adapter may map one to its upstream's own
  name, e.g. `top_k` for Anthropic), but never forwarded as they are to an upstream whose API does not
  take them: they are reported in `dropped_params` instead (the real OpenAI API rejects unknown arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import JSONObject, WireApi


def _strings(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(m, str) for m in v)


# name -> (type check, what the type should be): only the top-level type is checked at the edge.
ROUTING_FIELDS: Final[Mapping[str, tuple[Callable[[object], bool], str]]] = MappingProxyType(
    {
        "provider": (lambda v: isinstance(v, dict), "an object"),
        "models": (_strings, "an array of strings"),
        "route": (lambda v: isinstance(v, str), "a string"),
        "transforms": (_strings, "an array of strings"),  # ["middle-out"]: see faregate/transforms.py
        "usage": (lambda v: isinstance(v, dict), "an object"),  # {include: true}: usage always carries cost
    }
)

OPENROUTER_ONLY: Final = frozenset(
    {
        "plugins",  # web search, file parser, response healing: not provided by faregate
        "reasoning",  # mapped per upstream where the adapter knows its own name for it
        "include_reasoning",
        "top_k",
        "min_p",
        "top_a",
        "repetition_penalty",
        "debug",
        "preset",
        "session_id",
    }
)

# OpenRouter fields a wire format takes under the same name (forwarded when the client spoke it).
NATIVE: Final[Mapping[WireApi, frozenset[str]]] = MappingProxyType(
    {"openai": frozenset(), "anthropic": frozenset({"top_k"}), "gemini": frozenset()}
)

# The OpenRouter sampling fields a provider may declare it accepts (`params:` in routes.yaml and catalog/,
# the schemas' enum): an `api: openai` upstream such as vLLM, Together or OpenRouter then receives them
# as sent, and `GET /v1/models` lists them for its models. OpenAI's own API rejects every one of them.
DECLARABLE: Final = frozenset({"top_k", "min_p", "top_a", "repetition_penalty"})


def check_routing(key: str, value: object) -> str | None:
    """None when `value` has the type faregate expects for routing field `key`, else that type's name."""
    check, expected = ROUTING_FIELDS[key]
    return None if check(value) else expected


def forwardable(
    extra: Mapping[str, Any], api: WireApi, accepted: frozenset[str] = frozenset()
) -> tuple[JSONObject, list[str]]:
    """A same-format client's extra fields: (what the upstream takes as sent, what is dropped and reported).
    `accepted`: the OpenRouter fields this upstream declares it takes (its provider's `params`)."""
    native = NATIVE[api]
    keep: JSONObject = {}
    dropped: list[str] = []
    for key, value in extra.items():
        if key in OPENROUTER_ONLY and key not in native and key not in accepted:
            dropped.append(key)
        else:
            keep[key] = value
    return keep, dropped


# One sampling setting under each wire format's own name (a dotted name is nested in that format's body).
# A client's setting reaches an upstream of another format under that format's name; an upstream format
# without it (Anthropic has none of these) lists it in `dropped_params`.
SAMPLING: Final[tuple[Mapping[WireApi, str], ...]] = (
    MappingProxyType({"openai": "seed", "gemini": "generationConfig.seed"}),
    MappingProxyType({"openai": "presence_penalty", "gemini": "generationConfig.presencePenalty"}),
    MappingProxyType({"openai": "frequency_penalty", "gemini": "generationConfig.frequencyPenalty"}),
)


def translate_extra(
    extra: Mapping[str, Any], source: WireApi, target: WireApi, accepted: frozenset[str] = frozenset()
) -> tuple[JSONObject, list[str]]:
    """Another format's extra fields for a `target` upstream: (those `target` has too, under its names, and
    the OpenRouter fields it declares it accepts, as sent; the names of the rest, which it cannot carry)."""
    names = {m[source]: m[target] for m in SAMPLING if source in m and target in m}
    mapped: JSONObject = {}
    dropped: list[str] = []
    for key, value in extra.items():
        if key in names:
            mapped[names[key]] = value
        elif key in accepted and key in OPENROUTER_ONLY:
            mapped[key] = value
        else:
            dropped.append(key)
    return mapped, dropped
