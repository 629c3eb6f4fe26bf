"""The OpenAI Responses API wire format: `ResponsesInbound` for `POST /v1/responses` clients (items,
response objects, semantic stream events), translated through the canonical model to any upstream.
"""

from faregate.providers.openai_responses.adapter import ResponsesInbound
from faregate.providers.openai_responses.inbound import ResponsesRequest, parse_responses
from faregate.providers.openai_responses.render import ResponseMeta, ResponsesStreamEncoder

__all__ = [
    "ResponseMeta",
    "ResponsesInbound",
    "ResponsesRequest",
    "ResponsesStreamEncoder",
    "parse_responses",
]
