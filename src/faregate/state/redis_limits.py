"""Rate windows and budgets in Redis, shared by every worker and instance.

Every admission is one Lua script, so Redis runs its checks and its reservation as one atomic step: two
requests on two instances can never both take the last of a budget or of a minute's requests.

- rpm/tpm: a hash per key and limit of 1-second buckets (`second -> amount`). A bucket counts until a
  full 60 s have passed since its end, so a window never holds more than the limit (a request ages out up
  to a second late: never early).
- budgets: `spent` (integer picodollars, as the usage log stores them; INCRBY keeps it exact) and a hash
  of reservations `ticket -> "picodollars:expiry_ms"`. A reservation whose instance died expires after
  `RESERVATION_TTL_S` instead of holding the budget forever. Missing `spent` (a new or emptied Redis) is
  seeded from this process's view of the store.
- time is Redis's own clock (`TIME`), never an instance's, so clocks that differ between machines
  cannot widen a window.

When Redis is unreachable (status.py): keys with a budget are refused with 503 (money spent cannot be
taken back, so the gateway fails closed); rate limits fall back to this process's windows (each instance
then enforces a key's limit on its own: open towards the fleet, never unlimited). Settlements that could
not be written are kept and written when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from faregate.accounting.budget import AnswerBound
from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Limits, Ticket, _reservation
from faregate.accounting.usage_log import from_pusd, to_pusd
from faregate.errors import InsufficientCredits, RateLimited
from faregate.state.base import StateUnavailable
from faregate.state.status import Reachability

log = logging.getLogger("faregate.state")
RESERVATION_TTL_S = 3600  # longer than any request may take (server.request_timeout_s, streams)
ADMIT_TRIES = 3  # a budget that must lower the answer bound asks again with the lowered reservation

# KEYS: requests window, tokens window, spent, reservations
# ARGV: rpm (-1: none), tpm (-1: none), prompt tokens, budget pusd (-1: none), reserve pusd, ticket,
#       reservation ttl ms, seed for a missing spent (pusd)
# → {0, left pusd} admitted | {1, wait ms} rpm | {2, wait ms or -1} tpm | {3, left pusd} budget short
ADMIT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sec = tonumber(t[1])
local function window(key)
  local all = redis.call('HGETALL', key)
  local total, buckets = 0, {}
  for i = 1, #all, 2 do
    local b, v = tonumber(all[i]), tonumber(all[i + 1])
    if b <= sec - 61 then
      redis.call('HDEL', key, all[i])
    else
      total = total + v
      buckets[#buckets + 1] = {b, v}
    end
  end
  return total, buckets
end
local function wait_ms(buckets, excess)
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, bv in ipairs(buckets) do
    freed = freed + bv[2]
    if freed >= excess then return math.max(0, (bv[1] + 61) * 1000 - now_ms) end
  end
  return 60000
end
local rpm, tpm, prompt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local budget, reserve = tonumber(ARGV[4]), tonumber(ARGV[5])
if rpm >= 0 then
  local total, buckets = window(KEYS[1])
  if total + 1 > rpm then return {1, wait_ms(buckets, total + 1 - rpm)} end
end
if tpm >= 0 then
  local total, buckets = window(KEYS[2])
  if total + prompt > tpm then
    if prompt > tpm then return {2, -1} end
    return {2, wait_ms(buckets, total + prompt - tpm)}
  end
end
local left = 0
if budget >= 0 then
  local spent = redis.call('GET', KEYS[3])
  if not spent then
    redis.call('SET', KEYS[3], ARGV[8])
    spent = ARGV[8]
  end
  local reserved = 0
  local held = redis.call('HGETALL', KEYS[4])
  for i = 1, #held, 2 do
    local sep = string.find(held[i + 1], ':', 1, true)
    local amount, expires = tonumber(string.sub(held[i + 1], 1, sep - 1)), tonumber(string.sub(held[i + 1], sep + 1))
    if expires <= now_ms then
      redis.call('HDEL', KEYS[4], held[i])
    else
      reserved = reserved + amount
    end
  end
  left = budget - tonumber(spent) - reserved
  if reserve > left then return {3, left} end
  if reserve > 0 then
    local ttl = tonumber(ARGV[7])
    redis.call('HSET', KEYS[4], ARGV[6], ARGV[5] .. ':' .. tostring(now_ms + ttl))
    redis.call('PEXPIRE', KEYS[4], ttl)
  end
end
redis.call('HINCRBY', KEYS[1], sec, 1)
redis.call('PEXPIRE', KEYS[1], 125000)
if prompt > 0 then
  redis.call('HINCRBY', KEYS[2], sec, prompt)
  redis.call('PEXPIRE', KEYS[2], 125000)
end
return {0, left}
"""

# KEYS: tokens window, spent, reservations. ARGV: ticket, cost pusd, completion tokens, seed for spent
SETTLE = """
redis.call('HDEL', KEYS[3], ARGV[1])
local cost, completion = tonumber(ARGV[2]), tonumber(ARGV[3])
if cost ~= 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[4]) end
  redis.call('INCRBY', KEYS[2], ARGV[2])
end
if completion > 0 then
  local sec = tonumber(redis.call('TIME')[1])
  redis.call('HINCRBY', KEYS[1], sec, completion)
  redis.call('PEXPIRE', KEYS[1], 125000)
end
return 1
"""


def _ceil_pusd(amount: Decimal) -> int:
    return math.ceil(amount * Decimal("1e12"))


