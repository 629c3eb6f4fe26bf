"""Thinking blocks in Anthropic's Messages format: `thinking` (text and `signature`) and `redacted_thinking`
(encrypted `data`), read from upstreams and from clients' assistant turns, rendered for clients and sent back
to Anthropic upstreams (only the ones Anthropic signed: any other signature is a 400 there).

A client of `/v1/messages` may be answered by another format's upstream (Gemini's `thoughtSignature`, say).
Such a thought travels in its block's signature sealed (`providers/sealed.py`), so a client that passes the
turn back (as Anthropic's tool use with thinking requires) returns it to the format that made it, and it is
never mistaken for Anthropic's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from faregate.canonical import JSONObject, Thought, WireApi, signed_for
from faregate.providers.sealed import seal, unseal

ORIGIN: Final[WireApi] = "anthropic"
BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


def wire_signature(t: Thought) -> str:
    """The signature as an Anthropic block carries it: Anthropic's own as it is, another format's sealed."""
    if not t.signature or t.origin is None:
        return ""
    return t.signature if t.origin == ORIGIN else seal([t])


def read_signature(value: object) -> tuple[str | None, WireApi | None]:
    """(signature, origin) of a block's signature as `wire_signature` wrote it (or Anthropic did)."""
    if not isinstance(value, str) or not value:
        return None, None
    sealed = unseal(value)
    if sealed is None:
        return value, ORIGIN
    return (sealed[0].signature, sealed[0].origin) if len(sealed) == 1 else (None, None)


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
