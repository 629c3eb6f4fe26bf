"""Channel cooldowns and latency averages shared through Redis.

Planning reads this process's `Health` (no round trip per request); this module keeps it in step with the
fleet. A channel that fails here is written to Redis (a hash `channel -> cooled until`, in Redis's clock)
and published at once, so every instance skips it within a round trip; one that recovers is cleared the
same way. Latency samples are folded into a shared moving average once per `PUSH_S`, and the shared
averages read back then, with the cooldowns (which also catches up an instance that missed a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from faregate.routing.health import Health
from faregate.state.status import Reachability

log = logging.getLogger("faregate.state")
PUSH_S = 1.0

# KEYS: cooldowns hash. ARGV: channel, cooldown ms. → nothing; publishing is the caller's
COOL = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now_ms + tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if until_ms > old then redis.call('HSET', KEYS[1], ARGV[1], until_ms) end
return until_ms - now_ms
"""

# KEYS: cooldowns hash → {channel, ms left, ...} for the channels still cooling (expired ones removed)
COOLING = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local left = tonumber(all[i + 1]) - now_ms
  if left <= 0 then redis.call('HDEL', KEYS[1], all[i]) else
    out[#out + 1] = all[i]
    out[#out + 1] = left
  end
end
return out
"""

# KEYS: latency hash. ARGV: alpha, then channel, mean of new samples, count, ... → nothing
LATENCY = """
local alpha = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  local sample, n = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  local w = 1 - (1 - alpha) ^ n
  local new = sample
  if old >= 0 then new = old + w * (sample - old) end
  redis.call('HSET', KEYS[1], ARGV[i], tostring(new))
end
return 1
"""


class RedisHealthSync:
    """Implements `HealthListener` for `health`; `start()` runs the subscriber and the periodic sync."""

    def __init__(self, client: aioredis.Redis, prefix: str, reach: Reachability, health: Health) -> None:
        self.client, self.reach, self.health = client, reach, health
        self.cool_key, self.latency_key, self.channel = prefix + "cool", prefix + "latency", prefix + "health"
        self._cool = client.register_script(COOL)
        self._cooling = client.register_script(COOLING)
        self._latency = client.register_script(LATENCY)
        self._samples: dict[str, tuple[float, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # --- HealthListener: called by Health on this process's own observations ---

    def cooled(self, channel_id: str, cooldown_s: float) -> None:
        self._spawn(self._publish_cool(channel_id, cooldown_s))

    def recovered(self, channel_id: str, latency_ms: float, was_cooling: bool) -> None:
        total, n = self._samples.get(channel_id, (0.0, 0))
        self._samples[channel_id] = (total + latency_ms, n + 1)
        if was_cooling:
            self._spawn(self._publish_ok(channel_id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_cool(self, channel_id: str, cooldown_s: float) -> None:
        try:
            left = await self._cool(keys=[self.cool_key], args=[channel_id, int(cooldown_s * 1000)])
            await self.client.publish(self.channel, f"cool {int(left)} {channel_id}")
        except RedisError as e:
            self.reach.failed(e)
        else:
            self.reach.ok()

    async def _publish_ok(self, channel_id: str) -> None:
        try:
            await self.client.hdel(self.cool_key, channel_id)
            await self.client.publish(self.channel, f"ok 0 {channel_id}")
        except RedisError as e:
            self.reach.failed(e)

    # --- what others saw ---

    def apply(self, message: str) -> None:
        kind, value, channel_id = message.split(" ", 2)
        if kind == "cool":
            self.health.apply_cooldown(channel_id, time.monotonic() + int(value) / 1000)
        elif kind == "ok":
            self.health.clear_cooldown(channel_id)

    async def sync_once(self) -> None:
        """Push the latency samples taken since the last sync, read back the fleet's figures."""
        samples, self._samples = self._samples, {}
        try:
            if samples:
                args: list[bytes | str | int | float] = [self.health.alpha]
                for cid, (total, n) in samples.items():
                    args += [cid, total / n, n]
                await self._latency(keys=[self.latency_key], args=args)
            latencies = await self.client.hgetall(self.latency_key)
            cooling = await self._cooling(keys=[self.cool_key])
        except RedisError as e:
            self.reach.failed(e)
            return
        self.reach.ok()
        for channel_id, ms in latencies.items():
            self.health.apply_latency(str(channel_id), float(ms))
        now = time.monotonic()
        for i in range(0, len(cooling), 2):
            self.health.apply_cooldown(cooling[i], now + int(cooling[i + 1]) / 1000)

    async def _sync_loop(self) -> None:
        while True:
            await self.sync_once()
            await asyncio.sleep(PUSH_S)

    async def _subscribe_loop(self) -> None:
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and isinstance(msg.get("data"), str):
                        self.apply(msg["data"])
            except (RedisError, OSError) as e:
                self.reach.failed(e)
                await asyncio.sleep(PUSH_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def start(self) -> None:
        self.health.listener = self
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._subscribe_loop(), name="faregate-state-subscribe"),
            loop.create_task(self._sync_loop(), name="faregate-state-sync"),
        ]

    async def stop(self) -> None:
        self.health.listener = None
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops = []
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
