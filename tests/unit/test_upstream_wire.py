"""faregate.upstream's wire code, without I/O: request bytes, the incremental response parser, content
decoding. Any split of the byte stream gives the same head and body; malformed input raises a
`ClientError` at once (never an unrelated exception, never a wait for bytes that cannot help)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.upstream.decode import MAX_PIECE_BYTES, ContentDecoder, decoder_for
from faregate.upstream.errors import BadRequest, BodyCutShort, ClientError, ProtocolError, ServerDisconnected
from faregate.upstream.http1 import (
    MAX_HEAD_BYTES,
    Framing,
    Headers,
    Origin,
    ResponseParser,
    render_request,
    split_url,
)

# --- requests ---


def test_a_request_is_one_bytes_object_with_host_defaults_and_length() -> None:
    origin, target = split_url("https://api.example.test/v1/chat/completions")
    raw = render_request(
        "POST", origin, target, {"Authorization": "Bearer k", "Content-Type": "application/json"}, b"{}"
    )
    assert raw == (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer k\r\n"
        b"Content-Type: application/json\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        b"User-Agent: faregate\r\nContent-Length: 2\r\n\r\n{}"
    )


def test_the_callers_headers_override_the_defaults_case_insensitively() -> None:
    origin, target = split_url("http://127.0.0.1:8080/x")
    raw = render_request("GET", origin, target, {"user-agent": "sdk/1", "accept-encoding": "identity"}, None)
    assert raw == (
        b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nuser-agent: sdk/1\r\naccept-encoding: identity\r\n"
        b"Accept: */*\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("http://h/", Origin("http", "h", 80), "/"),
        ("https://H.example:8443", Origin("https", "h.example", 8443), "/"),
        ("http://[::1]:9/a b?q=1 2&alt=sse", Origin("http", "::1", 9), "/a%20b?q=1%202&alt=sse"),
        (
            "https://g/v1beta/models/m:streamGenerateContent?alt=sse",
            Origin("https", "g", 443),
            "/v1beta/models/m:streamGenerateContent?alt=sse",
        ),
    ],
)
def test_urls_split_into_origin_and_target(url: str, origin: Origin, target: str) -> None:
    assert split_url(url) == (origin, target)


def test_the_host_header_brackets_ipv6_and_names_a_port_only_when_not_the_default() -> None:
    assert Origin("http", "::1", 9).host_header == "[::1]:9"
    assert Origin("https", "a", 443).host_header == "a"
    assert Origin("http", "a", 443).host_header == "a:443"


@pytest.mark.parametrize("url", ["ftp://h/", "http:///x", "http://u:p@h/", "http://h/#f", "http://h:99999/"])
def test_urls_that_are_no_providers_are_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        split_url(url)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer k\r\nX-Evil: 1"},
        {"X\nY": "1"},
        {"A": "b\rc"},
        {"Host": "other"},
        {"content-length": "1"},
    ],
)
def test_header_injection_and_the_clients_own_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as caught:
        render_request("POST", *split_url("http://h/"), headers, b"{}")
    assert "Bearer k" not in str(caught.value)  # the error names the header, never its value


# --- responses: generated messages, fed in any split ---


@dataclass(frozen=True)
class Message:
    raw: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    framing: Framing
    keep_alive: bool


TOKEN = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda s: s not in ("content-length", "transfer-encoding", "connection", "content-encoding")
)
VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    status = draw(st.sampled_from([200, 201, 400, 404, 429, 500, 503]))
    headers = draw(st.lists(st.tuples(TOKEN, VALUE), max_size=6))
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from([Framing.LENGTH, Framing.CHUNKED, Framing.CLOSE]))
    close = draw(st.booleans())
    interim = draw(
        st.sampled_from(
            [b"", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]
        )
    )
    head = [f"HTTP/1.1 {status} Reason Phrase", *(f"{n}: {v}" for n, v in headers)]
    if close:
        head.append("Connection: close")
    if framing is Framing.LENGTH:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing is Framing.CHUNKED:
        head.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=5))) if body else []
        pieces = [body[a:b] for a, b in pairwise([0, *cuts, len(body)]) if body[a:b]]
        ext = draw(st.sampled_from([b"", b";name=value", b" ;x"]))
        payload = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces)
        payload += (
            b"0\r\n" + draw(st.sampled_from([b"", b"Trailer-One: 1\r\n", b"A: 1\r\nB: 2\r\n"])) + b"\r\n"
        )
    else:
        payload = body
    raw = interim + ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    keep_alive = not close and framing is not Framing.CLOSE
    return Message(raw, status, headers, body, framing, keep_alive)


def parse_in_pieces(raw: bytes, cuts: list[int]) -> tuple[ResponseParser, bytes]:
    parser = ResponseParser()
    edges = [0, *sorted(c for c in set(cuts) if 0 < c < len(raw)), len(raw)]
    body = b"".join(piece for a, b in pairwise(edges) for piece in parser.feed(raw[a:b]))
    if not parser.done:
        parser.feed_eof()
    return parser, body


@settings(max_examples=300, deadline=None)
@given(messages(), st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_of_a_response_gives_the_same_head_and_body(msg: Message, cuts: list[int]) -> None:
    parser, body = parse_in_pieces(msg.raw, cuts)
    whole, whole_body = parse_in_pieces(msg.raw, [])
    assert parser.done and body == msg.body == whole_body
    head = parser.head
    assert head is not None and head == whole.head
    assert head.status == msg.status and head.framing is msg.framing and head.keep_alive is msg.keep_alive
    for name, value in msg.headers:
        assert value in head.headers.getall(name.upper())
    assert head.content_length == (len(msg.body) if msg.framing is Framing.LENGTH else None)
    assert parser.extra == b""


def test_byte_by_byte_feeding_searches_each_byte_once_and_keeps_up() -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 20000 + b"\r\nContent-Length: 3\r\n\r\nabc"
    parser = ResponseParser()
    body = b"".join(piece for i in range(len(raw)) for piece in parser.feed(raw[i : i + 1]))
    assert parser.done and body == b"abc"


def test_bytes_after_the_response_are_kept_apart() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200") == [b"ok"]
    assert parser.done and parser.extra == b"HTTP/1.1 200"


@pytest.mark.parametrize(
    ("raw", "no_body", "framing", "keep_alive"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", False, Framing.NONE, True),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", False, Framing.NONE, True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", True, Framing.NONE, True),  # answer to HEAD
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False, Framing.LENGTH, False),
        (
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            False,
            Framing.LENGTH,
            True,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
            False,
            Framing.LENGTH,
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            False,
            Framing.CHUNKED,
            False,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", False, Framing.LENGTH, True),
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", False, Framing.LENGTH, True),  # no reason phrase
    ],
)
def test_framing_and_keep_alive(raw: bytes, no_body: bool, framing: Framing, keep_alive: bool) -> None:
    parser = ResponseParser(no_body=no_body)
    parser.feed(raw)
    assert parser.done and parser.head is not None
    assert (parser.head.framing, parser.head.keep_alive) == (framing, keep_alive)


BAD_HEADS = {
    "not http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "http/2 preface": b"HTTP/2 200\r\n\r\n",
    "short status": b"HTTP/1.1 20 OK\r\n\r\n",
    "non-ascii digits": "HTTP/1.1 2²0 OK\r\n\r\n".encode("latin-1"),
    "no colon": b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
    "space in name": b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nName : 1\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nA: 1\r\n  folded\r\n\r\n",
    "bare lf": b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n",
    "bare cr": b"HTTP/1.1 200 OK\r\nA: 1\rB: 2\r\n\r\n",
    "nul": b"HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n",
    "conflicting lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "hex length": b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
    "gzip transfer-coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "switching protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    "head too large": b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 300 + b"\r\n",
    "chunk size not hex": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "chunk size with 0x": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n",
    "chunk size with underscore": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
    "chunk size empty": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
    "chunk size huge": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n",
    "chunk line too long": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"x" * 5000,
    "chunk without crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY0\r\n\r\n",
    "trailers too large": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: "
    + b"t" * MAX_HEAD_BYTES,
}


@pytest.mark.parametrize("raw", list(BAD_HEADS.values()), ids=list(BAD_HEADS))
@pytest.mark.parametrize("step", [0, 1, 7])
def test_malformed_input_raises_a_protocol_error_at_once(raw: bytes, step: int) -> None:
    """Whole, byte by byte, or in 7-byte pieces: the error comes as soon as the bad bytes are in, never
    after waiting for more (the input here is never followed by anything that could fix it)."""
    parser = ResponseParser()
    with pytest.raises(ProtocolError):
        if not step:
            parser.feed(raw)
        for i in range(0, len(raw), step or len(raw) + 1):
            parser.feed(raw[i : i + step])


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", ServerDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Le", ServerDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", BodyCutShort),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", BodyCutShort),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", BodyCutShort),  # trailers' end
    ],
)
def test_a_close_before_the_end_is_an_error(raw: bytes, error: type[ClientError]) -> None:
    parser = ResponseParser()
    parser.feed(raw)
    with pytest.raises(error):
        parser.feed_eof()


def test_a_close_ends_a_close_delimited_body() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\nsome") == [b"some"]
    assert parser.feed(b" more") == [b" more"] and not parser.done
    parser.feed_eof()
    assert parser.done and parser.head is not None and not parser.head.keep_alive


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b""]),
    st.binary(max_size=400),
)
def test_any_bytes_give_a_message_or_a_client_error(prefix: bytes, junk: bytes) -> None:
    parser = ResponseParser()
    try:
        for i in range(0, len(prefix + junk), 5):
            parser.feed((prefix + junk)[i : i + 5])
        parser.feed_eof()
    except ClientError:
        return
    assert parser.done and parser.head is not None


# --- headers ---


def test_headers_are_case_insensitive_read_only_first_value_like_aiohttps() -> None:
    h = Headers([("Retry-After", "5"), ("Set-Thing", "a"), ("set-thing", "b")])
    assert h.get("retry-after") == "5" and h["RETRY-AFTER"] == "5" and "Retry-after" in h
    assert h.get("missing") is None and h.getall("SET-THING") == ["a", "b"] and h["set-thing"] == "a"
    assert sorted(h) == ["retry-after", "set-thing"] and len(h) == 2
    assert not hasattr(h, "__setitem__")


# --- content decoding ---


def decode_all(decoder: ContentDecoder, data: bytes, cuts: list[int]) -> bytes:
    edges = [0, *sorted(c for c in set(cuts) if 0 < c < len(data)), len(data)]
    out = []
    for a, b in pairwise(edges):
        out.append(decoder.feed(data[a:b]))
        while decoder.pending:
            out.append(decoder.more())
    out.append(decoder.finish())
    return b"".join(out)


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=3000),
    st.lists(st.integers(0, 3000), max_size=8),
    st.sampled_from(["gzip", "x-gzip", "deflate", "raw-deflate"]),
)
def test_gzip_and_deflate_decode_the_same_in_any_split(body: bytes, cuts: list[int], coding: str) -> None:
    packers: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "deflate": zlib.compress,
        "raw-deflate": raw_deflate,
    }
    packed = packers[coding](body)
    decoder = decoder_for(
        Headers([("Content-Encoding", "deflate" if coding == "raw-deflate" else coding.upper())])
    )
    assert decoder is not None
    assert decode_all(decoder, packed, cuts) == body


def test_a_decompression_bomb_comes_out_in_bounded_pieces() -> None:
    packed = gzip.compress(b"\0" * (20 * MAX_PIECE_BYTES))  # about 20 KB that inflate to 5 MiB
    decoder = ContentDecoder(gzip=True)
    first = decoder.feed(packed)
    assert len(first) == MAX_PIECE_BYTES and decoder.pending


def test_two_gzip_members_are_one_body() -> None:
    assert decode_all(ContentDecoder(gzip=True), gzip.compress(b"ab") + gzip.compress(b"cd"), []) == b"abcd"


@pytest.mark.parametrize("packed", [gzip.compress(b"hello world" * 50)[:-12], b"\x1f\x8b\x08garbage"])
def test_a_truncated_or_corrupt_compressed_body_is_a_protocol_error(packed: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_all(ContentDecoder(gzip=True), packed, [])


def test_an_empty_body_marked_compressed_is_empty() -> None:
    assert ContentDecoder(gzip=True).finish() == b""


@pytest.mark.parametrize(
    ("coding", "decodes"), [(None, False), ("identity", False), ("gzip", True), ("Deflate", True)]
)
def test_decoder_for_offered_codings(coding: str | None, decodes: bool) -> None:
    headers = Headers([] if coding is None else [("Content-Encoding", coding)])
    assert (decoder_for(headers) is not None) is decodes


@pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
def test_a_coding_never_offered_is_refused(coding: str) -> None:
    with pytest.raises(ProtocolError):
        decoder_for(Headers([("Content-Encoding", coding)]))
