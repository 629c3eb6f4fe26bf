"""One catalog sync for the fleet, and every instance on the catalog it wrote.

The lock (whichever the deployment already has): a PostgreSQL advisory lock when the store is
PostgreSQL (held by a session of its own for the run, released when it ends or its connection drops);
else a Redis lock with an expiry when the state is Redis (redis-py's `Lock`: a crashed holder frees it
after `LOCK_TTL_S`); else an exclusive `flock` on a file beside the SQLite store (the workers of one
machine). An instance that does not get it skips that run.

Pick-up: every instance reads the id of the store's latest catalog-changing sync run every `PICKUP_S`
and reloads when it moves, so a sync run by one is served by all within seconds. (The instance that ran
it has reloaded already; its poll reloads once more: cheap, and simpler than telling the two apart.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from faregate.catalog.store import latest_change
from faregate.catalog.sync import FleetLock
from faregate.db import is_postgres, location, open_db, store_errors
from faregate.pipeline.runtime import Runtime
from faregate.server.appkeys import RUNTIME

if TYPE_CHECKING:
    import psycopg

# psycopg and redis are imported by the lock that uses them: a gateway on SQLite and in-process state
# starts without loading either.
log = logging.getLogger("faregate.catalog.sync")
PICKUP_S = 2.0
LOCK_TTL_S = 900  # longer than any sync takes; a holder that died frees the Redis lock after it
ADVISORY_KEY = 0x73796E63  # "sync"
T = TypeVar("T")


class PgSyncLock:
    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        import psycopg

        try:
            conn = await asyncio.to_thread(_connect, self.url)
        except psycopg.Error as e:
            log.warning("catalog sync: cannot take the PostgreSQL lock (%s); syncing without it", e)
            yield True
            return
        try:
            row = await asyncio.to_thread(_try_advisory, conn)
            yield bool(row and row[0])
        finally:
            await asyncio.to_thread(conn.close)  # ends the session: the lock goes with it


def _connect(url: str) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _try_advisory(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
    return conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()


class RedisSyncLock:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.name = client, prefix + "catalog-sync"

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        from redis.exceptions import RedisError

        lock = self.client.lock(self.name, timeout=LOCK_TTL_S, blocking=False)
        try:
            got = bool(await lock.acquire(blocking=False))
        except RedisError as e:
            log.warning("catalog sync: Redis unreachable for the lock (%s); syncing without it", e)
            yield True
            return
        try:
            yield got
        finally:
            if got:
                with contextlib.suppress(RedisError):
                    await lock.release()


class FileSyncLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one process per store there anyway
            yield True
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def lock_for(rt: Runtime) -> FleetLock | None:
    store = rt.sources.store
    if store is None:
        return None
    if is_postgres(store):
        return PgSyncLock(location(store))
    shared = rt.shared
    if shared is not None and shared.client is not None and shared.prefix is not None:
        return RedisSyncLock(shared.client, shared.prefix)
    return FileSyncLock(Path(f"{store}.sync-lock"))


async def catalog_pickup(app: web.Application) -> AsyncIterator[None]:
    """Reload when another instance's sync changed the catalog in the shared store."""
    rt = app[RUNTIME]
    if rt.sources.store is None:
        yield
        return
    store = rt.sources.store
    task = asyncio.create_task(_poll(rt, store), name="faregate-catalog-pickup")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _poll(rt: Runtime, store: Path) -> None:
    db = None
    seen: int | None = None
    try:
        while True:
            try:
                if db is None:
                    db = await _in_thread(open_db, store)
                latest = await _in_thread(latest_change, db)
            except store_errors() as e:
                log.debug("catalog pick-up: store not readable yet (%s)", e)
                latest = None
                # Nothing read yet (no sync has made the tables): the first run that shows up is news.
                seen = 0 if seen is None else seen
            if latest is not None:
                if seen is not None and latest != seen:
                    log.info("catalog changed in the store (run %d): reloading", latest)
                    await rt.reload()
                seen = latest
            await asyncio.sleep(PICKUP_S)
    finally:
        if db is not None:
            await asyncio.to_thread(db.close)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn` in a thread, and a cancel (the pick-up stopping) raised only once that thread has finished: a
    thread cannot be stopped, and closing the connection it is querying from another thread is undefined
    behaviour in SQLite (a crash at shutdown)."""
    running = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved: its outcome no longer matters
        raise
