"""The upstream client's errors: one tree, so a caller catches `ClientError` and maps each leaf once.

ClientError
├── ConnectFailed        no connection: refused, unreachable, DNS (`os_error` is the OS's own)
├── ConnectTimeout       no connection within the connect timeout (also a `TimeoutError`)
├── ReadTimeout          no byte from the upstream within the read timeout (also a `TimeoutError`)
├── ServerDisconnected   the connection closed before a response head arrived
├── BodyCutShort         the connection closed before the response body's end
├── ProtocolError        the bytes are not HTTP/1.1 (a malformed head, chunk size, encoding; too large)
└── BadRequest           a request this client refuses to send (a CR or LF in a header, a bad URL)
"""

from __future__ import annotations


class ClientError(Exception):
    """Any failure of an upstream call made by `faregate.upstream`."""


class ConnectFailed(ClientError):
    def __init__(self, origin: str, os_error: OSError) -> None:
        super().__init__(f"cannot connect to {origin}: {os_error.strerror or type(os_error).__name__}")
        self.os_error = os_error


class ConnectTimeout(ClientError, TimeoutError):
    pass


class ReadTimeout(ClientError, TimeoutError):
    pass


class ServerDisconnected(ClientError):
    pass


class BodyCutShort(ClientError):
    pass


class ProtocolError(ClientError):
    pass


class BadRequest(ClientError):
    pass
