"""One catalog sync for the fleet: two instances on one Redis and one PostgreSQL asked to sync at once run
it once; a price change one of them syncs is served by both within seconds (issue 14, "Must show")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.db import open_db
from tests.scale.fleet import Fleet, get
from tests.server.accounting_fixtures import ADMIN_KEY

pytestmark = pytest.mark.e2e
MODEL = "qwen/qwen3.5-9b"
QWEN = "Qwen/Qwen3.5-9B"  # together's upstream id of it


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


async def sync(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.post(
        url + "/admin/catalog/sync",
        json={"provider": "together"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def together_input_price(http: aiohttp.ClientSession, url: str) -> Decimal:
    """USD per 1M prompt tokens of MODEL's together offering, as this instance serves it."""
    doc = await get(http, url, ADMIN_KEY, "/v1/models/" + MODEL)
    (offer,) = [o for o in doc["offerings"] if o["provider"] == "together"]
    return Decimal(str(offer["pricing"]["prompt"])) * 10**6


async def syncs_that_overlap(http: aiohttp.ClientSession, fleet: Fleet, a: str, b: str) -> list[Any]:
    """Both instances asked to sync at once, the first to take the fleet's lock held in its fetch (its
    simulated together hangs) until the other has answered: the two runs overlap however slow the machine
    is, so the other must skip (were the first let finish at once, a late second could take the lock after
    it and run again)."""
    sims = [m.sim_origin() for m in fleet.members]
    for sim in sims:
        async with http.delete(f"{sim}/_sim/received") as resp:
            assert resp.status == 200, await resp.text()
        async with http.post(f"{sim}/_sim/together/hang", json={}) as resp:
            assert resp.status == 200, await resp.text()
    runs = [asyncio.ensure_future(sync(http, url)) for url in (a, b)]
    try:
        while not (fetching := [sim for sim in sims if (await together_requests(http, sim)) > 0]):
            assert not all(r.done() for r in runs), [r.result() for r in runs]  # neither holds the lock
            await asyncio.sleep(0.05)
        assert len(fetching) == 1, fetching  # the other is skipping, not fetching: the lock is held
        done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1, [r.result() for r in done]
    finally:
        for sim in sims:
            async with http.post(f"{sim}/_sim/clear", json={"provider": "together"}) as resp:
                assert resp.status == 200, await resp.text()
    return list(await asyncio.gather(*runs))


async def together_requests(http: aiohttp.ClientSession, sim: str) -> int:
    async with http.get(f"{sim}/_sim/received") as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json()).get("together", 0))


async def test_one_sync_for_the_fleet_and_both_serve_its_catalog(
    tmp_path: Path, redis_url: str, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    fleet = Fleet(tmp_path, postgres_url, redis_url)
    try:
        a, b = await fleet.start(2)
        both = await syncs_that_overlap(http, fleet, a, b)
        ran = [r for r in both if r["results"]]
        assert len(ran) == 1 and [r for r in both if r["skipped"]], both  # one ran it, the other skipped
        db = open_db(postgres_url)
        assert [r["n"] for r in db.query("select count(*) n from sync_runs where provider = 'together'")] == [
            1
        ]
        old = await together_input_price(http, b)
        sim_a = fleet.members[0].sim_origin()
        async with http.post(
            f"{sim_a}/_sim/together/price",
            json={"upstream_id": QWEN, "input_price": "0.12", "output_price": "0.2"},
        ) as resp:
            assert resp.status == 200, await resp.text()
        (run,) = (await sync(http, a))["results"]
        assert run["changed"] >= 1
        deadline = time.monotonic() + 60  # a bound against a hang, not a speed: B polls every 2 s
        for url in (a, b):  # A reloaded after its sync; B picks the new catalog up from the store
            while (price := await together_input_price(http, url)) != Decimal("0.12"):
                assert time.monotonic() < deadline, f"{url} still serves {price} (was {old})"
                await asyncio.sleep(0.2)
        await fleet.stop()
    finally:
        fleet.kill()


async def test_each_lock_lets_one_holder_in(tmp_path: Path, redis_url: str, postgres_url: str) -> None:
    import redis.asyncio as aioredis

    from faregate.catalog.sync import FleetLock
    from faregate.server.fleet_sync import FileSyncLock, PgSyncLock, RedisSyncLock

    client = aioredis.Redis.from_url(redis_url.split("?")[0])
    prefix = redis_url.split("prefix=")[1]
    pairs: list[tuple[FleetLock, FleetLock]] = [
        (FileSyncLock(tmp_path / "s.db.sync-lock"), FileSyncLock(tmp_path / "s.db.sync-lock")),
        (RedisSyncLock(client, prefix), RedisSyncLock(client, prefix)),
        (PgSyncLock(postgres_url), PgSyncLock(postgres_url)),
    ]
    for first, second in pairs:
        async with first.hold() as got:
            assert got
            async with second.hold() as also:
                assert not also  # another instance skips its run
        async with second.hold() as after:
            assert after  # released when the holder's run ends
    await client.aclose()
