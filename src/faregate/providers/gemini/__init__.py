"""The gemini wire format: Google's generateContent, streamGenerateContent (SSE) and batchEmbedContents."""

from faregate.providers.gemini.adapter import GeminiAdapter
from faregate.providers.gemini.errors import StreamError
from faregate.providers.gemini.stream import GeminiStreamDecoder

__all__ = ["GeminiAdapter", "GeminiStreamDecoder", "StreamError"]
