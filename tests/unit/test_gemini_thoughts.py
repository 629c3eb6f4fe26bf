"""Thoughts through a Gemini client and back, pure (hypothesis): the thought parts and `thoughtSignature` a
Gemini client is given, read back from its history, return every signed thought to its origin; sealed
thoughts unseal to themselves; an upstream's thought parts fold as its stream does."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from faregate.canonical import Thought, collect_stream, signed_for
from faregate.providers.gemini.response import parse_chat_response
from faregate.providers.gemini.stream import GeminiStreamDecoder
from faregate.providers.gemini.thoughts import (
    client_parts,
    history_thoughts,
    read_thoughts,
    sign_for_upstream,
)
from faregate.providers.sealed import seal, unseal
from faregate.providers.sse import SseEvent

text = st.text(min_size=1, max_size=20)
signature = st.text("abcdefgh0123", min_size=1, max_size=12)
thoughts = st.lists(
    st.one_of(
        st.builds(Thought, st.one_of(st.just(""), text), signature, st.sampled_from(["anthropic", "gemini"])),
        st.builds(Thought, st.just(""), signature, st.just("anthropic"), st.just(True)),
        st.builds(Thought, text),
    ),
    max_size=4,
).map(tuple)
answers = st.sampled_from([[{"text": "Hi"}], [{"functionCall": {"name": "f", "args": {}}}], []])


@given(thoughts.map(lambda ts: tuple(t for t in ts if t.signature)))
def test_sealed_thoughts_unseal_to_themselves(ts: tuple[Thought, ...]) -> None:
    assert unseal(seal(ts)) == ts
    assert unseal("CikBcsjafFK168Ib") is None  # a provider's own signature is not sealed


@given(thoughts, answers)
def test_a_gemini_client_carries_every_signed_thought_back(ts: tuple[Thought, ...], answer: Any) -> None:
    parts = client_parts(ts, [dict(p) for p in answer])
    shown = [p["text"] for p in parts if p.get("thought")]
    assert shown == [t.text for t in ts if t.text]
    back = history_thoughts(parts)
    signed = tuple(t for t in ts if t.signature)
    if any(t.origin != "gemini" or t.redacted for t in signed):
        assert back == signed  # sealed together, whole
    else:
        # Gemini's own: its last signature, which is all Gemini needs (not the text)
        assert [(t.signature, t.origin) for t in back] == [(t.signature, "gemini") for t in signed[-1:]]
    upstream = [dict(p) for p in answer] or [{"text": "Hi"}]
    sign_for_upstream(upstream, back)
    own = signed_for(back, "gemini")
    assert [p.get("thoughtSignature") for p in upstream if "thoughtSignature" in p] == [
        t.signature for t in own[-1:]
    ]


def test_an_upstreams_signature_signs_the_thought_just_before_it() -> None:
    parts: list[dict[str, Any]] = [{"text": "hmm", "thought": True}, {"text": "Hi", "thoughtSignature": "s1"}]
    assert read_thoughts(parts) == (Thought("hmm", "s1", "gemini"),)
    parts = [{"text": "hmm", "thought": True}, {"text": "Hi"}, {"functionCall": {}, "thoughtSignature": "s2"}]
    assert read_thoughts(parts) == (Thought("hmm"), Thought("", "s2", "gemini"))


# Every shape of part an answer may hold: thought parts with text, empty or none, signed or not; answer
# parts (text, empty text, a function call, nothing Gemini-readable) with or without a signature.
thought_parts = st.builds(
    lambda t, s: {"thought": True, **t, **s},
    st.sampled_from([{"text": "hmm"}, {"text": "more"}, {"text": ""}, {}]),
    st.sampled_from([{}, {"thoughtSignature": "s1"}, {"thoughtSignature": "s2"}]),
)
answer_parts = st.builds(
    lambda p, s: {**p, **s},
    st.sampled_from(
        [{"text": "Hi"}, {"text": ""}, {"functionCall": {"name": "f", "args": {}}}, {"executableCode": {}}]
    ),
    st.sampled_from([{}, {"thoughtSignature": "s3"}]),
)


@given(st.lists(st.one_of(thought_parts, answer_parts), min_size=1, max_size=6), st.booleans())
def test_an_answers_thoughts_are_the_same_plain_and_streamed(parts: list[Any], one_chunk: bool) -> None:
    """One rule for thought parts and signatures, whichever way the answer came (read_thoughts, and the
    stream decoder's reasoning deltas as ThoughtFold folds them)."""

    def body(ps: list[Any], finish: bool) -> Any:
        candidate = {
            "content": {"role": "model", "parts": ps},
            **({"finishReason": "STOP"} if finish else {}),
        }
        return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}

    plain = parse_chat_response(json.dumps(body(parts, True)), thoughts=True)
    decoder = GeminiStreamDecoder(thoughts=True)
    chunks = [parts] if one_chunk else [[p] for p in parts]
    events = [
        ev
        for n, chunk in enumerate(chunks, 1)
        for ev in decoder.feed(SseEvent(json.dumps(body(chunk, n == len(chunks)))))
    ]
    streamed = collect_stream([*events, *decoder.close()])
    assert streamed.thoughts == plain.thoughts
    assert (streamed.text, streamed.tool_calls) == (plain.text, plain.tool_calls)
