"""What `test_translation.py` shares: the three upstream wire formats, both SDK clients, and `replay`, which
asks the simulator directly (in its own format) what it answered to the request the gateway translated.

The simulator is deterministic: the same upstream request always gets the same answer, so what the gateway
returned to its client can be compared value by value with what the upstream itself said.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import aiohttp
import anthropic
import openai

from faregate.catalog.model import MILLION
from faregate.simulator.model import Received
from tests.conftest import Demo
from tests.server.helpers import check_accounting, decimal_json


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream wire format, and the model pinned to reach it."""

    api: str  # `api:` in routes.yaml
    model: str  # the canonical model id a client pins
    provider: str  # the provider that serves it (cheapest and first in `order`)
    upstream_id: str

    @property
    def head(self) -> str:
        """How the simulated model starts every text answer."""
        return f"[simulated {self.provider}/{self.upstream_id}]"


UPSTREAMS: Final = {
    "openai": Upstream("openai", "openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
    "anthropic": Upstream("anthropic", "anthropic/claude-haiku-4.5", "anthropic", "claude-haiku-4-5"),
    "gemini": Upstream("gemini", "google/gemini-2.5-flash-lite", "google", "gemini-2.5-flash-lite"),
}
APIS: Final = tuple(UPSTREAMS)
# openai/gpt-6-luna on the Responses API (`responses_upstream` edits a routes.yaml so): the fourth format.
RESPONSES: Final = Upstream("openai-responses", "openai/gpt-6-luna", "openai", "gpt-6-luna")
ALL_UPSTREAMS: Final = {**UPSTREAMS, "openai-responses": RESPONSES}


def responses_upstream(doc: Any) -> None:
    """openai/gpt-6-luna speaks the Responses API; the rest of the openai provider stays on chat."""
    models = doc.setdefault("models", {})
    models.setdefault(RESPONSES.model, {}).setdefault("offerings", {})["openai"] = {"api": "openai-responses"}


# A 1x1 transparent PNG, and what the simulators count for any image (behaviour.TOKENS_PER_IMAGE).
PIXEL: Final = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()
IMAGE_URL: Final = "https://images.example.com/cat.png"
IMAGE_TOKENS: Final = 85

WEATHER_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "boolean"}},
    "required": ["city", "celsius"],
}
TIME_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"zone": {"type": "string"}, "offset": {"type": "integer"}},
    "required": ["zone", "offset"],
}
# What the simulated model fills these schemas with (behaviour.synthesize: required properties by type).
WEATHER_ARGS: Final = {"city": "sample", "celsius": True}
TIME_ARGS: Final = {"zone": "sample", "offset": 1}
TOOL_RESULT: Final = "Sunny, 21 C"


def openai_tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": f"{name} tool", "parameters": schema},
    }


def anthropic_tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": f"{name} tool", "input_schema": schema}


def oai(demo: Demo) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=demo.base_url, api_key="x", max_retries=0, timeout=20)


def anth(demo: Demo) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=demo.url, api_key="x", max_retries=0, timeout=20)


# -- what the upstream said ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Native:
    """An upstream's own answer, reduced to what every format has."""

    text: str
    calls: tuple[tuple[str, str, Any], ...]  # (id, name, arguments parsed)
    prompt_tokens: int
    completion_tokens: int
    finish: str  # in the upstream's own words (`end_turn`, `MAX_TOKENS`, `tool_calls`, ...)
    raw: dict[str, Any] = field(repr=False, compare=False)


REPLAY_HEADERS: Final[dict[str, dict[str, str]]] = {
    "openai": {"Authorization": "Bearer replay"},
    "anthropic": {"x-api-key": "replay", "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": "replay"},
}


def sent_to(demo: Demo, up: Upstream) -> list[Received]:
    """The chat requests the gateway sent to `up`'s provider, oldest first."""
    return [r for r in demo.sim.received_for(up.provider) if r.body]


def last_body(demo: Demo, up: Upstream) -> dict[str, Any]:
    sent = sent_to(demo, up)
    assert sent, f"nothing reached {up.provider}"
    body: dict[str, Any] = sent[-1].json()
    return body


async def replay(demo: Demo, up: Upstream) -> Native:
    """Send the last request the gateway made to `up` straight to the simulator again, non-streamed (a
    streamed request gets the same answer in pieces), and read the upstream's answer in its own format."""
    sent = sent_to(demo, up)[-1]
    body = sent.json()
    path = sent.path
    if up.api == "gemini":
        path = path.replace(":streamGenerateContent", ":generateContent")
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    async with (
        aiohttp.ClientSession() as session,
        session.post(demo.sim_origin + path, json=body, headers=REPLAY_HEADERS[up.api]) as resp,
    ):
        assert resp.status == 200, await resp.text()
        data = await resp.json()
    return PARSE_NATIVE[up.api](data)


def _native_openai(data: dict[str, Any]) -> Native:
    choice = data["choices"][0]
    msg = choice["message"]
    calls = tuple(
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in msg.get("tool_calls") or ()
    )
    usage = data["usage"]
    return Native(
        msg.get("content") or "",
        calls,
        usage["prompt_tokens"],
        usage["completion_tokens"],
        choice["finish_reason"],
        data,
    )


def _native_anthropic(data: dict[str, Any]) -> Native:
    blocks = data["content"]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = tuple((b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use")
    usage = data["usage"]
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    return Native(text, calls, prompt, usage["output_tokens"], data["stop_reason"], data)


def _native_gemini(data: dict[str, Any]) -> Native:
    candidate = data["candidates"][0]
    parts = candidate["content"]["parts"]
    text = "".join(p.get("text", "") for p in parts)
    calls = tuple(
        (f"call_{i}", p["functionCall"]["name"], p["functionCall"]["args"])
        for i, p in enumerate(p for p in parts if "functionCall" in p)
    )
    usage = data["usageMetadata"]
    return Native(
        text, calls, usage["promptTokenCount"], usage["candidatesTokenCount"], candidate["finishReason"], data
    )


PARSE_NATIVE: Final = {"openai": _native_openai, "anthropic": _native_anthropic, "gemini": _native_gemini}


# -- accounting ------------------------------------------------------------------------------------------


def check_anthropic_accounting(
    demo: Demo, message: dict[str, Any], headers: Any | None = None
) -> dict[str, Any]:
    """`check_accounting` for an Anthropic-shaped answer (parsed with `parse_float=Decimal`): its usage in
    OpenAI's terms (prompt = input + cached), the cost and `x-faregate` as for chat completions."""
    usage = message["usage"]
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    body = {
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": usage["output_tokens"],
            "total_tokens": prompt + usage["output_tokens"],
            "cost": usage["cost"],
        },
        "x-faregate": message["x-faregate"],
    }
    return check_accounting(demo, body, headers)


def embedding_cost(demo: Demo, model: str, prompt_tokens: int) -> Decimal:
    ch = next(c for c in demo.runtime.holder.current.table.channels.values() if c.model_id == model)
    return ch.price.input * prompt_tokens / MILLION


def channel_providers(demo: Demo, model: str) -> set[str]:
    """Every provider with a channel for `model`: a pinned model may fall back to any of them."""
    return {c.provider for c in demo.runtime.holder.current.table.channels.values() if c.model_id == model}


def sse_data(text: str) -> list[tuple[str, Any]]:
    """(event name, data parsed with Decimal floats) for each event of an SSE body."""
    out: list[tuple[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data and data != ["[DONE]"]:
            out.append((name, decimal_json("\n".join(data))))
    return out
