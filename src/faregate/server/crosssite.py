"""Cross-site requests: what a web page the operator visits must not be able to make the gateway do.

A browser attaches `Origin` to every cross-origin request (and to same-origin POSTs). A request whose
origin is neither the gateway's own nor allowed by `server.cors` is refused on every endpoint, before
anything else runs: the browser would hide the answer, but a "simple" request (a `text/plain` or
form-encoded POST) is still executed unless the server refuses it. Requests without `Origin` (SDKs,
curl) are not browser requests and pass.

On an open gateway (`auth: open`) the `Host` header must name a loopback host, the bound host or one of
`server.allowed_hosts`: a DNS-rebinding page calls the gateway under its own host name, so its requests
are same-origin to the browser and only the host name gives them away.

Admin endpoints never take what a page can send without a preflight: a form-encoded, multipart or
`text/plain` body, or a body with no Content-Type, is refused with 415.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from faregate.config.model import CorsSpec
from faregate.errors import PermissionDenied, UnsupportedMediaType
from faregate.server.appkeys import OPTIONS, RUNTIME

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# The CORS-safelisted request content types: a page may send them cross-origin without a preflight.
SIMPLE_TYPES: Final = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def host_name(host_header: str) -> str:
    """The name part of a `Host` value, lower-cased, without port, brackets or a trailing dot."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_loopback_name(name: str) -> bool:
    """`localhost`, any `*.localhost` (RFC 6761: browsers resolve these to loopback themselves), or a
    loopback IP literal."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)  # every request asks, with the same few Host values
def host_allowed(host_header: str, configured: tuple[str, ...]) -> bool:
    name = host_name(host_header)
    return is_loopback_name(name) or name in {host_name(h) for h in configured}


def same_origin(origin: str, host_header: str | None) -> bool:
    """The gateway's own pages: `Origin` names the host the request was sent to (any scheme: TLS may end
    at a proxy in front)."""
    if not host_header:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host_header.strip().lower()


def origin_allowed(origin: str, host_header: str | None, cors: CorsSpec) -> bool:
    return cors.allows(origin) or same_origin(origin, host_header)


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def admin_body_refused(method: str, content_type: str | None, has_body: bool) -> str | None:
    """Why an admin request's body is refused, or None. Refused: what a page can send cross-origin without
    a preflight, i.e. the CORS-safelisted types (even with an empty body) and a body with no Content-Type."""
    if method in SAFE_METHODS:
        return None
    kind = media_type(content_type or "")
    if kind in SIMPLE_TYPES:
        return f"Content-Type {kind}"
    if has_body and not kind:
        return "a body without Content-Type"
    return None


def check_cross_site(request: web.Request) -> None:
    """Refuse (raise) what a web page must not make the gateway do; first of the guard's checks."""
    rt, opts = request.app[RUNTIME], request.app[OPTIONS]
    server = rt.holder.current.spec.server
    host = request.headers.get("Host")
    if (
        opts.auth == "open"
        and host is not None
        and not host_allowed(host, (opts.host, *server.allowed_hosts))
    ):
        raise PermissionDenied(
            f"host {host_name(host)!r} is not allowed on an open gateway: add it to server.allowed_hosts "
            "in routes.yaml, or use auth: keys"
        )
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, host, server.cors):
        raise PermissionDenied(f"origin {origin!r} is not allowed (server.cors.origins in routes.yaml)")
    if request.path.startswith("/admin/"):
        why = admin_body_refused(request.method, request.headers.get("Content-Type"), request.body_exists)
        if why is not None:
            raise UnsupportedMediaType(
                f"admin endpoints take a JSON body (Content-Type: application/json), not {why}"
            )
