"""OpenAI's wire format: chat completions and embeddings, as upstream (`OpenAIAdapter`, also for every
OpenAI-compatible server) and as the client-facing format (`OpenAIInbound`).
"""

from faregate.providers.openai.adapter import OpenAIAdapter, OpenAIInbound
from faregate.providers.openai.render import OpenAIStreamEncoder
from faregate.providers.openai.stream import OpenAIStreamDecoder

__all__ = ["OpenAIAdapter", "OpenAIInbound", "OpenAIStreamDecoder", "OpenAIStreamEncoder"]
