"""Content decoding of a response body (`Content-Encoding: gzip | deflate`), without I/O.

Each call gives at most `MAX_PIECE_BYTES` of output and keeps the rest of its input for the next, so a
small compressed body that inflates to gigabytes is never inflated in one step: the reader's size bound
stops it after a piece or two.
"""

from __future__ import annotations

import zlib
from typing import Final

from faregate.upstream.errors import ProtocolError
from faregate.upstream.http1 import Headers

MAX_PIECE_BYTES: Final = 256 * 1024
GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


class ContentDecoder:
    """One body's decompressor. `feed` new bytes, then `more()` while `pending`; `finish()` at the end."""

    __slots__ = ("_fed", "_gzip", "_lead", "_z")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._lead = b""  # deflate's first byte, until a second tells zlib from raw deflate
        self._fed = False  # an empty body marked compressed (some servers do) is an empty body
        self._z: zlib._Decompress | None = zlib.decompressobj(GZIP_WBITS) if gzip else None

    @property
    def pending(self) -> bool:
        """Input is left that the last call did not inflate (its output was at the piece size)."""
        return self._z is not None and bool(self._z.unconsumed_tail)

    def feed(self, data: bytes) -> bytes:
        self._fed = self._fed or bool(data)
        z = self._z
        if z is None:  # deflate: a zlib stream as RFC 9110 says, or raw deflate as some servers send it
            data = self._lead + data
            if len(data) < 2:
                self._lead = data
                return b""
            z = self._z = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS)
        return self._run(z, data)

    def more(self) -> bytes:
        z = self._z
        return self._run(z, z.unconsumed_tail) if z is not None else b""

    def _run(self, z: zlib._Decompress, data: bytes) -> bytes:
        try:
            out = z.decompress(data, MAX_PIECE_BYTES)
            if z.eof and z.unused_data and self._gzip and not z.unconsumed_tail:
                rest = z.unused_data  # a second gzip member: RFC 1952 allows several
                self._z = z = zlib.decompressobj(GZIP_WBITS)
                out += z.decompress(rest, MAX_PIECE_BYTES)
        except zlib.error as e:
            raise ProtocolError(f"the response body does not decompress: {e}") from None
        return out

    def finish(self) -> bytes:
        """The body ended: what the decompressor still holds. A compressed stream cut short is an error."""
        z = self._z
        if not self._fed:
            return b""
        if z is None:
            if self._lead:
                raise ProtocolError("the compressed response body ended before its stream did")
            return b""
        try:
            out = z.flush()
        except zlib.error as e:
            raise ProtocolError(f"the response body does not decompress: {e}") from None
        if not z.eof:
            raise ProtocolError("the compressed response body ended before its stream did")
        return out


def _zlib_header(data: bytes) -> bool:
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def decoder_for(headers: Headers) -> ContentDecoder | None:
    """The decoder of a response's `Content-Encoding`, None for none; one it did not offer is refused."""
    coding = headers.get("content-encoding")
    if coding is None:
        return None
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return ContentDecoder(gzip=True)
    if coding == "deflate":
        return ContentDecoder(gzip=False)
    raise ProtocolError(f"unsupported content-encoding {coding!r}")
