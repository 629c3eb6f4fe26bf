"""The gemini wire format: Google's generateContent, streamGenerateContent (SSE) and batchEmbedContents,
upstream (`GeminiAdapter`) and for clients (`GeminiInbound`, the `/v1beta` endpoints)."""

from faregate.providers.gemini.adapter import GeminiAdapter, GeminiInbound
from faregate.providers.gemini.errors import StreamError
from faregate.providers.gemini.stream import GeminiStreamDecoder

__all__ = ["GeminiAdapter", "GeminiInbound", "GeminiStreamDecoder", "StreamError"]
