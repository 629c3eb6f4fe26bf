"""The same-format path for streams (`providers/openai/samestream.py`) against the translated one, on a corpus
of upstream `chat.completion.chunk` streams cut into network reads anywhere: the client gets the same bytes
from every read, the pipeline the same events (first event, finish reason, usage, a stream cut short) and the
same text for an estimate, and a malformed stream fails the same way; the chunks only the decoder reads are
left to it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.canonical import Finish, StreamEvent, Usage
from faregate.providers.base import StreamDecoder, StreamEncoder
from faregate.providers.errors import MALFORMED
from faregate.providers.openai.adapter import OpenAIInbound
from faregate.providers.openai.samestream import SameStream, same_stream
from faregate.providers.openai.stream import OpenAIStreamDecoder, load_chunk
from faregate.providers.reasoning import ThoughtView
from faregate.providers.sse import SseDecoder
from faregate.providers.translation import Render, Translation, end_of

MODEL = "openai/gpt-4o-mini"
REQUEST_ID = "0f1e2d3c4b5a"
EXTRAS: dict[str, Any] = {
    "cost": 0.000123,
    "x-faregate": {"request_id": REQUEST_ID, "routing": {"provider": "openai"}, "usage_estimated": False},
}
USAGE = {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21}


def chunk(*choices: dict[str, Any], **top: Any) -> dict[str, Any]:
    head = {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
    }
    return head | {"choices": list(choices)} | top


def delta(d: dict[str, Any] | None, finish: Any = None, index: int = 0, **more: Any) -> dict[str, Any]:
    return {"index": index, "delta": d, "finish_reason": finish, **more}


ROLE = chunk(delta({"role": "assistant", "content": ""}))
STOP = chunk(delta({}, "stop"))
USAGE_CHUNK = chunk(usage=USAGE)


def stream(*events: dict[str, Any] | str, done: bool = True, eol: bytes = b"\n\n") -> bytes:
    """SSE bytes as an OpenAI-compatible server writes them."""
    datas = [e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in events]
    return b"".join(b"data: " + d.encode() + eol for d in [*datas, *(["[DONE]"] if done else [])])


def words(*texts: str) -> list[dict[str, Any]]:
    return [chunk(delta({"content": t})) for t in texts]


CALL_START = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": ""},
}
LOGPROBS = {
    "content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}],
    "refusal": None,
}

CORPUS: dict[str, bytes] = {
    "the benchmark's": stream(ROLE, *words("Hello there,", " how are you?"), STOP, USAGE_CHUNK),
    "no usage": stream(ROLE, *words("Hi", "!"), STOP),
    "usage on the finish chunk": stream(ROLE, *words("Hi"), chunk(delta({}, "length"), usage=USAGE)),
    "usage with choices null (vLLM)": stream(
        ROLE, *words("Hi"), STOP, chunk(choices=None) | {"usage": USAGE}
    ),
    "Groq's usage": stream(ROLE, *words("Hi"), STOP, chunk(x_groq={"id": "req_1", "usage": USAGE})),
    "cached tokens": stream(
        ROLE, *words("Hi"), STOP, chunk(usage={**USAGE, "prompt_tokens_details": {"cached_tokens": 8}})
    ),
    "no role chunk": stream(*words("Hello", " world"), STOP, USAGE_CHUNK),
    "no [DONE]": stream(ROLE, *words("Hi"), STOP, USAGE_CHUNK, done=False),
    "cut short": stream(ROLE, *words("Hel"), done=False),
    "cut before anything": stream(done=False),
    "CRLF lines": stream(ROLE, *words("a", "b"), STOP, USAGE_CHUNK, eol=b"\r\n\r\n"),
    "comments and keep-alives": b": OPENROUTER PROCESSING\n\n" + stream(ROLE, *words("x"), STOP),
    "extra upstream fields": stream(
        chunk(delta({"role": "assistant", "content": None, "refusal": None}), system_fingerprint="fp_1"),
        chunk(delta({"content": "ok"}, logprobs=None), service_tier="default", obfuscation="abc"),
        chunk(delta({"content": "", "annotations": []})),
        STOP,
    ),
    "unicode and escapes": stream(ROLE, *words('é "quoted" \\ back', "😀\n\t", "\u2028"), STOP),
    "refusal": stream(ROLE, chunk(delta({"content": None, "refusal": "I can't."})), STOP),
    "delta null": stream(ROLE, chunk(delta(None)), *words("x"), chunk(delta(None, "stop"))),
    "finish reasons": stream(ROLE, *words("x"), chunk(delta({}, "content_filter"))),
    "legacy function_call finish": stream(ROLE, *words("x"), chunk(delta({}, "function_call"))),
    "unknown finish": stream(ROLE, *words("x"), chunk(delta({}, "eos"))),
    "text and finish in one chunk": stream(ROLE, chunk(delta({"content": "all"}, "stop")), USAGE_CHUNK),
    "events after [DONE]": stream(ROLE, *words("x"), STOP, USAGE_CHUNK) + stream(*words("late")),
    "tool calls": stream(
        ROLE,
        chunk(delta({"tool_calls": [CALL_START]})),
        chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
        chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})),
        chunk(delta({}, "tool_calls")),
        USAGE_CHUNK,
    ),
    "text then tool calls": stream(
        ROLE,
        *words("Let me check."),
        chunk(
            delta({"content": None, "tool_calls": [CALL_START, {**CALL_START, "index": 1, "id": "call_2"}]})
        ),
        chunk(delta({}, "tool_calls")),
    ),
    "tool calls without index": stream(
        ROLE, chunk(delta({"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]})), STOP
    ),
    "tool_calls null": stream(ROLE, chunk(delta({"content": "x", "tool_calls": None})), STOP),
    "reasoning_content (DeepSeek)": stream(
        ROLE,
        chunk(delta({"reasoning_content": "Let me think"})),
        chunk(delta({"reasoning_content": " hard.", "content": None})),
        *words("Answer."),
        STOP,
        USAGE_CHUNK,
    ),
    "reasoning (OpenRouter)": stream(
        ROLE,
        chunk(
            delta(
                {
                    "reasoning": "Hmm",
                    "reasoning_details": [{"type": "reasoning.text", "text": "Hmm", "format": "unknown"}],
                }
            )
        ),
        *words("Yes"),
        STOP,
    ),
    "logprobs": stream(ROLE, chunk(delta({"content": "Hi"}, logprobs=LOGPROBS)), STOP, USAGE_CHUNK),
    "logprobs null content": stream(ROLE, chunk(delta({"content": "Hi"}, logprobs={"content": None})), STOP),
    "n = 2": stream(
        chunk(
            delta({"role": "assistant", "content": ""}), delta({"role": "assistant", "content": ""}, index=1)
        ),
        chunk(delta({"content": "first"})),
        chunk(delta({"content": "second"}, index=1)),
        chunk(delta({}, "stop"), delta({}, "length", index=1)),
        USAGE_CHUNK,
    ),
    "second choice only": stream(ROLE, chunk(delta({"content": "b"}, index=1)), chunk(delta({}, "stop"))),
    "index not a number": stream(ROLE, chunk({"index": "0", "delta": {"content": "x"}}), STOP),
    "choices not a list": stream(ROLE, chunk() | {"choices": {"0": {}}}, *words("x"), STOP),
    "a choice not an object": stream(ROLE, chunk() | {"choices": ["x"]}, *words("y"), STOP),
}
# Streams the pipeline rejects: the same error either way.
BROKEN: dict[str, bytes] = {
    "an upstream error event": stream(ROLE, *words("x"), '{"error": {"message": "overloaded"}}'),
    "not JSON": stream(ROLE, "{not json"),
    "not an object": stream(ROLE, "[1, 2]"),
}


def batches_of(decoder: StreamDecoder, raw: bytes, cuts: list[int]) -> Iterator[list[StreamEvent]]:
    """The events of each network read, as `OpenStream.batches` yields them: reads that complete no event
    are not yielded, the decoder's tail at EOF is, and nothing after the first `Finish`."""
    sse = SseDecoder()
    edges = [0, *sorted(set(cuts)), len(raw)]
    reads = [raw[a:b] for a, b in pairwise(edges)]
    for read in [*reads, None]:
        if read is None:
            events = [e for s in sse.close() for e in decoder.feed(s)] + decoder.close()
        else:
            events = [e for s in sse.feed(read) for e in decoder.feed(s)]
        if not events:
            continue
        end = next((i for i, e in enumerate(events) if isinstance(e, Finish)), None)
        yield events if end is None else events[: end + 1]
        if end is not None:
            return


