"""Thinking blocks in Anthropic's Messages format: `thinking` (text and `signature`) and `redacted_thinking`
(encrypted `data`), read from upstreams and from clients' assistant turns, rendered for clients and sent back
to Anthropic upstreams (only the ones Anthropic signed: any other signature is a 400 there).

A client of `/v1/messages` may be answered by another format's upstream (Gemini's `thoughtSignature`, say).
Such a signature travels in the block as `faregate:<format>:<signature>`, so a client that passes the turn
back (as Anthropic's tool use with thinking requires) returns it to the format that made it, and it is never
mistaken for Anthropic's own (those are base64, never with a colon).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, get_args

from faregate.canonical import JSONObject, Thought, WireApi, signed_for

ORIGIN: Final[WireApi] = "anthropic"
FOREIGN: Final = "faregate:"
APIS: Final[frozenset[str]] = frozenset(get_args(WireApi))
BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


def wire_signature(t: Thought) -> str:
    """The signature as an Anthropic block carries it: Anthropic's own as it is, another format's marked."""
    if not t.signature:
        return ""
    if t.origin == ORIGIN:
        return t.signature
    return f"{FOREIGN}{t.origin}:{t.signature}" if t.origin is not None else ""


def read_signature(value: object) -> tuple[str | None, WireApi | None]:
    """(signature, origin) of a block's signature as `wire_signature` wrote it (or Anthropic did)."""
    if not isinstance(value, str) or not value:
        return None, None
    if value.startswith(FOREIGN):
        api, _, signature = value[len(FOREIGN) :].partition(":")
        if api in APIS and signature:
            return signature, api  # type: ignore[return-value]  # narrowed by the membership test
        return None, None
    return value, ORIGIN


def parse_block(block: Mapping[str, Any]) -> Thought:
    """A `thinking` or `redacted_thinking` block (the caller checked the type). Raises ValueError when a
    field has the wrong type."""
    if block["type"] == "redacted_thinking":
        data, origin = read_signature(_str(block, "data"))
        return Thought("", data, origin, redacted=True)
    signature, origin = read_signature(_str(block, "signature"))
    return Thought(_str(block, "thinking"), signature, origin)


def _str(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{block['type']} block: {key} is not a string")
    return value


def render_block(t: Thought) -> JSONObject:
    """A thought as a client's content block."""
    if t.redacted:
        return {"type": "redacted_thinking", "data": wire_signature(t)}
    return {"type": "thinking", "thinking": t.text, "signature": wire_signature(t)}


def upstream_blocks(thoughts: tuple[Thought, ...]) -> list[JSONObject]:
    """The blocks an Anthropic upstream is sent back: its own signed thoughts, as it made them."""
    return [render_block(t) for t in signed_for(thoughts, ORIGIN)]
