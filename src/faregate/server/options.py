"""How this process serves: what comes from the command line and settings rather than routes.yaml."""

from __future__ import annotations

from dataclasses import field

from faregate.server.workers import WorkerIdentity
from faregate.values import frozen


@frozen
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    auth: str = "open"  # "open" | "keys"
    admin_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = 4 * 1024 * 1024  # fixed at start-up: a reload does not change it
    watch_interval_s: float = 1.0  # 0 turns the file watch off
    simulated: bool = False
    state: str | None = None  # routes.yaml's `state:` (env FAREGATE_STATE wins): known before the table is
    worker: WorkerIdentity = field(
        default_factory=WorkerIdentity
    )  # which worker of `serve --workers N` this process is
