"""The usage log: one row per request, written off the hot path in batches.

`record()` makes the request's row once (`row_of`: its values in `COLUMNS` order), appends it to a buffer
and, with a journal (`accounting/journal.py`), writes it to the OS in one `write()`; a background task
commits batches (in a thread, so the event loop never waits on SQLite; the JSON text of the attempts, plan
and features is made there); `flush()` commits what is pending (on shutdown and on reload). A process killed before a batch is
committed loses nothing: the next start replays its journal, and charges the reservations of requests it
left unfinished, so spend and budgets are rebuilt from the store alone. Money is stored as exact decimal
text and as integer picodollars (1e-12 USD), which SQL can sum without floats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from faregate import jsonio
from faregate.accounting.journal import HOLD, PROVISIONAL, ROW, Journal, entry, orphans
from faregate.accounting.record import Attempt, RequestRecord
from faregate.canonical import Usage
from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)

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
        "finish_reason": str,
    }
)


# What the queries below filter and order by: a key's requests since a time (totals, `/v1/metrics`, the
# dashboard, budgets at start-up), everyone's since a time (the admin's views, the audit). `id` is the key.
INDEXES: Final = ((("key_id", "created"), False), (("created",), False))
INSERT = f"INSERT OR REPLACE INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def to_pusd(amount: Decimal) -> int:
    return int((amount * PICO).to_integral_value())


def from_pusd(pusd: int | None) -> Decimal:
    return Decimal(pusd or 0) / PICO


def ensure_table(db: sqlite_utils.Database) -> None:
    """Create the table, or bring an older store's up to date: columns added since are added (empty for
    the rows already there), so a store written by an earlier version keeps working. In one write
    transaction: the processes sharing the file may do this at once."""
    from faregate.db import write_transaction  # loaded already: the store was opened there

    with write_transaction(db):
        _ensure_table(db)


def _ensure_table(db: sqlite_utils.Database) -> None:
    from faregate.db import ensure_indexes

    table = db.table("usage")
    if "usage" not in db.table_names():
        table.create(dict(COLUMNS), pk="id")
    else:
        have = set(table.columns_dict)
        for name, kind in COLUMNS.items():
            if name not in have:
                table.add_column(name, kind)
    ensure_indexes(db, "usage", INDEXES)


Row = tuple[Any, ...]  # a row's values in `COLUMNS` order
HEADER: Final = "c"  # the journal's segment header: the names of the values of its rows, in order
JSON_AT: Final = tuple(COLUMNS).index("attempts")  # attempts, plan, features: JSON text in the store
assert tuple(COLUMNS)[JSON_AT : JSON_AT + 3] == ("attempts", "plan", "features")
LATENCY_AT: Final = tuple(COLUMNS).index("latency_ms")


def row_of(r: RequestRecord) -> Row:
    """The request's row in `COLUMNS` order, made once: its journal line is these values, and the store
    gets them with the attempts, plan and features as JSON text (`sql_values`, in the writer thread)."""
    usage, cost, base = r.usage, r.cost_usd, r.baseline_cost_usd
    return (
        r.id,
        r.created,
        r.key_id,
        r.endpoint,
        r.requested,
        r.route,
        r.rule,
        r.model_id,
        r.provider,
        r.channel,
        r.status,
        1 if r.stream else 0,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        1 if usage.estimated else 0,
        format(cost, "f"),
        to_pusd(cost),
        format(base, "f"),
        to_pusd(base),
        r.latency_ms,
        r.ttft_ms,
        [a.as_json() for a in r.attempts],
        r.plan,
        r.features,
        r.error,
        r.app,
        r.app_url,
        r.finish_reason,
    )


def same_but_latency(row: Row, other: Row | None) -> bool:
    """Do two rows of a request differ in nothing but `latency_ms`?"""
    at = LATENCY_AT
    return other is not None and row[:at] == other[:at] and row[at + 1 :] == other[at + 1 :]


def sql_values(row: Row) -> Row:
    """A row as the store takes it: its attempts, plan and features as JSON text (a row replayed from an
    older journal has them as text already)."""
    at = JSON_AT
    return (*row[:at], _json_text(row[at]), _json_text(row[at + 1]), _json_text(row[at + 2]), *row[at + 3 :])


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return jsonio.dumps(value, default=dict).decode()


def to_row(r: RequestRecord) -> dict[str, Any]:
    """The record's row as the store holds it, by column name."""
    return dict(zip(COLUMNS, sql_values(row_of(r)), strict=True))


