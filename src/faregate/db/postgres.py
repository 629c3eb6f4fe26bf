"""PostgreSQL as faregate's durable store, behind the part of sqlite-utils' `Database` that the store
modules use (`query`, `execute`, `conn` as a transaction, `table(name).create/create_index/insert/update/
rows_where/columns_dict/add_column`, `table_names`), so keys, the usage log, the catalog with its price
history and the stored responses keep one implementation and the same tables on either store.

The driver is psycopg 3 with its connection pool: a statement outside a transaction takes any pooled
connection (autocommit); `with db.conn:` pins one to the thread for the transaction, as sqlite3's
`with conn:` does. The store modules' SQL is SQLite's; the few spellings PostgreSQL does not share are
translated here, once per statement: `?` placeholders, `INSERT OR REPLACE` (→ `ON CONFLICT (pk) DO
UPDATE`), `IS ?` (→ `IS NOT DISTINCT FROM`), and `lastrowid` (→ `RETURNING id`).

Schema changes are the modules' own `ensure_*` steps (create what is missing, add new columns), run at
start-up by every process; here they run under an advisory lock, so instances starting together do not
race on the catalog of PostgreSQL itself.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Loader
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

SCHEMES = ("postgresql://", "postgres://")
DDL_LOCK = 0x66617265  # pg_advisory_xact_lock key for schema changes ("fare")
TYPES: Mapping[type, str] = {
    str: "TEXT",
    int: "BIGINT",
    float: "DOUBLE PRECISION",
    bytes: "BYTEA",
    bool: "BIGINT",
}
BACK: Mapping[str, type] = {
    "text": str,
    "bigint": int,
    "integer": int,
    "double precision": float,
    "bytea": bytes,
}
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I | re.S)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.I)
_IS_PARAM = re.compile(r"\bIS\s+%s", re.I)


class NumericLoader(Loader):
    """`sum()` of a BIGINT column is NUMERIC in PostgreSQL, INTEGER in SQLite: read whole ones as `int`
    (faregate keeps money as text and integer picodollars, never as NUMERIC columns)."""

    def load(self, data: Buffer) -> int | float:
        d = Decimal(bytes(data).decode())
        return int(d) if d == d.to_integral_value() else float(d)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", NumericLoader)


def is_postgres(location: object) -> bool:
    return str(location).startswith(SCHEMES)


def placeholders(sql: str) -> str:
    """`?` → `%s` and `%` → `%%`, outside quoted strings and identifiers."""
    out, quote = [], ""
    for ch in sql:
        if quote:
            quote = "" if ch == quote else quote
            out.append("%%" if ch == "%" else ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Cursor:
    """What the store modules read from sqlite3's cursor: rows as tuples, `rowcount`, `lastrowid`
    (`PgDatabase.query` gives dicts, as sqlite-utils' does)."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int, lastrowid: int | None = None) -> None:
        self.rows, self.rowcount, self.lastrowid = rows, rowcount, lastrowid

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in self.rows]

    def fetchone(self) -> tuple[Any, ...] | None:
        return tuple(self.rows[0].values()) if self.rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class Transaction:
    """`db.conn`: `with db.conn:` is one transaction on one connection (nested uses join it)."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        local = self.db._local
        depth = getattr(local, "depth", 0)
        if depth == 0:
            cm = self.db.pool.connection()
            conn = cm.__enter__()
            tx = conn.transaction()
            tx.__enter__()
            local.cm, local.conn, local.tx = cm, conn, tx
        local.depth = depth + 1
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        local = self.db._local
        local.depth -= 1
        if local.depth == 0:
            cm, tx = local.cm, local.tx
            local.cm = local.conn = local.tx = None
            try:
                tx.__exit__(et, ev, tb)
            finally:
                cm.__exit__(et, ev, tb)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        return self.db.executemany(sql, rows)

    def commit(self) -> None:
        return None  # statements outside `with db.conn:` are committed as they run


class PgDatabase:
    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=True,
            name="faregate-store",
            configure=_configure,
        )
        self.pool.wait(timeout=10)
        self._local = threading.local()
        self.conn = Transaction(self)
        self._sql: dict[str, tuple[str, str | None]] = {}  # SQLite statement → (PostgreSQL's, RETURNING col)

    # --- connections ---

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()

    # --- statements ---

    def translate(self, sql: str) -> tuple[str, str | None]:
        hit = self._sql.get(sql)
        if hit is not None:
            return hit
        out, returning = placeholders(sql), None
        out = _IS_PARAM.sub("IS NOT DISTINCT FROM %s", out)
        m = _INSERT_OR.match(out)
        if m:
            verb, table, cols = m.group(1).upper(), m.group(2), [c.strip() for c in m.group(3).split(",")]
            out = re.sub(r"^\s*INSERT\s+OR\s+\w+\s+INTO", "INSERT INTO", out, count=1, flags=re.I)
            pk = self.table(table).pks
            if verb == "IGNORE" or not [c for c in cols if c not in pk]:
                out += " ON CONFLICT DO NOTHING"
            else:
                sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in pk)
                out += f" ON CONFLICT ({', '.join(pk)}) DO UPDATE SET {sets}"
        elif (m2 := _INSERT.match(out)) and self.table(m2.group(1)).identity:
            returning = self.table(m2.group(1)).identity
            out += f" RETURNING {returning}"
        self._sql[sql] = (out, returning)
        return out, returning

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        text, returning = self.translate(sql)
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(text.encode(), params or None)  # type: ignore[call-overload]
            rows = cur.fetchall() if cur.description else []
            count = cur.rowcount
        last = int(rows[0][returning]) if returning and rows else None
        return Cursor(rows, count, last)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        text, _ = self.translate(sql)
        batch = list(rows)
        if not batch:
            return Cursor([], 0)
        with self._connection() as conn, conn.cursor() as cur:
            cur.executemany(text.encode(), batch)  # type: ignore[arg-type]
            return Cursor([], cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Iterator[dict[str, Any]]:
        return iter(self.execute(sql, params).rows)

    def ddl(self, *statements: str) -> None:
        """Schema changes, one at a time across every process (an advisory lock in their transaction)."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK])
            for s in statements:
                conn.execute(s.encode())

    # --- tables ---

    def table(self, name: str) -> Table:
        return Table(self, name)

    __getitem__ = table

    def table_names(self) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " ORDER BY table_name"
        )
        return [r["table_name"] for r in rows]


