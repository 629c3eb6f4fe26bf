"""API keys: made once, shown once, stored hashed. A key is 32 random bytes, so SHA-256 (not a slow
password hash) is the right digest: there is nothing to brute-force."""

from __future__ import annotations

import hashlib
import secrets
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)


PREFIX = "fg_"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@frozen
class ApiKey:
    id: str  # public identifier: shown in lists, logs and the usage log (never the secret)
    label: str
    hint: str  # the first characters of the key, to recognise it
    budget_usd: Decimal | None = None
    rpm: int | None = None
    tpm: int | None = None
    group: str | None = None
    created: float = 0.0
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


class KeyStore:
    """The `keys` table. Only the hash of a key is stored; `authenticate` looks it up by hash."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        from faregate.db import write_transaction  # loaded already: the store was opened there

        with write_transaction(db):
            self._ensure_table()

    def _ensure_table(self) -> None:
        from faregate.db import ensure_indexes

        db = self.db
        if "keys" not in db.table_names():
            db.table("keys").create(
                {
                    "id": str,
                    "hash": str,
                    "label": str,
                    "hint": str,
                    "budget_usd": str,
                    "rpm": int,
                    "tpm": int,
                    "grp": str,
                    "created": float,
                    "revoked": float,
                },
                pk="id",
                not_null={"hash", "label"},
            )
        ensure_indexes(db, "keys", ((("hash",), True),))  # every request's key is looked up by hash

    def create(
        self,
        label: str,
        *,
        budget_usd: Decimal | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        group: str | None = None,
    ) -> tuple[str, ApiKey]:
        """Returns the secret (to show once) and the stored record."""
        secret = new_key()
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            label=label,
            hint=secret[:7],
            budget_usd=budget_usd,
            rpm=rpm,
            tpm=tpm,
            group=group,
            created=time.time(),
        )
        self.db.table("keys").insert({**_row(key), "hash": hash_key(secret)})
        return secret, key

    def authenticate(self, secret: str) -> ApiKey | None:
        rows = list(self.db.query("select * from keys where hash = ?", [hash_key(secret)]))
        return _key(rows[0]) if rows else None

    def get(self, key_id: str) -> ApiKey | None:
        rows = list(self.db.query("select * from keys where id = ?", [key_id]))
        return _key(rows[0]) if rows else None

    def list(self) -> list[ApiKey]:
        return [_key(r) for r in self.db.query("select * from keys order by created")]

    def revoke(self, key_id: str) -> bool:
        found = self.get(key_id)
        if found is None:
            return False
        self.db.table("keys").update(key_id, {"revoked": time.time()})
        return True

    def update(self, key_id: str, **changes: Any) -> ApiKey | None:
        """Change label, budget_usd, rpm, tpm or group (None clears a limit)."""
        if self.get(key_id) is None:
            return None
        cols = {"label": "label", "budget_usd": "budget_usd", "rpm": "rpm", "tpm": "tpm", "group": "grp"}
        row = {cols[k]: (str(v) if isinstance(v, Decimal) else v) for k, v in changes.items() if k in cols}
        if row:
            self.db.table("keys").update(key_id, row)
        return self.get(key_id)


def _row(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "label": k.label,
        "hint": k.hint,
        "budget_usd": None if k.budget_usd is None else str(k.budget_usd),
        "rpm": k.rpm,
        "tpm": k.tpm,
        "grp": k.group,
        "created": k.created,
        "revoked": k.revoked,
    }


def _key(r: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=r["id"],
        label=r["label"],
        hint=r["hint"],
        budget_usd=None if r["budget_usd"] is None else Decimal(r["budget_usd"]),
        rpm=r["rpm"],
        tpm=r["tpm"],
        group=r["grp"],
        created=r["created"] or 0.0,
        revoked=r["revoked"],
    )
