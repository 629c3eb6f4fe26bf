"""Thoughts one format signed, sealed into one opaque string that a client of another format can carry and
give back: a Responses client's `encrypted_content`, a Gemini client's `thoughtSignature`.

An Anthropic thinking block's signature proves its text to Anthropic only; a Responses or Gemini client has
no field for both. Sealed (standard base64 of `faregate:` and a JSON list of origin, signature, text,
redacted), the thoughts return whole when the client passes the string back, and `signed_for` then sends
each to its origin only. Base64, because a Gemini SDK reads `thoughtSignature` as bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Final, get_args

from faregate.canonical import Thought, WireApi

MARK: Final = b"faregate:"
WIRE_APIS: Final = frozenset(get_args(WireApi))


def seal(thoughts: Sequence[Thought]) -> str:
    packed = [{"o": t.origin, "s": t.signature, "t": t.text, "r": t.redacted} for t in thoughts]
    return base64.b64encode(MARK + json.dumps(packed, separators=(",", ":")).encode()).decode()


def _thought(packed: object) -> Thought | None:
    if not isinstance(packed, dict):
        return None
    origin, signature, text = packed.get("o"), packed.get("s"), packed.get("t")
    if origin not in WIRE_APIS or not isinstance(signature, str) or not isinstance(text, str):
        return None
    return Thought(text, signature, origin, redacted=packed.get("r") is True)


def unseal(value: str) -> tuple[Thought, ...] | None:
    """The thoughts `seal` made this string from; None for any other string (a provider's own signature)."""
    try:
        raw = base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(MARK):
        return None
    try:
        packed = json.loads(raw[len(MARK) :])
    except ValueError:
        return None
    thoughts = [_thought(p) for p in packed] if isinstance(packed, list) else [None]
    return None if any(t is None for t in thoughts) else tuple(t for t in thoughts if t is not None)


def carried(thoughts: Sequence[Thought], own: WireApi) -> str | None:
    """What a client of format `own` carries for the signed ones of `thoughts`: its own format's last
    signature as is when that is all there is, else all of them sealed (None: nothing signed)."""
    signed = [t for t in thoughts if t.signature]
    if not signed:
        return None
    if all(t.origin == own and not t.redacted for t in signed):
        return signed[-1].signature
    return seal(signed)


def uncarried(value: str, text: str, own: WireApi) -> tuple[Thought, ...]:
    """A carried signature given back → its thoughts (`text`: what the client showed with it)."""
    sealed = unseal(value)
    return sealed if sealed is not None else (Thought(text, value, own),)
