"""The Responses API answers errors in OpenAI's envelope: classified as for every OpenAI-compatible upstream."""

from faregate.providers.openai.errors import classify_error

__all__ = ["classify_error"]
