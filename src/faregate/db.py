"""The embedded store: one SQLite file (WAL) opened with sqlite-utils. A leaf: any layer may use it.

Each concern keeps its own tables (catalog history in catalog/store.py; keys and the usage log in
accounting/); this module only opens the file the same way for all of them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

DEFAULT_STORE = Path("faregate.db")


def store_path(explicit: Path | str | None = None, configured: str | None = None) -> Path:
    """Command line or env `FAREGATE_STORE`, else routes.yaml's `server.store`, else ./faregate.db: the
    CLI and the server find the same store by default."""
    chosen = explicit or os.environ.get("FAREGATE_STORE") or configured
    return Path(chosen) if chosen else DEFAULT_STORE


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) with WAL, so readers never block the writer, and a busy timeout."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One connection shared by the event loop and the usage log's writer thread: sqlite3 serializes calls
    # on a connection, and writers take their own lock around transactions.
    db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db
