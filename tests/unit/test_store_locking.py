"""Two connections on one store file: making a concern's tables while another connection holds the write
lock waits for it (the busy timeout) instead of failing with `database is locked`.

sqlite-utils' `table.create()` opens a deferred `BEGIN` and reads the schema before `CREATE TABLE`; in WAL
mode a transaction that has read and then wants to write while another connection writes gets SQLITE_BUSY
at once, without the busy handler. Schema steps therefore run in `BEGIN IMMEDIATE` (db.write_transaction),
which takes the write lock first and so does wait.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faregate.accounting import response_store, usage_log
from faregate.accounting.keys import KeyStore
from faregate.catalog.store import CatalogStore
from faregate.db import open_db
from faregate.ui.sessions import SessionStore

MAKERS: dict[str, Callable[[Any], object]] = {
    "catalog": CatalogStore,
    "ui_sessions": SessionStore,
    "keys": KeyStore,
    "usage": usage_log.ensure_table,
    "responses": response_store.ensure_table,
}


@pytest.mark.parametrize("concern", sorted(MAKERS))
def test_making_tables_waits_for_another_connections_write(tmp_path: Path, concern: str) -> None:
    path = tmp_path / "faregate.db"
    other = open_db(path)
    other.conn.execute("CREATE TABLE other (x INTEGER)")
    db = open_db(path)
    db.table_names()  # this connection has read the schema once already
    other.conn.execute("BEGIN IMMEDIATE")  # another connection (process) is writing
    other.conn.execute("INSERT INTO other VALUES (1)")
    errors: list[BaseException] = []

    def make() -> None:
        try:
            MAKERS[concern](db)
        except sqlite3.Error as e:
            errors.append(e)

    maker = threading.Thread(target=make)
    maker.start()
    maker.join(0.5)  # a maker that does not wait has failed by now; one that waits is still blocked
    other.conn.commit()  # the write ends: a waiting maker goes on
    maker.join()
    assert errors == []
    assert (concern if concern != "catalog" else "sync_runs") in db.table_names()
    other.close()
    db.close()
