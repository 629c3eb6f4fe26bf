"""Every client-visible error, and the envelopes that render them (OpenAI's, Anthropic's and Google's).

    FaregateError (500 server_error)
    ├── InvalidRequest (400 invalid_request_error)
    │   ├── ModelNotFound (404 model_not_found)
    │   ├── ModelRetired (404 model_retired: every offering retired by the catalog, a sync or routes.yaml)
    │   ├── NotFound (404 not_found)
    │   ├── PayloadTooLarge (413 request_too_large)
    │   └── UnsupportedMediaType (415 unsupported_media_type)
    ├── AuthenticationError (401 invalid_api_key)
    ├── InsufficientCredits (402 insufficient_credits)
    ├── PermissionDenied (403 permission_denied)
    ├── RateLimited (429 rate_limit_exceeded, Retry-After)
    └── AllChannelsFailed (502 / 503 / 504: every channel of the plan failed)

A leaf module: any layer may import it. Upstream failures are classified into `UpstreamError` by each
provider adapter; `execute` collects them into `AllChannelsFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from faregate.values import frozen


class FaregateError(Exception):
    status: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})


class InvalidRequest(FaregateError):
    status, error_type, code = 400, "invalid_request_error", "invalid_request"


class ModelNotFound(InvalidRequest):
    status, code = 404, "model_not_found"


class ModelRetired(InvalidRequest):
    status, code = 404, "model_retired"


class NotFound(InvalidRequest):
    status, code = 404, "not_found"


class PayloadTooLarge(InvalidRequest):
    status, code = 413, "request_too_large"


class UnsupportedMediaType(InvalidRequest):
    status, code = 415, "unsupported_media_type"


class AuthenticationError(FaregateError):
    status, error_type, code = 401, "authentication_error", "invalid_api_key"


class InsufficientCredits(FaregateError):
    status, error_type, code = 402, "insufficient_quota", "insufficient_credits"


class PermissionDenied(FaregateError):
    status, error_type, code = 403, "permission_error", "permission_denied"


class RateLimited(FaregateError):
    status, error_type, code = 429, "rate_limit_error", "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


@frozen
class UpstreamError:
    """One failed attempt, as a provider adapter classified it. Never holds a secret or a raw body."""

    kind: str  # "connect" | "timeout" | "status" | "protocol"
    message: str
    status: int | None = None
    retryable: bool = True
    error_type: str | None = None  # the upstream's structured error type, when it gave one
    retry_after_s: float | None = None  # the upstream's Retry-After, when it sent one

    @property
    def timed_out(self) -> bool:
        return self.kind == "timeout"


class UpstreamRequestError(FaregateError):
    """A 4xx the upstream blamed on the request itself: returned to the client as is, never retried."""

    def __init__(self, err: UpstreamError, *, provider: str) -> None:
        super().__init__(f"{provider}: {err.message}", code=err.error_type or "upstream_error")
        self.status = err.status or 400
        self.error_type = STATUS_TYPES.get(self.status, "invalid_request_error")


class AllChannelsFailed(FaregateError):
    error_type, code = "upstream_error", "all_channels_failed"

    def __init__(self, attempts: Sequence[tuple[str, UpstreamError]], *, skipped: int = 0) -> None:
        if not attempts:
            status, what = 503, f"no channel available ({skipped} cooling down or inactive)"
        elif all(e.timed_out for _, e in attempts):
            status, what = 504, "every channel timed out"
        else:
            status, what = 502, "every channel failed"
        tried = "; ".join(f"{channel}: {e.message}" for channel, e in attempts)
        super().__init__(f"{what}" + (f" ({tried})" if tried else ""))
        self.status = status
        self.attempts = tuple(attempts)


STATUS_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "insufficient_quota",
        403: "permission_error",
        404: "invalid_request_error",
        413: "invalid_request_error",
        415: "invalid_request_error",
        429: "rate_limit_error",
    }
)

# Anthropic's error `type` per HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        502: "api_error",
        503: "overloaded_error",
        504: "timeout_error",
    }
)


def from_http_status(status: int, reason: str) -> FaregateError:
    """Wrap one of aiohttp's own HTTP errors (unknown route, wrong method, body too large)."""
    cls = {404: NotFound, 413: PayloadTooLarge}.get(status, InvalidRequest if status < 500 else FaregateError)
    err = cls(reason)
    err.status = status
    if status == 405:
        err.code = "method_not_allowed"
    return err


def openai_envelope(e: FaregateError) -> dict[str, Any]:
    return {"error": {"message": e.message, "type": e.error_type, "code": e.code, "param": e.param}}


def anthropic_envelope(e: FaregateError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_TYPES.get(e.status, "api_error"), "message": e.message},
    }


# Google's canonical `status` per HTTP status (google.rpc.Code, as the Gemini API names them).
GOOGLE_STATUSES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        402: "RESOURCE_EXHAUSTED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        405: "UNIMPLEMENTED",
        409: "ABORTED",
        413: "INVALID_ARGUMENT",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "NOT_IMPLEMENTED",
        502: "UNAVAILABLE",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)


def google_envelope(e: FaregateError) -> dict[str, Any]:
    """Google's `{"error": {"code", "message", "status"}}` (the Gemini API's, read by google-genai)."""
    status = GOOGLE_STATUSES.get(e.status, "INTERNAL" if e.status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": e.status, "message": e.message, "status": status}}
