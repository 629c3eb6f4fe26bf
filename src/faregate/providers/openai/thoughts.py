"""Reasoning text in OpenAI's chat format, which has none of its own: what compatible servers send and what
OpenRouter renders. Upstreams: `reasoning_content` (DeepSeek, vLLM), `reasoning` (OpenRouter, Ollama, Groq),
OpenRouter's `reasoning_details`. Clients get OpenRouter's shape: `reasoning` (the text) and
`reasoning_details` (each thought, with the signature and the `format` naming whose it is), and may pass an
assistant turn back with them, so a signed thought survives a tool round trip through an OpenAI client.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import JSONObject, ReasoningDelta, Thought, WireApi

# OpenRouter's `reasoning_details[].format`: whose signature a detail carries.
FORMATS: Final[Mapping[WireApi, str]] = MappingProxyType(
    {
        "anthropic": "anthropic-claude-v1",
        "gemini": "google-gemini-v1",
        "openai-responses": "openai-responses-v1",
    }
)
ORIGINS: Final[Mapping[str, WireApi]] = MappingProxyType({v: k for k, v in FORMATS.items()})
UNKNOWN_FORMAT: Final = "unknown"
TEXT_KEYS: Final = ("reasoning_content", "reasoning")  # a message's or a delta's plain reasoning text
# A message or a delta with any of these carries reasoning (read by `parse_thoughts`, `delta_events`).
THOUGHT_KEYS: Final = frozenset((*TEXT_KEYS, "reasoning_details"))


def plain_text(message: Mapping[str, Any]) -> str:
    """The first of `reasoning_content` / `reasoning` that is a non-empty string."""
    for key in TEXT_KEYS:
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def parse_detail(detail: object) -> Thought | None:
    """One `reasoning_details` entry; None for one that carries nothing faregate can use."""
    if not isinstance(detail, dict):
        return None
    fmt = detail.get("format")
    origin = ORIGINS.get(fmt) if isinstance(fmt, str) else None
    match detail.get("type"):
        case "reasoning.encrypted":
            data = _string(detail, "data")
            return Thought("", data, origin, redacted=True) if data else None
        case "reasoning.text" | "reasoning.summary" as kind:
            text = _string(detail, "text" if kind == "reasoning.text" else "summary")
            signature = _string(detail, "signature") or None
            if not text and signature is None:
                return None
            return Thought(text, signature, origin if signature is not None else None)
        case _:
            return None


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def parse_thoughts(message: Mapping[str, Any], *, signed: bool) -> tuple[Thought, ...]:
    """A message's reasoning: its `reasoning_details` when it has any, else its plain text as one thought.
    `signed`: keep signatures (a client's own turn passed back); an upstream's are dropped, since an
    OpenAI-format upstream is never sent one back and another format cannot trust it."""
    details = message.get("reasoning_details")
    thoughts = tuple(t for d in details if (t := parse_detail(d))) if isinstance(details, list) else ()
    if not signed:
        thoughts = tuple(Thought(t.text) for t in thoughts if t.text)
    if thoughts:
        return thoughts
    text = plain_text(message)
    return (Thought(text),) if text else ()


def delta_events(delta: Mapping[str, Any], choice: int) -> list[ReasoningDelta]:
    """A streamed delta's reasoning text: the plain field, or else the text of its `reasoning_details`
    (OpenRouter sends both, the same text twice)."""
    text = plain_text(delta) or "".join(t.text for t in parse_thoughts(delta, signed=False))
    return [ReasoningDelta(text, choice=choice)] if text else []


def render_detail(thought: Thought, index: int) -> JSONObject:
    fmt = FORMATS.get(thought.origin, UNKNOWN_FORMAT) if thought.origin is not None else UNKNOWN_FORMAT
    if thought.redacted:
        return {"type": "reasoning.encrypted", "data": thought.signature or "", "format": fmt, "index": index}
    out: JSONObject = {"type": "reasoning.text", "text": thought.text, "format": fmt, "index": index}
    if thought.signature is not None:
        out["signature"] = thought.signature
    return out


def render_fields(thoughts: tuple[Thought, ...]) -> JSONObject:
    """`reasoning` and `reasoning_details` for an assistant message, as OpenRouter renders them; nothing
    when there are no thoughts."""
    if not thoughts:
        return {}
    text = "".join(t.text for t in thoughts)
    return {
        "reasoning": text or None,
        "reasoning_details": [render_detail(t, i) for i, t in enumerate(thoughts)],
    }


def render_delta(ev: ReasoningDelta, index: int) -> JSONObject:
    """A streamed reasoning fragment as OpenRouter streams it: `reasoning` with the text, and the same
    fragment in `reasoning_details` (with the signature, when this fragment ends a signed thought)."""
    detail = render_detail(Thought(ev.text, ev.signature, ev.origin, ev.redacted), index)
    return {"reasoning": ev.text or None, "reasoning_details": [detail]}
