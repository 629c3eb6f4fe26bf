"""The Anthropic Messages wire format: `AnthropicAdapter` upstream, `AnthropicInbound` for `/v1/messages`."""

from faregate.providers.anthropic.adapter import AnthropicAdapter, AnthropicInbound
from faregate.providers.anthropic.errors import StreamError
from faregate.providers.anthropic.render import AnthropicStreamEncoder
from faregate.providers.anthropic.stream import AnthropicStreamDecoder

__all__ = [
    "AnthropicAdapter",
    "AnthropicInbound",
    "AnthropicStreamDecoder",
    "AnthropicStreamEncoder",
    "StreamError",
]
