"""Which adapter speaks each upstream wire format (`api:` in routes.yaml) and which inbound parses each
client format. A table, never an if/elif over names: a new format is one import and one list entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from faregate.canonical import WireApi
from faregate.providers.anthropic import AnthropicAdapter, AnthropicInbound
from faregate.providers.base import Adapter, Inbound, Relay, StreamRelayFor
from faregate.providers.gemini import GeminiAdapter, GeminiInbound
from faregate.providers.openai import OpenAIAdapter, OpenAIInbound
from faregate.providers.openai.samestream import same_stream
from faregate.providers.openai.samewire import relay_answer
from faregate.providers.openai_responses import ResponsesAdapter

_ADAPTERS: Final[tuple[Adapter, ...]] = (
    OpenAIAdapter(),
    AnthropicAdapter(),
    GeminiAdapter(thoughts=True),
    ResponsesAdapter(),
)
_INBOUND: Final[tuple[tuple[str, Inbound], ...]] = (
    ("openai", OpenAIInbound()),
    ("anthropic", AnthropicInbound()),
    ("gemini", GeminiInbound()),
)

ADAPTERS: Final[Mapping[WireApi, Adapter]] = MappingProxyType({a.api: a for a in _ADAPTERS})
INBOUND: Final[Mapping[str, Inbound]] = MappingProxyType(dict(_INBOUND))
# Same-format paths, keyed by (client format, upstream `api:`): the answer adjusted, not translated.
SAME_FORMAT: Final[Mapping[tuple[Inbound, WireApi], Relay]] = MappingProxyType(
    {(INBOUND["openai"], "openai"): relay_answer}
)
SAME_FORMAT_STREAMS: Final[Mapping[tuple[Inbound, WireApi], StreamRelayFor]] = MappingProxyType(
    {(INBOUND["openai"], "openai"): same_stream}
)


def adapter_for(api: WireApi) -> Adapter:
    try:
        return ADAPTERS[api]
    except KeyError:
        raise LookupError(f"no adapter for api {api!r} (known: {', '.join(ADAPTERS)})") from None
