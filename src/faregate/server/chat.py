"""Chat's wire tables: `POST /v1/chat/completions` (OpenAI in) and `POST /v1/messages` (Anthropic in).

Each is a `Wire` over the one pipeline (`server/endpoint.py`): the body parsed by the format's `Inbound`
into a `ChatJob`, which renders and streams the answer in that format; errors in the format's envelope.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.base import Inbound
from faregate.providers.registry import INBOUND
from faregate.server.context import read_json
from faregate.server.endpoint import ChatJob, Parse, Wire, chat_job


def parse_with(inbound: Inbound) -> Parse:
    """A format whose request is all in its body."""

    async def parse(request: web.Request, rt: Runtime, ex: Exchange) -> ChatJob:
        return chat_job(inbound, request, await read_json(request))

    return parse


def chat_wire(inbound_name: str, endpoint: str) -> Wire:
    inbound = INBOUND[inbound_name]
    return Wire(endpoint, parse_with(inbound), inbound.error_body)


CHAT: Final = chat_wire("openai", "chat")
MESSAGES: Final = chat_wire("anthropic", "messages")
