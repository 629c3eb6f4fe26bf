"""`SyncService`: refresh the catalog from provider listing endpoints, record each run, reload on a change.

One run at a time per provider; each page has a timeout; a failed or partial run backs off exponentially
(min(interval, base * 2^failures)); an APScheduler job runs every provider on the interval, with jitter.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiohttp

from faregate.catalog.listing.fetch import Fetched, ListingError, fetch_listing
from faregate.catalog.model import Offering, ProviderInfo
from faregate.catalog.reconcile import COUNTED_AS_CHANGED, Change, OfferingRow, elsewhere_index, reconcile
from faregate.catalog.store import CatalogStore, SyncRun, now_iso, rows_by_upstream
from faregate.config.model import Api, Listing
from faregate.db import open_db
from faregate.secrets import Scrubber
from faregate.values import frozen

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("faregate.catalog.sync")

DEFAULT_LISTING: Final[Mapping[Api, Listing]] = MappingProxyType(
    {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "openai-responses": "openai"}
)
JOB_ID = "catalog-sync"
FIRST_RUN_DELAY_S = 10.0  # after start-up, when the last successful sync is older than the interval
MAX_JITTER_S = 300.0


class FleetLock(Protocol):
    """Only one instance of a fleet syncs at a time (server/fleet_sync.py): `hold()` yields whether this
    one got the lock; one that did not skips the run (the holder's result reaches it through the store)."""

    def hold(self) -> AbstractAsyncContextManager[bool]: ...


class UnknownSyncProvider(KeyError):
    """Not a provider this gateway syncs (unknown, disabled, or not in catalog.sync_providers)."""


@frozen
class SyncTarget:
    info: ProviderInfo  # base_url as called (the demo points it at the simulator)
    listing: Listing
    api_key: str | None
    known: tuple[Offering, ...]  # the provider's offerings as merged now, retired ones included


@frozen
class SyncSnapshot:
    """What one sync reads from its owner: targets, every offering (to name new models), settings."""

    targets: Mapping[str, SyncTarget]
    offerings: tuple[Offering, ...]
    interval_s: float
    timeout_s: float


def build_snapshot(
    providers: Mapping[str, ProviderInfo],
    offerings: Sequence[Offering],
    env: Mapping[str, str],
    *,
    only: Sequence[str] | None,
    inactive: Set[str],
    interval_s: float,
    timeout_s: float,
) -> SyncSnapshot:
    """Targets: the providers in `only` (routes.yaml catalog.sync_providers), else every active one."""
    names = (
        [n for n in only if n in providers]
        if only is not None
        else [n for n in providers if n not in inactive]
    )
    targets = {
        n: SyncTarget(
            providers[n],
            providers[n].listing or DEFAULT_LISTING[providers[n].api],
            next((env[v] for v in providers[n].api_key_env if env.get(v)), None),
            tuple(o for o in offerings if o.provider == n),
        )
        for n in names
    }
    return SyncSnapshot(MappingProxyType(targets), tuple(offerings), interval_s, timeout_s)


@frozen
class SyncResult:
    run: SyncRun
    changes: tuple[Change, ...] = ()

    @property
    def changed_anything(self) -> bool:
        return bool(self.changes)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.run.as_json(),
            "changes": [
                {
                    "change": c.kind,
                    "upstream_id": c.upstream_id,
                    "model": c.model_id,
                    "old": c.old,
                    "new": c.new,
                }
                for c in self.changes
            ],
        }


@dataclass(slots=True)
class Backoff:
    failures: int = 0
    retry_at: float = 0.0  # unix time; 0: not backing off


