"""The OpenAI Responses API wire format, both ways: `ResponsesInbound` for `POST /v1/responses` clients
(items, response objects, semantic stream events) and `ResponsesAdapter` for `api: openai-responses`
upstreams, each translated through the canonical model.
"""

from faregate.providers.openai_responses.adapter import ResponsesAdapter, ResponsesInbound
from faregate.providers.openai_responses.inbound import ResponsesRequest, parse_responses
from faregate.providers.openai_responses.render import ResponseMeta, ResponsesStreamEncoder

__all__ = [
    "ResponseMeta",
    "ResponsesAdapter",
    "ResponsesInbound",
    "ResponsesRequest",
    "ResponsesStreamEncoder",
    "parse_responses",
]