def client_side(
    decoder: StreamDecoder, render: Render, encoder: StreamEncoder, raw: bytes, cuts: list[int]
) -> tuple[list[bytes], list[list[StreamEvent]]]:
    """The bytes of each write to the client (the closing events priced with the upstream's usage), and
    the batches the pipeline read."""
    writes: list[bytes] = []
    batches: list[list[StreamEvent]] = []
    for batch in batches_of(decoder, raw, cuts):  # each rendered before the next read, as `_stream` does
        batches.append(batch)
        data, end = render(batch)
        writes.append(data)
        if end is not None:
            writes.append(encoder.finish(end, end.usage or Usage(), EXTRAS))
    return writes, batches


def translated(
    raw: bytes, cuts: list[int], include_usage: bool, view: ThoughtView
) -> tuple[list[bytes], list[list[StreamEvent]], list[str]]:
    encoder = OpenAIInbound().stream_encoder(MODEL, include_usage, REQUEST_ID)
    text: list[str] = []
    render = Translation(encoder, view, text, lambda: 14).encode
    writes, batches = client_side(OpenAIStreamDecoder(), render, encoder, raw, cuts)
    return writes, batches, text


def relayed(
    raw: bytes, cuts: list[int], include_usage: bool, view: ThoughtView
) -> tuple[list[bytes], list[list[StreamEvent]], list[str]]:
    relay = same_stream(MODEL, include_usage, REQUEST_ID, view)
    writes, batches = client_side(relay, lambda b: (relay.take(), end_of(b)), relay.encoder, raw, cuts)
    return writes, batches, relay.text


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.5)  # both encoders write the same `created`


