"""Choose the shared state from its URL: none or `memory` → this process; `redis://…` → Redis.

The Redis client and the modules built on it are imported only when a `redis://` URL is opened: a
gateway on in-process state never pays their import time or memory at start-up."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faregate.accounting.limits import Limits
from faregate.routing.health import Health
from faregate.state.base import LimitState, LocalState
from faregate.state.status import Reachability, ReachabilityCollector

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from faregate.state.redis_health import RedisHealthSync

ENV = "FAREGATE_STATE"


def state_url(configured: str | None, env: Mapping[str, str]) -> str | None:
    """Env `FAREGATE_STATE` over routes.yaml's `state:`; None or `memory`: in-process."""
    url = env.get(ENV) or configured
    return None if not url or url == "memory" else url


@dataclass
class SharedState:
    limits: LimitState
    where: str = "memory"
    client: aioredis.Redis | None = None
    health_sync: RedisHealthSync | None = None
    reach: Reachability | None = None
    prefix: str | None = None  # every Redis key's (state/connect.py)

    @property
    def shared(self) -> bool:
        return self.client is not None

    def collector(self) -> ReachabilityCollector | None:
        return ReachabilityCollector(self.reach) if self.reach is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "redis" if self.shared else "memory",
            "where": self.where,
            "up": self.reach.up if self.reach else True,
        }

    async def start(self) -> None:
        if self.health_sync is not None:
            self.health_sync.start()

    async def stop(self) -> None:
        """After the handlers in flight: write their settlements, stop syncing, close the client."""
        await self.limits.drain()
        if self.health_sync is not None:
            await self.health_sync.stop()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


def open_state(url: str | None, local: Limits, health: Health) -> SharedState:
    if url is None:
        return SharedState(LocalState(local))
    from faregate.state.connect import connect, parse_target
    from faregate.state.redis_health import RedisHealthSync
    from faregate.state.redis_limits import RedisLimits

    target = parse_target(url)
    client = connect(target)
    reach = Reachability(target.shown)
    return SharedState(
        RedisLimits(client, target.prefix, reach, local),
        where=target.shown,
        client=client,
        health_sync=RedisHealthSync(client, target.prefix, reach, health),
        reach=reach,
        prefix=target.prefix,
    )
