"""The catalog's tables in the one SQLite store: offerings seen by sync, price history, sync runs.

Prices are decimal TEXT (USD per 1M tokens) with validity intervals `[valid_from, valid_to)`; times are
ISO 8601 UTC text of one fixed shape, so they compare as strings. Tables are created idempotently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from faregate.catalog.model import Price
from faregate.catalog.reconcile import Change, OfferingRow, SyncDiff, plain
from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)

RunStatus = str  # "ok" | "failed" | "partial"

TABLES: Mapping[str, tuple[dict[str, type], str | tuple[str, ...]]] = MappingProxyType(
    {
        "offerings": (
            {
                "provider": str,
                "upstream_id": str,
                "model_id": str,
                "name": str,
                "kind": str,
                "context": int,
                "caps": str,
                "first_seen": str,
                "last_seen": str,
                "retired_at": str,
            },
            ("provider", "upstream_id"),
        ),
        "prices": (
            {
                "id": int,
                "provider": str,
                "upstream_id": str,
                "input": str,
                "output": str,
                "cached_input": str,
                "cache_write": str,
                "valid_from": str,
                "valid_to": str,
            },
            "id",
        ),
        "sync_runs": (
            {
                "id": int,
                "provider": str,
                "started": str,
                "finished": str,
                "status": str,
                "listed": int,
                "added": int,
                "changed": int,
                "retired": int,
                "error": str,
                "unpriced": str,
                "unmapped": str,
            },
            "id",
        ),
        "sync_changes": (
            {
                "id": int,
                "run_id": int,
                "provider": str,
                "upstream_id": str,
                "model_id": str,
                "change": str,
                "old": str,
                "new": str,
            },
            "id",
        ),
    }
)
INDEXES = (
    ("prices", ("provider", "upstream_id", "valid_from")),
    ("sync_runs", ("provider", "id")),
    ("sync_changes", ("run_id",)),
)


def now_iso(moment: datetime | None = None) -> str:
    """The store's time text: UTC, microseconds, `+00:00`; one shape, so strings sort as times."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


@frozen
class PriceRow:
    provider: str
    upstream_id: str
    price: Price
    valid_from: str
    valid_to: str | None


@frozen
class SyncRun:
    provider: str
    started: str
    finished: str
    status: RunStatus
    listed: int = 0
    added: int = 0
    changed: int = 0
    retired: int = 0
    error: str | None = None
    unpriced: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
    id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "provider": self.provider,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "listed": self.listed,
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "unpriced": list(self.unpriced),
            "unmapped": list(self.unmapped),
            "error": self.error,
        }


