"""The store: one SQLite file (WAL) opened with sqlite-utils (the embedded default), or PostgreSQL at a
`postgresql://` URL (db/postgres.py, behind the same interface). A leaf: any layer may use it.

Each concern keeps its own tables (catalog history in catalog/store.py; keys and the usage log in
accounting/); this module only opens the store the same way for all of them. A PostgreSQL URL travels
through the command line and the server as a `Path` like a file would; `location()` gives it back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import sqlite_utils


def _import_sqlite_utils() -> None:
    """sqlite-utils imports numpy and pandas when they are installed, only to map their scalar types to
    column types; faregate never stores either. numpy alone costs ~75 ms and ~14 MB at every start, so
    it is hidden for that one import (unless something has loaded it already), then visible again."""
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import numpy` raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


_import_sqlite_utils()
import sqlite_utils  # noqa: E402  (loaded above, without numpy)

DEFAULT_STORE = Path("faregate.db")


def store_path(explicit: Path | str | None = None, configured: str | None = None) -> Path:
    """Command line or env `FAREGATE_STORE`, else routes.yaml's `server.store`, else ./faregate.db: the
    CLI and the server find the same store by default."""
    chosen = explicit or os.environ.get("FAREGATE_STORE") or configured
    return Path(chosen) if chosen else DEFAULT_STORE


def location(path: Path | str) -> str:
    """The store's file name or URL (a `Path` made of a URL has lost one `/` after the scheme)."""
    text = str(path)
    for scheme in ("postgresql:", "postgres:"):
        if text.startswith(scheme) and not text.startswith(scheme + "//"):
            return scheme + "//" + text[len(scheme) :].lstrip("/")
    return text


def shown(path: Path | str) -> str:
    """The location without a password, for reports and logs."""
    text = location(path)
    if "://" in text and "@" in text.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = text.split("://", 1)
        userinfo, host = rest.split("@", 1)
        return f"{scheme}://{userinfo.split(':', 1)[0]}@{host}"
    return text


def is_postgres(path: Path | str) -> bool:
    return location(path).startswith(("postgresql://", "postgres://"))


def store_exists(path: Path | str) -> bool:
    """A file that is there, or a server (whose tables are made on first use)."""
    return is_postgres(path) or Path(path).exists()


def store_errors() -> tuple[type[Exception], ...]:
    """What reading a store may raise, whichever it is."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One SQLite transaction that takes the write lock first (`BEGIN IMMEDIATE`), for steps that read and
    then write, such as making a concern's tables (sqlite-utils' `create()` reads the schema before its
    `CREATE TABLE`). A deferred transaction that has read gets `database is locked` at once when another
    connection writes (WAL skips the busy handler there: its snapshot may be stale); `BEGIN IMMEDIATE`
    waits out the busy timeout instead. Inside an open transaction, or on PostgreSQL, it adds nothing."""
    conn = db.conn
    if not isinstance(conn, sqlite3.Connection) or conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


Index = tuple[Sequence[str], bool]  # an index a table's queries need: its columns, and whether unique


def ensure_indexes(db: sqlite_utils.Database, table: str, indexes: Iterable[Index]) -> None:
    """Make those of `indexes` the table lacks, named as sqlite-utils names them (`idx_usage_created`):
    a table an earlier version made, or one made by hand, gets the indexes its queries rely on; one that
    has them is left as it is. Run inside the concern's `write_transaction`; on PostgreSQL the same
    `CREATE INDEX IF NOT EXISTS` runs under its schema lock (db/postgres.py)."""
    t = db.table(table)
    for columns, unique in indexes:
        t.create_index(list(columns), unique=unique, if_not_exists=True)


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) with WAL, so readers never block the writer, and a busy timeout; a
    PostgreSQL URL opens a pooled PostgreSQL store with the same interface."""
    if is_postgres(path):
        from faregate.db.postgres import PgDatabase

        # Not a subclass: the part of `sqlite_utils.Database` the store modules use (db/postgres.py).
        return cast(sqlite_utils.Database, PgDatabase(location(path)))
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One connection shared by the event loop and the usage log's writer thread: sqlite3 serializes calls
    # on a connection, and writers take their own lock around transactions.
    db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
    db.execute("PRAGMA busy_timeout=5000")  # first: switching to WAL may have to wait for another process
    # WAL is a property of the file: switch only a store not in it yet. Asking again needs a lock that a
    # busy store (the usage log committing, a sync writing) can hold past the timeout: "database is locked".
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
