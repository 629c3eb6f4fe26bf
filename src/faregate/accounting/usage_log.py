"""The usage log: one row per request, written off the hot path in batches.

`record()` only appends to a buffer; a background task writes batches (in a thread, so the event loop
never waits on SQLite); `flush()` writes what is pending (on shutdown and on reload). Money is stored
as exact decimal text and as integer picodollars (1e-12 USD), which SQL can sum without floats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import sqlite_utils

from faregate import jsonio
from faregate.accounting.record import Attempt, RequestRecord
from faregate.canonical import Usage

log = logging.getLogger("faregate.usage")
PICO = Decimal("1e12")

COLUMNS: Mapping[str, Any] = MappingProxyType(
    {
        "id": str,
        "created": float,
        "key_id": str,
        "endpoint": str,
        "alias": str,
        "route": str,
        "rule": str,
        "model": str,
        "provider": str,
        "channel": str,
        "status": int,
        "stream": int,
        "prompt_tokens": int,
        "completion_tokens": int,
        "cached_tokens": int,
        "cache_write_tokens": int,
        "usage_estimated": int,
        "cost_usd": str,
        "cost_pusd": int,
        "baseline_cost_usd": str,
        "baseline_cost_pusd": int,
        "latency_ms": float,
        "ttft_ms": float,
        "attempts": str,
        "plan": str,
        "features": str,
        "error": str,
        "app": str,
        "app_url": str,
    }
)


INSERT = f"INSERT OR REPLACE INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def to_pusd(amount: Decimal) -> int:
    return int((amount * PICO).to_integral_value())


def from_pusd(pusd: int | None) -> Decimal:
    return Decimal(pusd or 0) / PICO


def ensure_table(db: sqlite_utils.Database) -> None:
    """Create the table, or bring an older store's up to date: columns added since are added (empty for
    the rows already there), so a store written by an earlier version keeps working."""
    table = db.table("usage")
    if "usage" not in db.table_names():
        table.create(dict(COLUMNS), pk="id")
        table.create_index(["key_id", "created"])
        table.create_index(["created"])
        return
    have = set(table.columns_dict)
    for name, kind in COLUMNS.items():
        if name not in have:
            table.add_column(name, kind)


def to_row(r: RequestRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "created": r.created,
        "key_id": r.key_id,
        "endpoint": r.endpoint,
        "alias": r.requested,
        "route": r.route,
        "rule": r.rule,
        "model": r.model_id,
        "provider": r.provider,
        "channel": r.channel,
        "status": r.status,
        "stream": int(r.stream),
        "prompt_tokens": r.usage.prompt_tokens,
        "completion_tokens": r.usage.completion_tokens,
        "cached_tokens": r.usage.cache_read_tokens,
        "cache_write_tokens": r.usage.cache_write_tokens,
        "usage_estimated": int(r.usage.estimated),
        "cost_usd": format(r.cost_usd, "f"),
        "cost_pusd": to_pusd(r.cost_usd),
        "baseline_cost_usd": format(r.baseline_cost_usd, "f"),
        "baseline_cost_pusd": to_pusd(r.baseline_cost_usd),
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "attempts": jsonio.dumps([a.as_json() for a in r.attempts]).decode(),
        "plan": jsonio.dumps(list(r.plan)).decode(),
        "features": jsonio.dumps(dict(r.features)).decode(),
        "error": r.error,
        "app": r.app,
        "app_url": r.app_url,
    }


def from_row(row: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        id=row["id"],
        created=row["created"],
        endpoint=row["endpoint"],
        requested=row["alias"],
        status=row["status"],
        key_id=row["key_id"],
        route=row["route"],
        rule=row["rule"],
        model_id=row["model"],
        provider=row["provider"],
        channel=row["channel"],
        stream=bool(row["stream"]),
        usage=Usage(
            row["prompt_tokens"] or 0,
            row["completion_tokens"] or 0,
            row["cached_tokens"] or 0,
            row["cache_write_tokens"] or 0,
            bool(row["usage_estimated"]),
        ),
        cost_usd=Decimal(row["cost_usd"] or "0"),
        baseline_cost_usd=Decimal(row["baseline_cost_usd"] or "0"),
        latency_ms=row["latency_ms"] or 0.0,
        ttft_ms=row["ttft_ms"],
        attempts=tuple(Attempt(**a) for a in json.loads(row["attempts"] or "[]")),
        plan=tuple(json.loads(row["plan"] or "[]")),
        features=json.loads(row["features"] or "{}"),
        error=row["error"],
        app=row.get("app"),
        app_url=row.get("app_url"),
    )


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    spend_usd: Decimal
    baseline_usd: Decimal
    latency_ms_sum: float


class UsageLog:
    """Implements `Recorder`. Thread-safe buffer; one writer at a time."""

    def __init__(self, db: sqlite_utils.Database, *, batch_size: int = 200, interval_s: float = 0.25) -> None:
        self.db = db
        ensure_table(db)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._pending: list[tuple[RequestRecord, tuple[Any, ...]]] = []  # records with their rows
        self._lock = threading.Lock()  # the buffer, shared with the writer thread
        self._write_lock = threading.Lock()  # one batch write at a time
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.written = 0

    def record(self, rec: RequestRecord) -> None:
        # The row is made here, on the caller's thread, in small steps: made by the writer thread for a
        # whole batch, it would hold the GIL for milliseconds and stall the event loop's answers.
        row = tuple(to_row(rec).values())
        with self._lock:
            self._pending.append((rec, row))
            full = len(self._pending) >= self.batch_size
        if full:
            self._wake.set()

    def get(self, request_id: str) -> RequestRecord | None:
        with self._lock:
            found: RequestRecord | None = next(
                (r for r, _ in reversed(self._pending) if r.id == request_id), None
            )
        if found is not None:
            return found
        with self._write_lock:
            rows = list(self.db.query("select * from usage where id = ?", [request_id]))
        return from_row(rows[0]) if rows else None

    def flush(self) -> int:
        """Write everything pending now (from any thread). Returns the rows written."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                with self.db.conn:  # one transaction; plain executemany (sqlite-utils' per-row work costs)
                    self.db.conn.executemany(INSERT, [row for _, row in batch])
            except Exception:
                log.exception("usage log write failed; %d rows kept for the next try", len(batch))
                with self._lock:
                    self._pending = batch + self._pending
                return 0
            self.written += len(batch)
            return len(batch)

    async def aflush(self) -> int:
        return await asyncio.to_thread(self.flush)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="faregate-usage-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.aflush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            await self.aflush()

    # --- queries (flush first so they see every answered request) ---

    def totals(
        self, *, key_id: str | None, since: float, all_keys: bool = False, app: str | None = None
    ) -> Totals:
        """Sums since `since` for one key (`key_id` None: anonymous requests), or for all (`all_keys`);
        with `app`, only that app's requests."""
        self.flush()
        where, args = _scope(key_id, since, all_keys)
        if app is not None:
            where, args = f"{where} and app = ?", [*args, app]
        sql = (
            "select count(*) n, coalesce(sum(status >= 400), 0) errors, coalesce(sum(prompt_tokens), 0) pt,"
            " coalesce(sum(completion_tokens), 0) ct, coalesce(sum(cost_pusd), 0) cost,"
            " coalesce(sum(baseline_cost_pusd), 0) base, coalesce(sum(latency_ms), 0) lat"
            f" from usage where {where}"
        )
        with self._write_lock:
            row = next(self.db.query(sql, args))
        return Totals(
            row["n"],
            row["errors"],
            row["pt"],
            row["ct"],
            from_pusd(row["cost"]),
            from_pusd(row["base"]),
            row["lat"],
        )

    def spend_by_key(self) -> dict[str, Decimal]:
        self.flush()
        rows = self.db.query(
            "select key_id, coalesce(sum(cost_pusd), 0) cost from usage where key_id is not null group by key_id"
        )
        return {r["key_id"]: from_pusd(r["cost"]) for r in rows}

    def rows(
        self, *, key_id: str | None = None, since: float = 0.0, all_keys: bool = True
    ) -> Iterable[RequestRecord]:
        self.flush()
        where, args = _scope(key_id, since, all_keys and key_id is None)
        return [
            from_row(r) for r in self.db.query(f"select * from usage where {where} order by created", args)
        ]


def _scope(key_id: str | None, since: float, all_keys: bool) -> tuple[str, list[Any]]:
    if all_keys:
        return "created >= ?", [since]
    if key_id is None:
        return "created >= ? and key_id is null", [since]
    return "created >= ? and key_id = ?", [since, key_id]


def days_ago(days: float) -> float:
    return time.time() - days * 86400