@pytest.mark.parametrize("include_usage", [True, False], ids=["include_usage", "no usage chunk"])
@pytest.mark.parametrize("name", list(CORPUS))
def test_the_relay_writes_what_the_translated_path_writes(name: str, include_usage: bool) -> None:
    raw = CORPUS[name]
    same = relayed(raw, [], include_usage, "text")
    assert same == translated(raw, [], include_usage, "text")
    assert b"".join(same[0]), "the client gets an answer"


@pytest.mark.parametrize("view", ["text", "signed", "none"])
@pytest.mark.parametrize("name", ["reasoning_content (DeepSeek)", "reasoning (OpenRouter)"])
def test_the_client_view_of_thoughts_applies_on_both_paths(name: str, view: ThoughtView) -> None:
    raw = CORPUS[name]
    same = relayed(raw, [], True, view)
    assert same == translated(raw, [], True, view)
    assert (b'"reasoning"' in b"".join(same[0])) == (view == "text")


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(CORPUS)),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
    include_usage=st.booleans(),
)
def test_reads_split_anywhere_give_the_same_writes(name: str, cuts: list[int], include_usage: bool) -> None:
    raw = CORPUS[name]
    cuts = [c % (len(raw) + 1) for c in cuts]
    assert relayed(raw, cuts, include_usage, "text") == translated(raw, cuts, include_usage, "text")


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_malformed_stream_fails_the_same_way(name: str) -> None:
    def failure(run: Callable[..., object]) -> str:
        with pytest.raises(MALFORMED) as caught:
            run(BROKEN[name], [], True, "text")
        return f"{type(caught.value).__name__}: {caught.value}"

    assert failure(relayed) == failure(translated)


def test_a_stream_cut_short_ends_in_error_on_both() -> None:
    for run in (relayed, translated):
        _, batches, text = run(CORPUS["cut short"], [], True, "text")
        assert batches[-1][-1] == Finish("error") and text == ["Hel"]


def test_usage_and_text_are_read_as_the_decoder_reads_them() -> None:
    _, batches, text = relayed(CORPUS["cached tokens"], [], True, "text")
    assert batches[-1][-1] == Finish("stop", Usage(14, 7, 8)) and text == ["Hi"]
    _, batches, text = relayed(CORPUS["tool calls"], [], True, "text")
    assert batches[-1][-1] == Finish("tool_calls", Usage(14, 7)) and "".join(text) == '{"city":"Paris"}'


KNOWN = [
    ROLE,
    STOP,
    USAGE_CHUNK,
    *words("x"),
    chunk(choices=None),
    chunk(delta(None)),
    chunk(delta({}, "eos")),
]
UNKNOWN = [
    chunk(delta({"tool_calls": [CALL_START]})),
    chunk(delta({"reasoning_content": "r"})),
    chunk(delta({"reasoning": None, "content": "x"})),
    chunk(delta({"content": "x"}, logprobs=LOGPROBS)),
    chunk(delta({"content": "x"}, index=1)),
    chunk(delta({"content": "a"}), delta({"content": "b"}, index=1)),
    chunk({"index": "0", "delta": {"content": "x"}}),
    chunk() | {"choices": {"0": {}}},
]


@pytest.mark.parametrize("data", KNOWN, ids=lambda c: json.dumps(c["choices"])[:60])
def test_the_chunks_a_stream_is_made_of_are_relayed_directly(data: dict[str, Any]) -> None:
    assert SameStream(OpenAIInbound().stream_encoder(MODEL, True, REQUEST_ID))._known(data) is not None


@pytest.mark.parametrize("data", UNKNOWN, ids=lambda c: json.dumps(c["choices"])[:60])
def test_other_chunks_go_through_the_decoder(data: dict[str, Any]) -> None:
    relay = SameStream(OpenAIInbound().stream_encoder(MODEL, True, REQUEST_ID))
    assert relay._known(load_chunk(json.dumps(data))) is None


def test_an_upstream_error_event_names_the_upstream_words() -> None:
    with pytest.raises(MALFORMED, match="overloaded"):
        relayed(BROKEN["an upstream error event"], [], True, "text")