def row_values(row: Mapping[str, Any]) -> Row:
    """A row by column name (a journal of another version's, a charged hold) as the store takes it."""
    return sql_values(tuple(row.get(name) for name in COLUMNS))


INTERRUPTED = (
    "the gateway stopped before this request finished (killed or crashed): charged its budget reservation,"
    " the most it could have cost"
)


def charged_row(hold: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a request the gateway died serving: its upstream may have billed it, so it is charged
    what was reserved for it (its worst case), marked estimated, status 500."""
    pusd = int(hold.get("cost_pusd") or 0)
    return {
        "id": hold["id"],
        "created": hold.get("created"),
        "key_id": hold.get("key_id"),
        "endpoint": hold.get("endpoint"),
        "alias": hold.get("alias"),
        "status": 500,
        "stream": int(bool(hold.get("stream"))),
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "usage_estimated": 1,
        "cost_usd": str(hold.get("cost_usd") or format(from_pusd(pusd), "f")),
        "cost_pusd": pusd,
        "baseline_cost_usd": "0",
        "baseline_cost_pusd": 0,
        "latency_ms": 0.0,
        "attempts": "[]",
        "plan": "[]",
        "features": "{}",
        "error": INTERRUPTED,
    }


def replay_journal(db: sqlite_utils.Database, directory: Path) -> tuple[int, int]:
    """Commit what dead processes left in their journals: (rows replayed, reservations charged)."""
    replayed = charged = 0
    for orphan in orphans(directory):
        last: dict[str, tuple[str, Mapping[str, Any]]] = {}
        names: list[str] = []  # the values' names, from the segment's header
        for tag, value in orphan.entries():
            if tag == HEADER and isinstance(value, list):
                names = value
                continue
            if isinstance(value, list):  # a row as its values, in the order the header names
                value = dict(zip(names, value, strict=False))
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                last[value["id"]] = (tag, value)
        rows = [v for tag, v in last.values() if tag in (ROW, PROVISIONAL)]
        holds = [v for tag, v in last.values() if tag == HOLD]
        known: set[str] = set()
        for i in range(0, len(holds), 500):
            ids = [h["id"] for h in holds[i : i + 500]]
            marks = ", ".join("?" * len(ids))
            known |= {r["id"] for r in db.query(f"select id from usage where id in ({marks})", ids)}
        rows += [charged_row(h) for h in holds if h["id"] not in known]
        with db.conn:
            db.conn.executemany(INSERT, [row_values(r) for r in rows])
        orphan.release()
        replayed += len(rows)
        charged += sum(h["id"] not in known for h in holds)
    if replayed:
        log.warning(
            "usage journal: replayed %d rows a stopped process had not committed (%d reservations charged)",
            replayed,
            charged,
        )
    return replayed, charged


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
        finish_reason=row.get("finish_reason"),
    )


@frozen
class Totals:
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    spend_usd: Decimal
    baseline_usd: Decimal
    latency_ms_sum: float


class UsageLog:
    """Implements `Recorder`. Thread-safe buffer; one writer at a time. With `journal_dir`, every row and
    reservation reaches the OS before `record` / `hold` return (see `accounting/journal.py`), and what a
    dead process left there is replayed first."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        *,
        batch_size: int = 200,
        interval_s: float = 0.25,
        journal_dir: Path | None = None,
    ) -> None:
        self.db = db
        ensure_table(db)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._pending: list[tuple[RequestRecord, Row]] = []  # records with their rows
        self._lock = threading.Lock()  # the buffer and the journal, shared with the writer thread
        self._write_lock = threading.Lock()  # one batch write at a time
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.written = 0
        self.recovered = replay_journal(db, journal_dir) if journal_dir is not None else (0, 0)
        self._journal_dir = journal_dir
        self._journal: Journal | None = None  # made on the first entry: readers of a store make none
        self._open: dict[str, bytes] = {}  # request id -> its last journal entry, while it is in flight
        self._provisional: dict[str, Row] = {}  # request id -> its provisional row, until recorded
        self._sealed: list[Path] = []  # journal segments whose rows are being committed

    def record(self, rec: RequestRecord) -> None:
        # The row's values are made here, once, and journaled before the answer goes out; what only the
        # store needs (JSON text of attempts, plan, features) is made by the writer thread. A row that
        # differs from the provisional one journaled for it in nothing but its latency (a stream that
        # ended as its closing events said) is not journaled again: a replay of the provisional one
        # rebuilds every figure but that latency.
        row = row_of(rec)
        journaled = self._journal_dir is not None
        line = b""
        if journaled and not same_but_latency(row, self._provisional.get(rec.id)):
            line = entry(ROW, row)
        with self._lock:
            self._pending.append((rec, row))
            full = len(self._pending) >= self.batch_size
            if journaled:
                if line:
                    self._journaled(line)
                self._open.pop(rec.id, None)
                self._provisional.pop(rec.id, None)
        if full:
            self._wake.set()

    def provisional(self, rec: RequestRecord) -> None:
        """The row as it stands before the answer's last bytes (a stream's closing events): journaled
        only, for a crash before `record`; `record` supersedes it."""
        if self._journal_dir is None:
            return
        row = row_of(rec)
        line = entry(PROVISIONAL, row)
        with self._lock:
            self._journaled(line)
            self._open[rec.id] = line
            self._provisional[rec.id] = row

    def hold(
        self,
        request_id: str,
        *,
        key_id: str,
        reserved_usd: Decimal,
        created: float,
        endpoint: str,
        alias: str,
    ) -> None:
        """A budget reservation, journaled before the upstream call: if the process dies before the request
        is recorded, the next start charges it (its upstream may have billed)."""
        if self._journal_dir is None:
            return
        hold = {
            "id": request_id,
            "key_id": key_id,
            "cost_usd": format(reserved_usd, "f"),
            "cost_pusd": to_pusd(reserved_usd),
            "created": created,
            "endpoint": endpoint,
            "alias": alias,
        }
        line = entry(HOLD, hold)
        with self._lock:
            self._journaled(line)
            self._open[request_id] = line

    def _journaled(self, line: bytes) -> None:
        """Append to the journal (under `_lock`), making it on the first entry."""
        if self._journal is None:
            assert self._journal_dir is not None
            self._journal = Journal(self._journal_dir, entry(HEADER, tuple(COLUMNS)))
        self._journal.append(line)

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
                if batch and self._journal is not None:  # its rows are in the segment sealed now
                    self._sealed.append(self._journal.rotate(b"".join(self._open.values())))
            if not batch:
                return 0
            try:
                values = [sql_values(row) for _, row in batch]
                with self.db.conn:  # one transaction; plain executemany (sqlite-utils' per-row work costs)
                    self.db.conn.executemany(INSERT, values)
            except Exception:
                log.exception("usage log write failed; %d rows kept for the next try", len(batch))
                with self._lock:
                    self._pending = batch + self._pending
                return 0
            self.written += len(batch)
            Journal.discard(self._sealed)  # every row they hold is committed now
            self._sealed = []
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
        self.close()

    def close(self) -> None:
        """Close the journal; its files go when everything is committed and no request is in flight. A
        later entry starts a new one."""
        with self._lock:
            if self._journal is not None:
                done = not self._pending and not self._open and not self._sealed
                self._journal.close(remove=done)
                self._journal = None

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
            "select count(*) n, coalesce(sum(case when status >= 400 then 1 else 0 end), 0) errors, coalesce(sum(prompt_tokens), 0) pt,"
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
