"""Stored Responses API responses: one row per response in the usage store (table `responses`).

A row keeps the response object as answered, the input items of its request, the key that made it (only
that key reads, continues or deletes it) and when it expires (routes.yaml `responses.retention_days`).
The conversation that `previous_response_id` continues is rebuilt by walking the chain of previous
responses (one recursive query): each link's input items, then its output items. As on OpenAI, a
response's `instructions` are not carried into the next one.

Money is not kept here: a response's cost and savings are in its usage-log row (`request_id`), which
`faregate audit` recomputes like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from faregate import jsonio
from faregate.canonical import JSONObject
from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)

TABLE: Final = "responses"
DEFAULT_RETENTION_S: Final = 30 * 86400.0  # OpenAI keeps stored responses 30 days
MAX_CHAIN: Final = 1000  # links followed when rebuilding a conversation

COLUMNS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "id": str,
        "key_id": str,
        "created": float,
        "expires": float,
        "request_id": str,
        "previous_id": str,
        "model": str,
        "status": str,
        "response": str,
        "input_items": str,
    }
)
INSERT: Final = (
    f"INSERT OR REPLACE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
# The chain of previous responses, newest first, following only the caller's own live rows.
CHAIN: Final = f"""
WITH RECURSIVE chain(id, previous_id, depth) AS (
    SELECT id, previous_id, 0 FROM {TABLE} WHERE id = ? AND key_id IS ? AND expires > ?
    UNION ALL
    SELECT r.id, r.previous_id, chain.depth + 1 FROM {TABLE} r JOIN chain ON r.id = chain.previous_id
    WHERE r.key_id IS ? AND r.expires > ? AND chain.depth < {MAX_CHAIN}
)
SELECT r.input_items, r.response FROM chain JOIN {TABLE} r ON r.id = chain.id ORDER BY chain.depth DESC
"""


@frozen
class StoredResponse:
    id: str
    key_id: str | None
    created: float
    expires: float
    request_id: str
    previous_id: str | None
    response: JSONObject
    input_items: tuple[JSONObject, ...]

    @property
    def model(self) -> str:
        return str(self.response.get("model") or "")

    @property
    def status(self) -> str:
        return str(self.response.get("status") or "")


def ensure_table(db: sqlite_utils.Database) -> None:
    from faregate.db import write_transaction  # loaded already: the store was opened there

    with write_transaction(db):  # the processes sharing the file may do this at once
        _ensure_table(db)


def _ensure_table(db: sqlite_utils.Database) -> None:
    from faregate.db import ensure_indexes

    if TABLE not in db.table_names():
        db.table(TABLE).create(dict(COLUMNS), pk="id")
    ensure_indexes(db, TABLE, ((("key_id", "created"), False), (("expires",), False)))


def _row(r: StoredResponse) -> tuple[Any, ...]:
    return (
        r.id,
        r.key_id,
        r.created,
        r.expires,
        r.request_id,
        r.previous_id,
        r.model,
        r.status,
        jsonio.dumps(r.response).decode(),
        jsonio.dumps(list(r.input_items)).decode(),
    )


def _from_row(row: Mapping[str, Any]) -> StoredResponse:
    return StoredResponse(
        id=row["id"],
        key_id=row["key_id"],
        created=row["created"],
        expires=row["expires"],
        request_id=row["request_id"],
        previous_id=row["previous_id"],
        response=jsonio.loads(row["response"]),
        input_items=tuple(jsonio.loads(row["input_items"])),
    )


class ResponseStore:
    """Thread-safe (one lock around the connection). A write is one small insert: done in line, so a
    response is readable the moment its client has it."""

    def __init__(self, db: sqlite_utils.Database, *, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self.db = db
        self.retention_s = retention_s
        self._lock = threading.Lock()
        ensure_table(db)

    def put(
        self,
        response: JSONObject,
        *,
        key_id: str | None,
        request_id: str,
        input_items: tuple[JSONObject, ...],
        now: float | None = None,
    ) -> StoredResponse:
        created = time.time() if now is None else now
        previous = response.get("previous_response_id")
        stored = StoredResponse(
            id=str(response["id"]),
            key_id=key_id,
            created=created,
            expires=created + self.retention_s,
            request_id=request_id,
            previous_id=previous if isinstance(previous, str) else None,
            response=response,
            input_items=input_items,
        )
        with self._lock, self.db.conn:
            self.db.conn.execute(INSERT, _row(stored))
        return stored

    def get(self, response_id: str, key_id: str | None, now: float | None = None) -> StoredResponse | None:
        """The caller's live response with that id (another key's is as absent as an unknown one)."""
        now = time.time() if now is None else now
        sql = f"SELECT * FROM {TABLE} WHERE id = ? AND key_id IS ? AND expires > ?"
        with self._lock:
            rows = list(self.db.query(sql, [response_id, key_id, now]))
        return _from_row(rows[0]) if rows else None

    def delete(self, response_id: str, key_id: str | None) -> bool:
        with self._lock, self.db.conn:
            cur = self.db.conn.execute(
                f"DELETE FROM {TABLE} WHERE id = ? AND key_id IS ?", [response_id, key_id]
            )
        return cur.rowcount > 0

    def conversation(
        self, response_id: str, key_id: str | None, now: float | None = None
    ) -> list[JSONObject] | None:
        """Every item of the conversation up to and including `response_id`'s output, oldest first, as
        input items; None when the response is unknown, expired or another key's."""
        now = time.time() if now is None else now
        with self._lock:
            rows = list(self.db.query(CHAIN, [response_id, key_id, now, key_id, now]))
        if not rows:
            return None
        items: list[JSONObject] = []
        for row in rows:
            items.extend(jsonio.loads(row["input_items"]))
            items.extend(jsonio.loads(row["response"]).get("output") or ())
        return items

    def purge(self, now: float | None = None) -> int:
        """Delete expired responses; returns how many."""
        now = time.time() if now is None else now
        with self._lock, self.db.conn:
            cur = self.db.conn.execute(f"DELETE FROM {TABLE} WHERE expires <= ?", [now])
        return cur.rowcount
