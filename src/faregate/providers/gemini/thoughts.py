"""Gemini's thought parts and thought signatures ⇄ canonical `Thought`s, both ways.

A part with `thought: true` is a thought summary (its text; Gemini sends them only under
`thinkingConfig.includeThoughts`). `thoughtSignature`, on any part, is the model's proof of its reasoning,
which Gemini wants back on the part it came with (Gemini 3 refuses a function call turn without it).

From an upstream's answer, plain or streamed (one rule: `reasoning_delta`, folded by `ThoughtFold`): thought
parts are thinking text, one thought until a signature closes it; a signature on any part signs the thinking
open before it (a thought with no text when none is); answer text or a function call closes an unsigned
thought, an empty text part does not, and an empty unsigned thought part says nothing. Sent back
to Gemini: the turn's last own signature on its first `functionCall` part, else on its last text part
(Gemini does not need the thought texts). To a Gemini client: thought parts with their text, and the
turn's signatures on one answer part, placed the same way: Gemini's own as is, any other format's signed
thinking sealed (`providers/sealed.py`). From a client's history, then, the signatures on answer parts are
what is read (thought parts and parts with nothing but a signature are the model's own, not sent onwards).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from faregate.canonical import JSONObject, ReasoningDelta, Thought, ThoughtFold, WireApi, signed_for
from faregate.providers.sealed import carried, uncarried

ORIGIN: Final[WireApi] = "gemini"
SIGNATURE: Final = "thoughtSignature"


def signature_of(part: JSONObject) -> str | None:
    raw = part.get(SIGNATURE)
    return raw if isinstance(raw, str) and raw else None


def reasoning_delta(part: JSONObject) -> ReasoningDelta | None:
    """What an upstream's part says of the reasoning, the one rule of the plain answer and the stream: a
    thought part is thinking text (with its signature, if signed); a signature on any other part signs the
    thinking before that part. None: neither (an empty unsigned thought part says nothing)."""
    signature = signature_of(part)
    origin = ORIGIN if signature else None
    if part.get("thought") is True:
        text = part.get("text")
        text = text if isinstance(text, str) else ""
        return ReasoningDelta(text, signature, origin=origin) if text or signature else None
    return None if signature is None else ReasoningDelta("", signature, origin=origin)


def moves_on(part: JSONObject) -> bool:
    """An answer part that closes an unsigned thought: answer text (not empty) or a function call."""
    text = part.get("text")
    return part.get("thought") is not True and (
        (isinstance(text, str) and text != "") or "functionCall" in part
    )


def read_thoughts(parts: Iterable[JSONObject]) -> tuple[Thought, ...]:
    """An upstream's answer: its parts' reasoning folded as its stream's deltas fold (`ThoughtFold`)."""
    fold = ThoughtFold()
    for part in parts:
        delta = reasoning_delta(part)
        if delta is not None:
            fold.feed(delta)
        if moves_on(part):
            fold.cut()
    return fold.thoughts()


def history_thoughts(parts: Iterable[JSONObject]) -> tuple[Thought, ...]:
    """A client's model turn: the signatures on its answer parts (text, even empty, or functionCall),
    unsealed; a part with nothing but a signature, or a thought part, is not read."""
    out: list[Thought] = []
    for part in parts:
        signature = signature_of(part)
        answers = "functionCall" in part or isinstance(part.get("text"), str)
        if signature is not None and answers and part.get("thought") is not True:
            out.extend(uncarried(signature, "", ORIGIN))
    return tuple(out)


def sign(parts: list[JSONObject], signature: str) -> None:
    """Put `signature` where Gemini looks for it: the first functionCall part, else the last text part
    (an empty text part is added when there is neither)."""
    target = next((p for p in parts if "functionCall" in p), None)
    if target is None:
        target = next((p for p in reversed(parts) if "text" in p and p.get("thought") is not True), None)
    if target is None:
        target = {"text": ""}
        parts.append(target)
    target[SIGNATURE] = signature


def sign_for_upstream(parts: list[JSONObject], thoughts: Sequence[Thought]) -> None:
    """A model turn sent to Gemini: its own last signature (another format's are never sent)."""
    own = signed_for(tuple(thoughts), ORIGIN)
    if own and own[-1].signature:
        sign(parts, own[-1].signature)


def thought_part(text: str) -> JSONObject:
    return {"text": text, "thought": True}


def client_parts(thoughts: Sequence[Thought], parts: list[JSONObject]) -> list[JSONObject]:
    """A Gemini client's parts: a thought part per thought with text, then `parts`, signed."""
    out = [*(thought_part(t.text) for t in thoughts if t.text), *parts]
    carry = carried(thoughts, ORIGIN)
    if carry is not None:
        sign(out, carry)
    return out
