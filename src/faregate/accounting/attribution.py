"""App attribution: which app sent a request, from OpenRouter's `HTTP-Referer` and `X-Title` headers.

Recorded per request for reports (the trace, `/v1/metrics?app=`, `faregate audit`'s spend by app). A client
says what it likes here: it is a label for grouping, never an identity, and never used to authorize.
Values are bounded in length and stripped of control characters before they reach the usage log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

MAX_APP_CHARS: Final = 120
MAX_URL_CHARS: Final = 300
TITLE_HEADERS: Final = ("X-Title", "X-OpenRouter-Title")
REFERER_HEADERS: Final = ("HTTP-Referer", "Referer")


def clean(value: str | None, limit: int) -> str | None:
    """Printable text only, whitespace collapsed, at most `limit` characters; None when nothing is left."""
    if not value:
        return None
    text = " ".join("".join(c if c.isprintable() else " " for c in value[: limit * 4]).split())
    return text[:limit] or None


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((headers[n] for n in names if headers.get(n)), None)


def app_attribution(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(app, app_url): the app's title, else its referer's host; and the referer as sent (bounded)."""
    url = clean(_first(headers, REFERER_HEADERS), MAX_URL_CHARS)
    title = clean(_first(headers, TITLE_HEADERS), MAX_APP_CHARS)
    if title is None and url is not None:
        host = urlsplit(url if "//" in url else "//" + url).hostname
        title = clean(host, MAX_APP_CHARS) if host else clean(url, MAX_APP_CHARS)
    return title, url
