"""How long and how much an upstream call may take: routes.yaml's `server` limits as one frozen value.

Part of the loaded state (`Loaded.bounds`), so a request keeps the limits of the table it started on.
"""

from __future__ import annotations

from faregate.config.model import ServerSpec
from faregate.values import frozen


@frozen
class Bounds:
    """Connect and read timeouts (the upstream client's, `faregate.upstream`), and the total deadlines and
    size limits the plan walk enforces itself (README "Limits and timeouts")."""

    connect_s: float | None = None
    read_s: float | None = 60.0  # between two chunks
    first_byte_s: float = 60.0
    total_s: float = 600.0
    stream_idle_s: float = 60.0
    stream_total_s: float = 1800.0
    request_s: float = 900.0
    max_response_bytes: int = 32 * 1024 * 1024
    max_event_bytes: int = 8 * 1024 * 1024


def bounds_of(s: ServerSpec) -> Bounds:
    return Bounds(
        connect_s=s.connect_timeout_s,
        read_s=s.read_timeout_s,
        first_byte_s=s.first_byte_timeout_s,
        total_s=s.total_timeout_s,
        stream_idle_s=s.stream_idle_timeout_s,
        stream_total_s=s.stream_total_timeout_s,
        request_s=s.request_timeout_s,
        max_response_bytes=s.max_response_bytes,
        max_event_bytes=s.max_event_bytes,
    )