class RedisLimits:
    """Implements `LimitState`. `local` is this process's `Limits`: its spend per key (read from the
    store at start) seeds Redis, and its windows serve while Redis is down."""

    shared = True

    def __init__(self, client: aioredis.Redis, prefix: str, reach: Reachability, local: Limits) -> None:
        self.client, self.prefix, self.reach, self.local = client, prefix, reach, local
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._pending: set[asyncio.Task[None]] = set()
        self._unsettled: list[tuple[Ticket, Decimal, int]] = []  # settlements waiting for Redis

    def _keys(self, key_id: str) -> tuple[str, str, str, str]:
        p = f"{self.prefix}k:{{{key_id}}}:"  # one hash slot per key (Redis Cluster)
        return p + "rpm", p + "tpm", p + "spent", p + "res"

    async def admit(self, key: ApiKey, now: float, *, prompt_tokens: int, bound: AnswerBound) -> Ticket:
        if key.rpm is None and key.tpm is None and key.budget_usd is None:
            return Ticket(key.id, Decimal(0), prompt_tokens)  # nothing to check, nothing to share
        if not self.reach.should_try():
            return self._degraded(key, now, prompt_tokens, bound)
        rpm_k, tpm_k, spent_k, res_k = self._keys(key.id)
        ref = os.urandom(8).hex()
        reserve = bound.worst_usd() if key.budget_usd is not None else Decimal(0)
        lowered: int | None = None
        for _ in range(ADMIT_TRIES):
            args: list[bytes | str | int | float] = [
                -1 if key.rpm is None else key.rpm,
                -1 if key.tpm is None else key.tpm,
                prompt_tokens,
                -1 if key.budget_usd is None else to_pusd(key.budget_usd),
                _ceil_pusd(reserve),
                ref,
                RESERVATION_TTL_S * 1000,
                to_pusd(self.local.spent_usd.get(key.id, Decimal(0))),
            ]
            try:
                code, value = await self._call(self._admit(keys=[rpm_k, tpm_k, spent_k, res_k], args=args))
            except RedisError as e:
                self.reach.failed(e)
                return self._degraded(key, now, prompt_tokens, bound)
            if code == 0:
                left = from_pusd(value).normalize()
                return Ticket(
                    key.id,
                    reserve,
                    prompt_tokens,
                    max_tokens=lowered,
                    left_usd=left if lowered else None,
                    ref=ref,
                )
            if code == 1:
                raise RateLimited(
                    f"rate limit: {key.rpm} requests per minute for this key",
                    retry_after_s=math.ceil(int(value) / 1000),
                )
            if code == 2:
                if int(value) < 0:
                    raise RateLimited(
                        f"this request's {prompt_tokens} prompt tokens exceed the key's {key.tpm} tokens per minute",
                        retry_after_s=60,
                    )
                raise RateLimited(
                    f"rate limit: {key.tpm} tokens per minute for this key",
                    retry_after_s=math.ceil(int(value) / 1000),
                )
            assert key.budget_usd is not None
            # Short of budget: lower the answer bound to what is left (or refuse), and ask again with that.
            left = from_pusd(value).normalize()
            reserve, lowered = _reservation(key.budget_usd, left, None, bound)  # or raises
        raise InsufficientCredits("budget exhausted: other requests hold what is left of it")

    async def _call(self, aw: Awaitable[Any]) -> tuple[int, int]:
        result = await aw
        if self.reach.ok():
            self._replay()
        return int(result[0]), int(result[1])

    def _degraded(self, key: ApiKey, now: float, prompt_tokens: int, bound: AnswerBound) -> Ticket:
        if key.budget_usd is not None:
            raise StateUnavailable(
                "the shared state (Redis) is unreachable, so this key's budget cannot be checked; try again"
                " shortly",
                headers={"Retry-After": "2"},
            )
        self.reach.degraded += 1
        return self.local.admit(key, now, prompt_tokens=prompt_tokens, bound=bound)

    def settle(self, ticket: Ticket, now: float, *, cost_usd: Decimal, completion_tokens: int) -> None:
        if ticket.settled:
            return
        if ticket.ref is None:  # admitted by this process alone (no limits, or Redis was down)
            self.local.settle(ticket, now, cost_usd=cost_usd, completion_tokens=completion_tokens)
            return
        ticket.settled = True
        if cost_usd:
            self.local.spent_usd[ticket.key_id] = (
                self.local.spent_usd.get(ticket.key_id, Decimal(0)) + cost_usd
            )
        task = asyncio.get_running_loop().create_task(self._write(ticket, cost_usd, completion_tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, ticket: Ticket, cost_usd: Decimal, completion_tokens: int) -> None:
        assert ticket.ref is not None
        _, tpm_k, spent_k, res_k = self._keys(ticket.key_id)
        seed = self.local.spent_usd.get(ticket.key_id, Decimal(0)) - cost_usd
        try:
            await self._settle(
                keys=[tpm_k, spent_k, res_k],
                args=[ticket.ref, to_pusd(cost_usd), completion_tokens, to_pusd(seed)],
            )
        except RedisError as e:
            self.reach.failed(e)
            self._unsettled.append((ticket, cost_usd, completion_tokens))
            return
        if self.reach.ok():
            self._replay()

    def _replay(self) -> None:
        todo, self._unsettled = self._unsettled, []
        if todo:
            log.info("shared state: writing %d settlements kept while Redis was down", len(todo))
        for ticket, cost, completion in todo:
            task = asyncio.get_running_loop().create_task(self._write(ticket, cost, completion))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def spent_usd(self, key_id: str) -> Decimal:
        if self.reach.up:
            try:
                value = await self.client.get(self._keys(key_id)[2])
            except RedisError as e:
                self.reach.failed(e)
            else:
                if value is not None:
                    return from_pusd(int(value))
        return self.local.spent_usd.get(key_id, Decimal(0))

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
