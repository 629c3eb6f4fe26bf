"""The gateway's runtime: the loaded state (one immutable `Loaded`, swapped whole by a reload) and the
mutable objects that outlive a reload: channel health, the token counter, accounts, the recorder.

Mutable on purpose and in one place: the swap (`LoadedHolder`), channel health, the reload lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

from faregate.accounting.prometheus import ObservedRecorder, PromMetrics
from faregate.accounting.record import MemoryRecorder, Recorder, ScrubbingRecorder
from faregate.accounting.response_store import ResponseStore
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.sync import SyncService
from faregate.config.load import ConfigIssue
from faregate.db import open_db
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.load import Loaded, LoadedHolder, Sources, load
from faregate.routing.health import Health
from faregate.secrets import Scrubber
from faregate.state.open import SharedState

__all__ = ["RequestIds", "Runtime", "Sources"]
log = logging.getLogger("faregate.reload")


class RequestIds:
    """Request ids: 32 hex digits, like a uuid's, ordered by time as a UUIDv7 is: 48 bits of the unix
    time in milliseconds, then 80 bits from the OS's CSPRNG (unpredictable: a stored response is fetched
    by its id), read 256 ids' worth at a time: one system call per 256 requests. Time first, so the usage
    log's primary key grows at its end instead of touching a random index page per insert (on a store of
    200,000 rows a random id made a row's commit cost three times as much)."""

    __slots__ = ("_at", "_pool")
    BATCH = 256
    RANDOM_BYTES = 10

    def __init__(self) -> None:
        self._pool, self._at = b"", 0

    def new(self) -> str:
        at, n = self._at, self.RANDOM_BYTES
        if at >= len(self._pool):
            self._pool, at = os.urandom(n * self.BATCH), 0
        self._at = at + n
        return f"{time.time_ns() // 1_000_000:012x}{self._pool[at : at + n].hex()}"


class Runtime:
    """`loaded` None: a server that opened its port first and loads its table now (`install` finishes the
    start; `ready` is set then, and a request that came earlier waits for it)."""

    def __init__(
        self,
        sources: Sources,
        loaded: Loaded | None,
        *,
        counter: TokenCounter | None = None,
        recorder: Recorder | None = None,
        accounts: Accounts | None = None,
        simulated: bool = False,
    ) -> None:
        self.sources = sources
        self.holder = LoadedHolder(loaded)  # read `holder.current` once per request
        self.ready = asyncio.Event()
        self.start_error: str | None = None  # why the first table could not be built (set with `ready`)
        self.health = Health()
        self.counter = counter or TokenCounter()
        self.accounts = accounts
        self.prom = PromMetrics(self.health)
        self.extra_secrets: tuple[str, ...] = ()  # e.g. the admin key, set by create_app
        self.scrubber = self._scrubber(loaded)
        inner: Recorder = recorder or (accounts.usage if accounts else MemoryRecorder())
        scrubbed = ScrubbingRecorder(inner, lambda: self.scrubber)
        self.recorder: Recorder = ObservedRecorder(scrubbed, self.prom)
        self.simulated = simulated
        # Stored responses live in the usage store; with no store (tests, a bare demo), in memory.
        self.responses = accounts.responses if accounts else ResponseStore(open_db(":memory:"))
        self.reload_lock = asyncio.Lock()
        self.rng = (
            random.Random()
        )  # weighted strategies draw from this (made once: seeding per request is slow)
        self.ids = RequestIds()
        self.last_issues: list[ConfigIssue] = []
        self.catalog_sync: SyncService | None = None  # set by server/catalog_admin.py while serving
        self.shared: SharedState | None = None  # shared state (Redis), set by server/shared_state.py
        if loaded is not None:
            self.install(loaded)

    def install(self, loaded: Loaded, sources: Sources | None = None) -> None:
        """The first loaded state (and the sources it came from, when they changed since construction,
        as the demo's simulator URLs do): settings of the objects that outlive a reload, then ready."""
        self.sources = sources or self.sources
        self._swap(loaded)
        self.ready.set()

    def failed_to_start(self, why: str) -> None:
        """The first table cannot be built: the requests waiting for it are answered 503 at once."""
        self.start_error = why
        self.ready.set()

    def _swap(self, loaded: Loaded) -> None:
        """Settings of the objects that outlive a reload, then the loaded state in one assignment, and the
        scrubber that knows its provider keys."""
        self._configure(loaded)
        self.holder.current = loaded
        self.scrubber = self._scrubber(loaded)

    def _configure(self, loaded: Loaded) -> None:
        self.health.cooldown_s = loaded.spec.server.cooldown_s
        self.health.max_retry_after_s = loaded.spec.server.max_retry_after_s
        self.responses.retention_s = loaded.spec.responses_retention_s

    def log_warnings(self) -> None:
        """What the catalog says about routes.yaml (retirements, price drift): at start-up and after
        every reload, which every sync that changes the catalog triggers."""
        for w in self.holder.current.warnings:
            log.warning("%s", w)

    def _scrubber(self, loaded: Loaded | None) -> Scrubber:
        """Every provider key `loaded` configures (of active providers), and the extra secrets."""
        channels = loaded.table.channels.values() if loaded is not None else ()
        keys = {ch.api_key for ch in channels if ch.api_key}
        return Scrubber([*keys, *self.extra_secrets])

    def add_secrets(self, *secrets: str | None) -> None:
        self.extra_secrets = tuple({*self.extra_secrets, *(s for s in secrets if s)})
        self.scrubber = self._scrubber(getattr(self.holder, "current", None))  # unset while it loads

    @classmethod
    def from_sources(cls, sources: Sources, **kw: object) -> tuple[Runtime | None, list[ConfigIssue]]:
        loaded, issues, _ = load(sources)
        if loaded is None:
            return None, issues
        return cls(sources, loaded, **kw), []  # type: ignore[arg-type]

    async def reload(self) -> list[ConfigIssue]:
        """Compile off to the side, swap with one assignment. A bad file keeps the old table serving."""
        await self.ready.wait()  # a reload asked for while the first table loads: after it
        async with self.reload_lock:
            generation = self.holder.current.generation + 1
            loaded, issues, _ = await asyncio.to_thread(load, self.sources, generation=generation)
            self.last_issues = issues
            if loaded is None:
                log.warning("reload rejected, old table keeps serving: %s", "; ".join(map(str, issues)))
                return issues
            self._swap(loaded)
            log.info("reloaded routes: generation %d", generation)
            self.log_warnings()
            if self.accounts is not None:
                await self.accounts.usage.aflush()
            return []
