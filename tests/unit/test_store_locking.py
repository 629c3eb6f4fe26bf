"""Two connections on one store file: making a concern's tables while another connection holds the write
lock waits for it (the busy timeout) instead of failing with `database is locked`; a start replays the
usage journal of dead processes in its turn.

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
from faregate.accounting.usage_log import UsageLog
from faregate.catalog.store import CatalogStore
from faregate.db import open_db
from faregate.pipeline.accounts import Accounts, journal_dir, replay_turn
from faregate.ui.sessions import SessionStore
from tests.unit.test_usage_log import record

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


def test_a_start_replays_dead_journals_after_another_starts_replay(tmp_path: Path) -> None:
    """Workers starting together on one store replay a dead process's journal one at a time: the second
    waits for the first's turn (held here), then finds what is left, never a segment being deleted."""
    store = tmp_path / "faregate.db"
    journal = journal_dir(store)
    assert journal is not None
    dead = UsageLog(open_db(store), journal_dir=journal)
    dead.record(record(1))
    assert dead._journal is not None
    dead._journal.close(remove=False)  # what SIGKILL leaves: the segment, its owner's lock released
    started: list[Accounts] = []
    with replay_turn(journal):  # another worker is replaying
        starter = threading.Thread(target=lambda: started.append(Accounts(store)))
        starter.start()
        starter.join(0.5)  # a starter that does not wait for the turn has replayed by now
        assert started == [] and list(journal.glob("*.jsonl")), "the segment waited for the turn"
    starter.join()
    assert started[0].usage.recovered == (1, 0)
    assert list(journal.glob("*.jsonl")) == []