class Table:
    def __init__(self, db: PgDatabase, name: str) -> None:
        if not re.fullmatch(r"\w+", name):
            raise ValueError(f"not a table name: {name!r}")
        self.db, self.name = db, name

    def exists(self) -> bool:
        return self.name in self.db.table_names()

    @property
    def columns_dict(self) -> dict[str, type]:
        rows = self.db.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [self.name],
        )
        return {r["column_name"]: BACK.get(r["data_type"], str) for r in rows}

    @property
    def pks(self) -> tuple[str, ...]:
        rows = self.db.query(
            "SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(?) AND i.indisprimary"
            " ORDER BY array_position(i.indkey, a.attnum)",
            [self.name],
        )
        return tuple(r["name"] for r in rows)

    @property
    def identity(self) -> str | None:
        rows = self.db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? AND is_identity = 'YES'",
            [self.name],
        )
        return next((r["column_name"] for r in rows), None)

    def create(
        self,
        columns: Mapping[str, Any],
        pk: str | Sequence[str] | None = None,
        *,
        not_null: Iterable[str] = (),
        if_not_exists: bool = False,
        **_: Any,
    ) -> Table:
        keys = (pk,) if isinstance(pk, str) else tuple(pk or ())
        required = set(not_null)
        cols = []
        for col, kind in columns.items():
            sql_type = TYPES.get(kind, "TEXT")
            if keys == (col,) and kind is int:
                cols.append(f"{col} BIGINT GENERATED BY DEFAULT AS IDENTITY")
                continue
            cols.append(f"{col} {sql_type}" + (" NOT NULL" if col in required else ""))
        if keys:
            cols.append(f"PRIMARY KEY ({', '.join(keys)})")
        self.db.ddl(f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(cols)})")
        return self

    def create_index(
        self, columns: Sequence[str], *, unique: bool = False, if_not_exists: bool = False, **_: Any
    ) -> Table:
        name = f"idx_{self.name}_{'_'.join(columns)}"
        kind = "UNIQUE INDEX" if unique else "INDEX"
        self.db.ddl(f"CREATE {kind} IF NOT EXISTS {name} ON {self.name} ({', '.join(columns)})")
        return self

    def add_column(self, name: str, kind: type = str, **_: Any) -> Table:
        self.db.ddl(f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {name} {TYPES.get(kind, 'TEXT')}")
        return self

    def insert(self, row: Mapping[str, Any], **_: Any) -> Table:
        cols = list(row)
        self.db.execute(
            f"INSERT INTO {self.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [row[c] for c in cols],
        )
        return self

    def update(self, pk_value: Any, updates: Mapping[str, Any], **_: Any) -> Table:
        if not updates:
            return self
        (pk,) = self.pks
        sets = ", ".join(f"{c} = ?" for c in updates)
        self.db.execute(f"UPDATE {self.name} SET {sets} WHERE {pk} = ?", [*updates.values(), pk_value])
        return self

    def rows_where(
        self,
        where: str | None = None,
        where_args: Sequence[Any] = (),
        *,
        order_by: str | None = None,
        **_: Any,
    ) -> Iterator[dict[str, Any]]:
        sql = f"SELECT * FROM {self.name}" + (f" WHERE {where}" if where else "")
        if order_by:
            sql += f" ORDER BY {order_by}"
        return self.db.query(sql, list(where_args or ()))
