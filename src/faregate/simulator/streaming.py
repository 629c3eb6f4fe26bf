"""Writing a server-sent event stream, with the inter-event delay and the drop-stream fault.

Each wire module builds its whole event sequence up front (answers are deterministic) and hands it here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web

from faregate.simulator.model import JSON, Call, StreamDropped, dumps
from faregate.values import frozen


@frozen
class Event:
    data: JSON | str  # a str is sent as is (OpenAI's `[DONE]`), anything else as JSON
    name: str | None = None  # the SSE `event:` field (Anthropic names every event)

    def frame(self) -> bytes:
        data = self.data if isinstance(self.data, str) else dumps(self.data)
        head = f"event: {self.name}\n" if self.name else ""
        return f"{head}data: {data}\n\n".encode()


async def send_events(call: Call, events: Iterable[Event]) -> web.StreamResponse:
    """Stream `events`; after `call.drop_after` of them, close the connection with no terminator."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(call.request)
    for sent, event in enumerate(events):
        if call.drop_after is not None and sent >= call.drop_after:
            _drop(call, response)
        if sent and call.stream_delay_s > 0:
            await asyncio.sleep(call.stream_delay_s)
        await response.write(event.frame())
    await response.write_eof()
    return response


def _drop(call: Call, response: web.StreamResponse) -> None:
    transport = call.request.transport
    if transport is not None:
        transport.close()
    raise StreamDropped(response)
