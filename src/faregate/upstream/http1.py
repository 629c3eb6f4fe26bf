"""HTTP/1.1 on the wire, without I/O (RFC 9112): a request's bytes, and an incremental parser of the response.

The parser takes the bytes however TCP split them and gives the same head and body for any split. Every
part of a response it buffers is bounded (the head, a chunk-size line, the trailers): what is larger, or not
HTTP/1.1, raises `ProtocolError` at once, never waits for more.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Final
from urllib.parse import quote, urlsplit

from faregate.upstream.errors import BadRequest, BodyCutShort, ProtocolError, ServerDisconnected
from faregate.values import frozen

MAX_HEAD_BYTES: Final = 64 * 1024  # status line and headers (and, separately, the trailers)
MAX_HEADERS: Final = 256
MAX_CHUNK_LINE_BYTES: Final = 4 * 1024  # a chunk size with its extensions
HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# What the client sends unless the caller's headers name them (case-insensitively); the encodings offered
# are the ones decode.py decodes.
DEFAULT_HEADERS: Final = (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("User-Agent", "faregate"))
OWN_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
NO_BODY_STATUSES: Final = frozenset({204, 304})
# Path and query characters sent as they are; anything else (a space, a non-ASCII letter) is percent-encoded.
SAFE_TARGET: Final = "/?&=:;,@!$'()*+-._~%"


@frozen
class Origin:
    """Where a request goes: a pool of connections is kept per origin."""

    scheme: str
    host: str  # without brackets, for DNS and TLS server names
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}"


@functools.lru_cache(maxsize=1024)
def split_url(url: str) -> tuple[Origin, str]:
    """(origin, request target) of an absolute http(s) URL. A URL with credentials or a fragment, or not
    http(s), is refused (`BadRequest`): none is ever a provider's."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise BadRequest(f"not an http(s) URL: {url!r}")
    if parts.username is not None or parts.fragment:
        raise BadRequest(f"a URL with credentials or a fragment: {url!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as e:
        raise BadRequest(f"bad port in {url!r}") from e
    target = quote(parts.path or "/", safe=SAFE_TARGET)
    if parts.query:
        target += "?" + quote(parts.query, safe=SAFE_TARGET)
    return Origin(scheme, parts.hostname, port), target


def render_request(
    method: str, origin: Origin, target: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request's bytes: request line, Host, the caller's headers, the defaults they do not override,
    Content-Length, body. A CR or LF in a header (a header injection) is refused (`BadRequest`)."""
    names = {name.lower() for name in headers}
    if names & OWN_HEADERS:
        raise BadRequest(f"the client sets these headers itself: {sorted(names & OWN_HEADERS)}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"{name}: {value}" for name, value in DEFAULT_HEADERS if name.lower() not in names]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\r") != breaks or text.count("\n") != breaks:  # one check for all: no line holds one
        bad = next((n for n, v in headers.items() if _has_newline(n) or _has_newline(v)), method)
        raise BadRequest(f"a CR or LF in the request header {bad!r}")
    head = (text + "\r\n\r\n").encode("utf-8")
    return head + body if body else head


def _has_newline(s: str) -> bool:
    return "\r" in s or "\n" in s


class Headers(Mapping[str, str]):
    """A response's headers, read-only and case-insensitive: `get(name)` is the first value, as aiohttp's
    `CIMultiDictProxy` gives it, `getall(name)` every one in order. Names iterate lower-cased."""

    __slots__ = ("_first", "_pairs", "_repeated")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = tuple(pairs)
        first: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in pairs:
            key = name.lower()
            if key in first:
                repeated.add(key)
            else:
                first[key] = value
        self._first, self._repeated = first, repeated

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def getall(self, name: str) -> list[str]:
        key = name.lower()
        if key not in self._repeated:  # the usual case: a name sent once, or not at all
            value = self._first.get(key)
            return [] if value is None else [value]
        return [v for n, v in self._pairs if n.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"


class Framing(Enum):
    """How a response body ends (RFC 9112 section 6.3)."""

    NONE = "none"  # 1xx, 204, 304, an answer to HEAD
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"  # read until the server closes the connection


@frozen
class ResponseHead:
    version: str  # "1.1" or "1.0"
    status: int
    reason: str
    headers: Headers
    framing: Framing
    content_length: int | None  # declared, for a LENGTH body
    keep_alive: bool  # the connection may carry another request after this response


def parse_head(raw: bytes, *, no_body: bool = False) -> ResponseHead:
    """One response head (status line and headers, without the blank line that ends it)."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\x00" in text:
        raise ProtocolError("a bare CR or LF, or a NUL, in the response head")
    if len(lines) > MAX_HEADERS + 1:
        raise ProtocolError(f"more than {MAX_HEADERS} response headers")
    version, status, reason = _status_line(lines[0])
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip(" \t") or " " in name or "\t" in name:
            raise ProtocolError(f"malformed response header line {line[:80]!r}")
        pairs.append((name, value.strip(" \t")))
    headers = Headers(pairs)
    framing, length = _framing(status, headers, no_body)
    tokens = {t.strip().lower() for v in headers.getall("connection") for t in v.split(",")}
    keep_alive = ("close" not in tokens) if version == "1.1" else ("keep-alive" in tokens)
    if framing is Framing.CLOSE or (framing is Framing.CHUNKED and "content-length" in headers):
        keep_alive = False  # a close-delimited body; both framings sent (RFC 9112 6.3: then close)
    return ResponseHead(version, status, reason, headers, framing, length, keep_alive)


def _status_line(line: str) -> tuple[str, int, str]:
    proto, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if proto not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise ProtocolError(f"malformed status line {line[:80]!r}")
    return proto[5:], int(code), reason


def _framing(status: int, headers: Headers, no_body: bool) -> tuple[Framing, int | None]:
    if no_body or status < 200 or status in NO_BODY_STATUSES:
        return Framing.NONE, None
    codings = [c.strip().lower() for v in headers.getall("transfer-encoding") for c in v.split(",")]
    codings = [c for c in codings if c]
    if codings:
        if codings != ["chunked"]:
            raise ProtocolError(f"unsupported transfer-coding {', '.join(codings)!r}")
        return Framing.CHUNKED, None
    lengths = {v.strip() for x in headers.getall("content-length") for v in x.split(",")}
    if not lengths:
        return Framing.CLOSE, None
    if len(lengths) != 1:
        raise ProtocolError(f"conflicting Content-Length values {sorted(lengths)}")
    value = lengths.pop()
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ProtocolError(f"malformed Content-Length {value[:40]!r}")
    return Framing.LENGTH, int(value)


def parse_chunk_size(line: bytes) -> int:
    """The size on a chunk's first line (hex digits, then optional `;extensions`, which are ignored)."""
    size = line.partition(b";")[0].strip(b" \t")
    if not size or len(size) > 16 or size.strip(HEX_DIGITS):
        raise ProtocolError(f"malformed chunk size {line[:40]!r}")
    return int(size, 16)


# Parser states
_HEAD, _LENGTH, _SIZE, _CHUNK, _CHUNK_END, _TRAILERS, _CLOSE, _DONE = range(8)


class ResponseParser:
    """One response, fed its bytes as they arrive: `feed` returns the body's pieces (transfer-decoded,
    not content-decoded); `head` is set once the head is complete (interim 1xx heads are skipped), `done`
    once the message is; `extra` holds bytes that came after it. `feed_eof` says the server closed."""

    __slots__ = ("_buf", "_no_body", "_remaining", "_seen", "_state", "done", "extra", "head")

    def __init__(self, *, no_body: bool = False) -> None:
        self._buf = b""
        self._no_body = no_body
        self._remaining = 0
        self._seen = 0  # bytes of `_buf` already searched for a line's end: each byte is searched once
        self._state = _HEAD
        self.head: ResponseHead | None = None
        self.done = False
        self.extra = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._buf:
            data, self._buf = self._buf + data, b""
        out: list[bytes] = []
        pos, end = 0, len(data)
        state = self._state
        while pos < end and state != _DONE:
            if state in (_LENGTH, _CHUNK):
                take = min(self._remaining, end - pos)
                out.append(data[pos : pos + take] if take < end - pos or pos else data)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    state = _DONE if state == _LENGTH else _CHUNK_END
            elif state == _CLOSE:
                out.append(data[pos:] if pos else data)
                pos = end
            elif state == _SIZE:
                eol = self._find(data, pos, b"\r\n", MAX_CHUNK_LINE_BYTES, "a chunk-size line")
                if eol < 0:
                    break
                self._remaining = parse_chunk_size(data[pos:eol])
                pos = eol + 2
                state = _CHUNK if self._remaining else _TRAILERS
            elif state == _CHUNK_END:
                if data[pos : pos + 2] != b"\r\n"[: end - pos]:
                    raise ProtocolError("a chunk not followed by CRLF")
                if end - pos < 2:
                    break
                pos += 2
                state = _SIZE
            elif state == _TRAILERS:
                if data.startswith(b"\r\n", pos):
                    pos += 2
                    state = _DONE
                    continue
                eot = self._find(data, pos, b"\r\n\r\n", MAX_HEAD_BYTES, "the trailers")
                if eot < 0:
                    break
                pos = eot + 4  # trailers are read and dropped: nothing faregate uses comes in them
                state = _DONE
            else:  # _HEAD
                eoh = self._find(data, pos, b"\r\n\r\n", MAX_HEAD_BYTES, "a response head")
                if eoh < 0:
                    break
                head = parse_head(data[pos:eoh], no_body=self._no_body)
                pos = eoh + 4
                if head.status < 200:
                    if head.status == 101:
                        raise ProtocolError("101 Switching Protocols to a request that asked for none")
                    continue  # 100 Continue, 103 Early Hints: the real head follows
                self.head = head
                state = _START[head.framing]
                self._remaining = head.content_length or 0
                if state == _LENGTH and not self._remaining:
                    state = _DONE
        self._state = state
        if state == _DONE:
            self.done = True
            self.extra += data[pos:]
        elif pos < end:
            self._buf = data[pos:]
        return out

    def _find(self, data: bytes, pos: int, sep: bytes, limit: int, what: str) -> int:
        """Where `sep` starts after `pos`, within `limit` bytes; -1 to wait for more bytes (the ones
        searched are not searched again); a part longer than `limit` is a `ProtocolError`."""
        at = data.find(sep, pos + self._seen, pos + limit + len(sep))
        if at >= 0:
            self._seen = 0
            return at
        if len(data) - pos > limit:
            raise ProtocolError(f"{what} over {limit} bytes")
        self._seen = max(0, len(data) - pos - len(sep) + 1)
        return -1

    def feed_eof(self) -> None:
        """The server closed the connection: the end of a close-delimited body, else an error."""
        if self._state == _CLOSE:
            self._state, self.done = _DONE, True
        elif self._state == _HEAD:
            raise ServerDisconnected("the upstream closed the connection before its response")
        elif self._state != _DONE:
            raise BodyCutShort("the upstream closed the connection before the response body's end")


_START: Final = {
    Framing.NONE: _DONE,
    Framing.LENGTH: _LENGTH,
    Framing.CHUNKED: _SIZE,
    Framing.CLOSE: _CLOSE,
}
