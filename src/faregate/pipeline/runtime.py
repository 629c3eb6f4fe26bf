"""The gateway's runtime state: the current decision table and what a reload needs to make the next one.

Mutable on purpose and in one place: the table swap (`TableHolder`), channel health, the reload lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from faregate.accounting.prometheus import ObservedRecorder, PromMetrics
from faregate.accounting.record import MemoryRecorder, Recorder, ScrubbingRecorder
from faregate.accounting.response_store import ResponseStore
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.overlay import overlay_file
from faregate.catalog.sync import SyncService
from faregate.config.load import ConfigIssue
from faregate.config.model import RoutesSpec
from faregate.db import open_db
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.execute import Bounds
from faregate.pipeline.load import Loaded, load_table
from faregate.routing.health import Health
from faregate.routing.table import TableHolder
from faregate.secrets import Scrubber
from faregate.state.open import SharedState

log = logging.getLogger("faregate.reload")


@dataclass(frozen=True, slots=True)
class Sources:
    """Where a table comes from: re-read on every reload."""

    routes: Path
    catalog_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    base_urls: Mapping[str, str] | None = None  # demo: every provider pointed at the simulator
    store: Path | None = None  # the SQLite store whose synced catalog state overlays catalog/ (None: none)

    def load(self, generation: int) -> tuple[Loaded | None, list[ConfigIssue]]:
        catalog, issues = load_catalog_dir(self.catalog_dir)
        if issues:
            return None, issues
        if self.store is not None:
            try:
                catalog = overlay_file(catalog, self.store)
            except sqlite3.Error as e:
                return None, [ConfigIssue(str(self.store), 1, 1, f"cannot read the synced catalog: {e}")]
        return load_table(self.routes, catalog, self.env, generation=generation, base_urls=self.base_urls)

    def mtimes(self) -> tuple[float, ...]:
        paths = [self.routes, *sorted(self.catalog_dir.glob("*.yaml"))]
        return tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in paths)


class Runtime:
    def __init__(
        self,
        sources: Sources,
        loaded: Loaded,
        *,
        counter: TokenCounter | None = None,
        recorder: Recorder | None = None,
        accounts: Accounts | None = None,
        simulated: bool = False,
    ) -> None:
        self.sources = sources
        self.holder = TableHolder(loaded.table)
        self.spec: RoutesSpec = loaded.spec
        self.loaded = loaded
        self.health = Health(
            cooldown_s=loaded.spec.server.cooldown_s, max_retry_after_s=loaded.spec.server.max_retry_after_s
        )
        self.bounds = upstream_bounds(loaded.spec)
        self.counter = counter or TokenCounter()
        self.accounts = accounts
        self.prom = PromMetrics(self.health)
        self.extra_secrets: tuple[str, ...] = ()  # e.g. the admin key, set by create_app
        self.scrubber = self._scrubber()
        inner: Recorder = recorder or (accounts.usage if accounts else MemoryRecorder())
        scrubbed = ScrubbingRecorder(inner, lambda: self.scrubber)
        self.recorder: Recorder = ObservedRecorder(scrubbed, self.prom)
        self.simulated = simulated
        # Stored responses live in the usage store; with no store (tests, a bare demo), in memory.
        self.responses = accounts.responses if accounts else ResponseStore(open_db(":memory:"))
        self.responses.retention_s = loaded.spec.responses_retention_s
        self.reload_lock = asyncio.Lock()
        self.rng = (
            random.Random()
        )  # weighted strategies draw from this (made once: seeding per request is slow)
        self.last_issues: list[ConfigIssue] = []
        self.catalog_sync: SyncService | None = None  # set by server/catalog_admin.py while serving
        self.shared: SharedState | None = None  # shared state (Redis), set by server/shared_state.py

    def log_warnings(self) -> None:
        """What the catalog says about routes.yaml (retirements, price drift): at start-up and after
        every reload, which every sync that changes the catalog triggers."""
        for w in self.loaded.warnings:
            log.warning("%s", w)

    def _scrubber(self) -> Scrubber:
        """Every configured provider key (of active providers), and the extra secrets."""
        keys = {ch.api_key for ch in self.holder.current.channels.values() if ch.api_key}
        return Scrubber([*keys, *self.extra_secrets])

    def add_secrets(self, *secrets: str | None) -> None:
        self.extra_secrets = tuple({*self.extra_secrets, *(s for s in secrets if s)})
        self.scrubber = self._scrubber()

    @classmethod
    def from_sources(cls, sources: Sources, **kw: object) -> tuple[Runtime | None, list[ConfigIssue]]:
        loaded, issues = sources.load(0)
        if loaded is None:
            return None, issues
        return cls(sources, loaded, **kw), []  # type: ignore[arg-type]

    async def reload(self) -> list[ConfigIssue]:
        """Compile off to the side, swap with one assignment. A bad file keeps the old table serving."""
        async with self.reload_lock:
            generation = self.holder.current.generation + 1
            loaded, issues = await asyncio.to_thread(self.sources.load, generation)
            self.last_issues = issues
            if loaded is None:
                log.warning("reload rejected, old table keeps serving: %s", "; ".join(map(str, issues)))
                return issues
            self.loaded, self.spec = loaded, loaded.spec
            self.health.cooldown_s = loaded.spec.server.cooldown_s
            self.responses.retention_s = loaded.spec.responses_retention_s
            self.health.max_retry_after_s = loaded.spec.server.max_retry_after_s
            self.bounds = upstream_bounds(loaded.spec)
            self.holder.current = loaded.table
            self.scrubber = self._scrubber()
            log.info("reloaded routes: generation %d", generation)
            self.log_warnings()
            if self.accounts is not None:
                await self.accounts.usage.aflush()
            return []


def upstream_bounds(spec: RoutesSpec) -> Bounds:
    """Connect timeout and a read timeout between chunks (aiohttp's), and the total deadlines and size
    limits the plan walk enforces itself (README "Limits and timeouts")."""
    s = spec.server
    return Bounds(
        client=aiohttp.ClientTimeout(
            total=None,
            connect=s.connect_timeout_s,
            sock_connect=s.connect_timeout_s,
            sock_read=s.read_timeout_s,
        ),
        first_byte_s=s.first_byte_timeout_s,
        total_s=s.total_timeout_s,
        stream_idle_s=s.stream_idle_timeout_s,
        stream_total_s=s.stream_total_timeout_s,
        request_s=s.request_timeout_s,
        max_response_bytes=s.max_response_bytes,
        max_event_bytes=s.max_event_bytes,
    )
