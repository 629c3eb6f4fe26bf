"""Wire the shared state (state/) into a running gateway: limits, health, metrics, start and stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from faregate.accounting.limits import Limits
from faregate.pipeline.runtime import Runtime
from faregate.server.appkeys import RUNTIME
from faregate.state.open import SharedState, open_state, state_url


def attach(runtime: Runtime, url: str | None) -> SharedState:
    """Put `runtime`'s limits and channel health on the state at `url` (None: this process's memory)."""
    accounts = runtime.accounts
    shared = open_state(url, accounts.limits if accounts else Limits(), runtime.health)
    if accounts is not None:
        accounts.state = shared.limits
    collector = shared.collector()
    if collector is not None:
        runtime.prom.registry.register(collector)
    runtime.shared = shared
    return shared


def attach_configured(runtime: Runtime, env: Mapping[str, str]) -> SharedState:
    return attach(runtime, state_url(runtime.holder.current.spec.state, env))


def describe(runtime: Runtime) -> dict[str, Any]:
    return runtime.shared.describe() if runtime.shared else {"kind": "memory", "where": "memory", "up": True}


async def shared_state(app: web.Application) -> AsyncIterator[None]:
    """Start syncing with the fleet; on stop (after the handlers in flight) write their settlements."""
    shared = app[RUNTIME].shared
    if shared is None:
        yield
        return
    await shared.start()
    yield
    await shared.stop()