class SyncService:
    def __init__(
        self,
        store: Path,
        session: aiohttp.ClientSession,
        snapshot: Callable[[], SyncSnapshot],
        *,
        on_change: Callable[[], Awaitable[Sequence[object]]] | None = None,
        page_size: int | None = None,
        max_pages: int = 50,
        backoff_base_s: float = 60.0,
        fleet_lock: FleetLock | None = None,
    ) -> None:
        self.fleet_lock = fleet_lock
        self.skipped = 0  # runs left to another instance that held the fleet's sync lock
        self.store = store
        self.session = session
        self.snapshot = snapshot
        self.on_change = on_change
        self.page_size = page_size
        self.max_pages = max_pages
        self.backoff_base_s = backoff_base_s
        self.scheduler: AsyncIOScheduler | None = None
        self.reload_errors: list[str] = []  # from the last reload a sync triggered
        self._locks: dict[str, asyncio.Lock] = {}
        self._db_lock = threading.Lock()
        self._backoff: dict[str, Backoff] = {}
        self.ticks = 0  # scheduled runs so far

    @contextmanager
    def _open(self) -> Iterator[CatalogStore]:
        """The store, one user at a time: runs of several providers finish in threads concurrently."""
        with self._db_lock:
            db = open_db(self.store)
            try:
                yield CatalogStore(db)
            finally:
                db.close()

    # -- running -------------------------------------------------------------------------------------

    async def sync(self, provider: str | None = None) -> list[SyncResult]:
        """Sync one provider or every target; then reload once if anything changed."""
        snap = self.snapshot()
        if provider is not None and provider not in snap.targets:
            raise UnknownSyncProvider(provider)
        return await self._sync(snap, [provider] if provider else sorted(snap.targets))

    async def _sync(self, snap: SyncSnapshot, names: Iterable[str]) -> list[SyncResult]:
        if self.fleet_lock is None:
            return await self._sync_held(snap, names)
        async with self.fleet_lock.hold() as held:
            if not held:
                self.skipped += 1
                log.info("catalog sync skipped: another instance of the fleet is running one")
                return []
            return await self._sync_held(snap, names)

    async def _sync_held(self, snap: SyncSnapshot, names: Iterable[str]) -> list[SyncResult]:
        results = list(await asyncio.gather(*(self._run(snap, n) for n in names)))
        if any(r.changed_anything for r in results) and self.on_change is not None:
            self.reload_errors = [str(i) for i in await self.on_change()]
            if self.reload_errors:
                log.warning("catalog changed but the reload was rejected: %s", "; ".join(self.reload_errors))
        return results

    async def _run(self, snap: SyncSnapshot, name: str) -> SyncResult:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            target, started = snap.targets[name], now_iso()
            # What a listing endpoint answers is logged, stored in sync_runs and shown to the admin:
            # never with the key it was sent (nor any key shape).
            scrub = Scrubber(t.api_key for t in snap.targets.values()).scrub
            try:
                fetched = await fetch_listing(
                    self.session,
                    target.listing,
                    target.info.base_url,
                    target.api_key,
                    timeout_s=snap.timeout_s,
                    page_size=self.page_size,
                    max_pages=self.max_pages,
                )
                if fetched.error:
                    fetched = replace(fetched, error=scrub(fetched.error))
                result = await asyncio.to_thread(self._commit, snap, target, fetched, started)
            except ListingError as e:
                result = await asyncio.to_thread(self._failed, name, started, scrub(str(e)))
            except Exception as e:  # the store or a bug: recorded, never raised into the scheduler
                why = scrub(f"{type(e).__name__}: {e}")  # the traceback could quote a key: not logged
                log.error("catalog sync of %s failed: %s", name, why)
                result = await asyncio.to_thread(self._failed, name, started, why)
            self._note(name, result.run.status, snap.interval_s)
            log.info(
                "catalog sync %s: %s (%d listed, %d added, %d changed, %d retired)%s",
                name,
                result.run.status,
                result.run.listed,
                result.run.added,
                result.run.changed,
                result.run.retired,
                f": {result.run.error}" if result.run.error else "",
            )
            return result

    def _commit(self, snap: SyncSnapshot, target: SyncTarget, fetched: Fetched, started: str) -> SyncResult:
        name = target.info.name
        complete, error = fetched.complete, fetched.error
        if complete and not fetched.models and any(not o.retired for o in target.known):
            complete, error = False, "the listing is empty: nothing retired"
        with self._open() as store:
            finished = now_iso()
            diff = reconcile(
                name,
                target.listing,
                fetched.models,
                complete=complete,
                known=target.known,
                stored=rows_by_upstream(store.offerings(name)),
                current={u: p for (_, u), p in store.current_prices(name).items()},
                elsewhere=elsewhere_index(snap.offerings, name),
                now=finished,
            )
            run = SyncRun(
                name,
                started,
                finished,
                "ok" if complete else "partial",
                len(fetched.models),
                diff.count("added"),
                diff.count(*COUNTED_AS_CHANGED),
                diff.count("retired"),
                error,
                diff.unpriced,
                diff.unmapped,
            )
            run_id = store.commit_sync(name, diff, run)
        return SyncResult(_with_id(run, run_id), diff.changes)

    def _failed(self, name: str, started: str, error: str) -> SyncResult:
        with self._open() as store:
            run = SyncRun(name, started, now_iso(), "failed", error=error)
            return SyncResult(_with_id(run, store.record_run(run)))

    # -- backoff and schedule ------------------------------------------------------------------------

    def _note(self, name: str, status: str, interval_s: float) -> None:
        b = self._backoff.setdefault(name, Backoff())
        if status == "ok":
            b.failures, b.retry_at = 0, 0.0
            self._remove_job(f"{JOB_ID}:retry:{name}")
            return
        delay = backoff_delay(b.failures, self.backoff_base_s, interval_s)
        b.failures += 1
        b.retry_at = time.time() + delay
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.add_job(
                self._retry,
                _date_trigger(datetime.fromtimestamp(b.retry_at, UTC)),
                args=[name],
                id=f"{JOB_ID}:retry:{name}",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    def start(self) -> None:
        """Run every target on the interval (routes.yaml catalog.sync_interval_s); 0 leaves it off."""
        interval = self.snapshot().interval_s
        if interval <= 0 or self.scheduler is not None:
            return
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # only a gateway that syncs loads it
        from apscheduler.triggers.interval import IntervalTrigger

        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        self.scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, MAX_JITTER_S), timezone=UTC),
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=self._first_run(interval),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None

    def _first_run(self, interval: float) -> datetime:
        """Soon after start-up if a target's last good sync is older than the interval, else on time."""
        with self._open() as store:
            last = store.last_ok()
        now = datetime.now(UTC)
        soonest = now + timedelta(seconds=min(interval, FIRST_RUN_DELAY_S))
        names = self.snapshot().targets
        due = [
            datetime.fromisoformat(last[n]) + timedelta(seconds=interval) if n in last else soonest
            for n in names
        ]
        return max(soonest, min(due, default=soonest))

    async def _tick(self) -> None:
        self.ticks += 1
        now = time.time()
        snap = self.snapshot()
        due = [n for n in sorted(snap.targets) if self._backoff.get(n, Backoff()).retry_at <= now]
        await self._sync(snap, due)

    async def _retry(self, name: str) -> None:
        snap = self.snapshot()
        if name in snap.targets:
            await self._sync(snap, [name])

    def _remove_job(self, job_id: str) -> None:
        if self.scheduler is not None and self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    # -- status --------------------------------------------------------------------------------------

    def _read_status(self) -> tuple[dict[str, SyncRun], list[OfferingRow]]:
        with self._open() as store:
            return store.last_runs(), store.offerings()

    async def status(self) -> dict[str, Any]:
        """Last run per provider, counts, backoff and the next scheduled times."""
        snap = self.snapshot()
        runs, rows = await asyncio.to_thread(self._read_status)
        job = self.scheduler.get_job(JOB_ID) if self.scheduler is not None else None
        next_run = job.next_run_time.isoformat() if job is not None and job.next_run_time else None
        providers: dict[str, Any] = {}
        for name in sorted(set(snap.targets) | set(runs)):
            mine = [r for r in rows if r.provider == name]
            b = self._backoff.get(name, Backoff())
            run = runs.get(name)
            providers[name] = {
                "synced": name in snap.targets,
                "running": self._locks.get(name, asyncio.Lock()).locked(),
                "last_run": run.as_json() if run else None,
                "offerings_seen": sum(1 for r in mine if r.model_id and r.retired_at is None),
                "retired": sum(1 for r in mine if r.retired_at is not None),
                "unmapped": sorted(r.upstream_id for r in mine if r.model_id is None),
                "failures": b.failures,
                "next_retry": datetime.fromtimestamp(b.retry_at, UTC).isoformat() if b.retry_at else None,
            }
        return {
            "interval_s": snap.interval_s,
            "scheduled": job is not None,
            "next_run": next_run,
            "reload_errors": list(self.reload_errors),
            "providers": providers,
        }


def backoff_delay(failures: int, base_s: float, interval_s: float) -> float:
    """Seconds until the next try after `failures` earlier consecutive failures: base * 2^failures, capped
    at the interval (when there is one)."""
    delay = base_s * float(2**failures)
    return min(interval_s, delay) if interval_s > 0 else delay


def _with_id(run: SyncRun, run_id: int) -> SyncRun:
    return replace(run, id=run_id)


def _date_trigger(when: datetime) -> Any:
    from apscheduler.triggers.date import DateTrigger

    return DateTrigger(run_date=when)
