"""SSE framing: line endings, comments, multi-line data, event names, EOF handling, chunk boundaries."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faregate.providers.sse import SseDecoder, SseEvent, encode_event

DATA = Path(__file__).parent.parent / "data" / "openai"


def decode_all(raw: bytes) -> list[SseEvent]:
    decoder = SseDecoder()
    return decoder.feed(raw) + decoder.close()


def decode_split(raw: bytes, cuts: list[int]) -> list[SseEvent]:
    decoder = SseDecoder()
    edges = [0, *cuts, len(raw)]
    events = [ev for a, b in pairwise(edges) for ev in decoder.feed(raw[a:b])]
    return events + decoder.close()


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_line_endings(eol: bytes) -> None:
    raw = eol.join([b"data: one", b"", b"event: ping", b"data: two", b"", b""])
    assert decode_all(raw) == [SseEvent("one"), SseEvent("two", "ping")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SseEvent("a")]  # CRLF ends the line, then a CR: a blank line
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SseEvent("b")]  # that CR's LF is not another blank line
    assert decoder.close() == []


def test_lone_cr_at_chunk_end_then_data() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\rdata: b\r\r") == [SseEvent("a"), SseEvent("b")]


def test_comments_are_ignored() -> None:
    raw = b": OPENROUTER PROCESSING\n\n: keep-alive\ndata: x\n: mid-event comment\n\n"
    assert decode_all(raw) == [SseEvent("x")]


def test_multi_line_data_joins_with_lf() -> None:
    assert decode_all(b"data: a\ndata:b\ndata:  c\n\n") == [SseEvent("a\nb\n c")]


def test_event_name_resets_after_dispatch() -> None:
    raw = b"event: message_start\ndata: 1\n\ndata: 2\n\n"
    assert decode_all(raw) == [SseEvent("1", "message_start"), SseEvent("2")]


def test_field_without_colon_and_unknown_fields() -> None:
    assert decode_all(b"data\nid: 7\nretry: 10\nfoo: bar\n\n") == [SseEvent("")]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode_all(b"event: ping\n\ndata: x\n\n") == [SseEvent("x")]


def test_close_flushes_an_unterminated_event() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.close() == [SseEvent("[DONE]")]
    assert decoder.close() == []


def test_close_flushes_data_without_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"event: e\ndata: x\n") == []
    assert decoder.close() == [SseEvent("x", "e")]


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert decode_split(raw, [cut]) == [SseEvent("héllo ✓")]


def test_encode_event_round_trips() -> None:
    raw = encode_event("line 1\nline 2", "delta") + encode_event("{}")
    assert decode_all(raw) == [SseEvent("line 1\nline 2", "delta"), SseEvent("{}")]


MIXED = (
    b": comment\r\nevent: a\r\ndata: 1\r\n\r\n"
    b"data: 2\rdata: 3\r\r"
    b'data: {"k": "\xc3\xa9"}\n\n'
    b"event: b\ndata:\n\ndata: tail"
)
GOLDEN = (DATA / "stream_tool_calls.sse").read_bytes()


@pytest.mark.parametrize("raw", [MIXED, GOLDEN], ids=["mixed", "golden"])
def test_every_single_cut_gives_the_same_events(raw: bytes) -> None:
    expected = decode_all(raw)
    for cut in range(1, len(raw)):
        assert decode_split(raw, [cut]) == expected


@given(st.sets(st.integers(1, len(MIXED) - 1)).map(sorted))
def test_chunk_boundaries_never_change_events(cuts: list[int]) -> None:
    assert decode_split(MIXED, cuts) == decode_all(MIXED)


@given(st.sets(st.integers(1, len(GOLDEN) - 1), max_size=40).map(sorted))
def test_chunk_boundaries_never_change_events_golden(cuts: list[int]) -> None:
    assert decode_split(GOLDEN, cuts) == decode_all(GOLDEN)


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20),
            st.sampled_from([None, "delta", "ping"]),
        ),
        max_size=6,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.data(),
)
def test_generated_streams_decode_whatever_the_line_endings_and_cuts(
    events: list[tuple[str, str | None]], eol: bytes, data: st.DataObject
) -> None:
    raw = b"".join(encode_event(text, name) for text, name in events).replace(b"\n", eol)
    cuts = data.draw(st.sets(st.integers(1, max(1, len(raw) - 1))).map(sorted)) if len(raw) > 1 else []
    assert decode_split(raw, cuts) == [SseEvent(text, name) for text, name in events]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_every_byte_is_searched_once_whatever_the_chunking(chunk: int) -> None:
    """Linear in the input: one big event and many small lines, fed in any chunk size, are searched for
    line ends once per byte (the old decoder rescanned its whole buffer on every chunk)."""
    big = b"data: " + b"x" * 300_000 + b"\n\n"
    small = b"".join(b"data: %d\n\n" % i for i in range(20_000))
    raw = big + small
    decoder = SseDecoder()
    events = [ev for i in range(0, len(raw), chunk) for ev in decoder.feed(raw[i : i + chunk])]
    assert len(events) == 20_001
    assert decoder.scanned <= len(raw)


def test_an_event_larger_than_the_bound_is_refused_while_it_arrives() -> None:
    from faregate.providers.sse import SseEventTooLarge

    decoder = SseDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"x" * 500 + b"\n")
    with pytest.raises(SseEventTooLarge):
        for _ in range(10):  # one unfinished line growing past the bound
            decoder.feed(b"y" * 100)
    many = SseDecoder(max_event_bytes=1000)
    with pytest.raises(SseEventTooLarge):  # many data lines of one event
        many.feed(b"".join(b"data: " + b"z" * 90 + b"\n" for _ in range(20)))
    ok = SseDecoder(max_event_bytes=1000)
    assert len(ok.feed(b"".join(b"data: " + b"z" * 90 + b"\n\n" for _ in range(200)))) == 200
