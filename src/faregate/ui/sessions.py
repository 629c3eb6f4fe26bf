"""Dashboard sessions, kept server-side in the store (so every worker of `--workers N` sees them).

The browser holds only a random session id in an HttpOnly cookie; the store keeps its SHA-256, who it
belongs to (the admin, or a key's id: never the key itself), its CSRF token and when it expires.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import TYPE_CHECKING

from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)


SESSION_TTL_S = 8 * 3600.0


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@frozen
class Session:
    admin: bool
    key_id: str | None  # the faregate key this session was opened with (None: the admin)
    csrf: str
    expires: float


class SessionStore:
    """The `ui_sessions` table. One lock around its connection's use: handlers call it from threads."""

    def __init__(self, db: sqlite_utils.Database, ttl_s: float = SESSION_TTL_S) -> None:
        self.db, self.ttl_s = db, ttl_s
        self._lock = threading.Lock()
        from faregate.db import write_transaction  # loaded already: the store was opened there

        with write_transaction(db):  # every worker makes the table at start: one at a time
            if "ui_sessions" not in db.table_names():
                db.table("ui_sessions").create(
                    {"id": str, "admin": int, "key_id": str, "csrf": str, "created": float, "expires": float},
                    pk="id",
                )

    def open(self, *, admin: bool, key_id: str | None, now: float) -> tuple[str, Session]:
        """A new session: returns its id (for the cookie only) and what the store keeps."""
        session_id = secrets.token_urlsafe(32)
        s = Session(admin=admin, key_id=key_id, csrf=secrets.token_urlsafe(24), expires=now + self.ttl_s)
        row = {
            "id": _digest(session_id),
            "admin": int(admin),
            "key_id": key_id,
            "csrf": s.csrf,
            "created": now,
            "expires": s.expires,
        }
        with self._lock, self.db.conn:
            self.db.execute("delete from ui_sessions where expires <= ?", [now])
            self.db.table("ui_sessions").insert(row)
        return session_id, s

    def get(self, session_id: str, now: float) -> Session | None:
        with self._lock:
            rows = list(self.db.query("select * from ui_sessions where id = ?", [_digest(session_id)]))
        if not rows or rows[0]["expires"] <= now:
            return None
        r = rows[0]
        return Session(bool(r["admin"]), r["key_id"], r["csrf"], r["expires"])

    def close(self, session_id: str) -> None:
        with self._lock, self.db.conn:
            self.db.execute("delete from ui_sessions where id = ?", [_digest(session_id)])

    def close_key(self, key_id: str) -> None:
        """End every session opened with this key (it was revoked)."""
        with self._lock, self.db.conn:
            self.db.execute("delete from ui_sessions where key_id = ?", [key_id])