class CatalogStore:
    """Reads and writes the catalog tables of one open store (one thread: sqlite connections are not shared)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        ensure_tables(db)

    # -- reading -------------------------------------------------------------------------------------

    def offerings(self, provider: str | None = None) -> list[OfferingRow]:
        where, args = ("provider = ?", [provider]) if provider else (None, None)
        return [
            _offering(r)
            for r in self.db["offerings"].rows_where(where, args, order_by="provider, upstream_id")
        ]

    def current_prices(self, provider: str | None = None) -> dict[tuple[str, str], Price]:
        where = "valid_to IS NULL" + (" AND provider = ?" if provider else "")
        rows = self.db["prices"].rows_where(where, [provider] if provider else [], order_by="id")
        return {(r["provider"], r["upstream_id"]): _price(r) for r in rows}

    def history(self, provider: str, upstream_id: str) -> list[PriceRow]:
        rows = self.db["prices"].rows_where(
            "provider = ? AND upstream_id = ?", [provider, upstream_id], order_by="valid_from, id"
        )
        return [PriceRow(provider, upstream_id, _price(r), r["valid_from"], r["valid_to"]) for r in rows]

    def price_at(self, provider: str, upstream_id: str, when: datetime | str) -> Price | None:
        """The synced price in force at `when` (for audits), or None when sync had none then."""
        at = when if isinstance(when, str) else now_iso(when)
        rows = list(
            self.db["prices"].rows_where(
                "provider = ? AND upstream_id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)",
                [provider, upstream_id, at, at],
                order_by="valid_from DESC, id DESC",
                limit=1,
            )
        )
        return _price(rows[0]) if rows else None

    def last_runs(self) -> dict[str, SyncRun]:
        """The latest run of each provider."""
        rows = self.db.query(
            "SELECT * FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY provider) ORDER BY provider"
        )
        return {r["provider"]: _run(r) for r in rows}

    def last_ok(self) -> dict[str, str]:
        """provider -> when its latest successful run finished."""
        rows = self.db.query(
            "SELECT provider, MAX(finished) AS at FROM sync_runs WHERE status = 'ok' GROUP BY provider"
        )
        return {r["provider"]: r["at"] for r in rows}

    def changes(self, run_id: int) -> list[Change]:
        rows = self.db["sync_changes"].rows_where("run_id = ?", [run_id], order_by="id")
        return [Change(r["change"], r["upstream_id"], r["model_id"], r["old"], r["new"]) for r in rows]

    # -- writing -------------------------------------------------------------------------------------

    def commit_sync(self, provider: str, diff: SyncDiff, run: SyncRun) -> int:
        """Write a sync's rows, prices, run and changes in one transaction; returns the run id."""
        conn = self.db.conn
        with conn:
            for row in diff.rows:
                conn.execute(
                    "INSERT OR REPLACE INTO offerings (provider, upstream_id, model_id, name, kind, context, caps,"
                    " first_seen, last_seen, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        row.provider,
                        row.upstream_id,
                        row.model_id,
                        row.name,
                        row.kind,
                        row.context,
                        json.dumps(dict(row.caps), sort_keys=True) if row.caps else None,
                        row.first_seen,
                        row.last_seen,
                        row.retired_at,
                    ],
                )
            for upstream_id, price in diff.prices.items():
                conn.execute(
                    "UPDATE prices SET valid_to = ? WHERE provider = ? AND upstream_id = ? AND valid_to IS NULL",
                    [run.finished, provider, upstream_id],
                )
                conn.execute(
                    "INSERT INTO prices (provider, upstream_id, input, output, cached_input, cache_write,"
                    " valid_from, valid_to) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    [
                        provider,
                        upstream_id,
                        plain(price.input),
                        plain(price.output),
                        _opt(price.cached_input),
                        _opt(price.cache_write),
                        run.finished,
                    ],
                )
            run_id = self._insert_run(run)
            conn.executemany(
                "INSERT INTO sync_changes (run_id, provider, upstream_id, model_id, change, old, new)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[run_id, provider, c.upstream_id, c.model_id, c.kind, c.old, c.new] for c in diff.changes],
            )
        return run_id

    def record_run(self, run: SyncRun) -> int:
        """A run that wrote nothing else (failed)."""
        with self.db.conn:
            return self._insert_run(run)

    def _insert_run(self, run: SyncRun) -> int:
        cur = self.db.conn.execute(
            "INSERT INTO sync_runs (provider, started, finished, status, listed, added, changed, retired, error,"
            " unpriced, unmapped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.provider,
                run.started,
                run.finished,
                run.status,
                run.listed,
                run.added,
                run.changed,
                run.retired,
                run.error,
                json.dumps(list(run.unpriced)),
                json.dumps(list(run.unmapped)),
            ],
        )
        assert cur.lastrowid is not None
        return cur.lastrowid


def latest_change(db: sqlite_utils.Database) -> int:
    """The id of the latest sync run that changed the catalog (0: none yet), read without making any
    table: another instance's sync shows here (server/fleet_sync.py polls it)."""
    rows = list(
        db.query("SELECT COALESCE(MAX(id), 0) AS id FROM sync_runs WHERE added + changed + retired > 0")
    )
    return int(rows[0]["id"]) if rows else 0


def ensure_tables(db: sqlite_utils.Database) -> None:
    """Made in one write transaction: instances and workers sharing the file may do this at once."""
    from faregate.db import write_transaction  # loaded already: the store was opened there

    with write_transaction(db):
        for name, (columns, pk) in TABLES.items():
            db.table(name).create(columns, pk=pk, if_not_exists=True)
        for table, cols in INDEXES:
            db.table(table).create_index(cols, if_not_exists=True)


def _opt(d: Decimal | None) -> str | None:
    return None if d is None else plain(d)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _price(r: Mapping[str, Any]) -> Price:
    return Price(Decimal(r["input"]), Decimal(r["output"]), _dec(r["cached_input"]), _dec(r["cache_write"]))


def _offering(r: Mapping[str, Any]) -> OfferingRow:
    caps = json.loads(r["caps"]) if r["caps"] else {}
    return OfferingRow(
        r["provider"],
        r["upstream_id"],
        r["model_id"],
        r["name"],
        r["kind"],
        r["context"],
        MappingProxyType({str(k): bool(v) for k, v in caps.items()}),
        r["first_seen"],
        r["last_seen"],
        r["retired_at"],
    )


def _run(r: Mapping[str, Any]) -> SyncRun:
    return SyncRun(
        r["provider"],
        r["started"],
        r["finished"],
        r["status"],
        r["listed"],
        r["added"],
        r["changed"],
        r["retired"],
        r["error"],
        tuple(json.loads(r["unpriced"] or "[]")),
        tuple(json.loads(r["unmapped"] or "[]")),
        r["id"],
    )


def rows_by_upstream(rows: Iterator[OfferingRow] | list[OfferingRow]) -> dict[str, OfferingRow]:
    return {r.upstream_id: r for r in rows}
