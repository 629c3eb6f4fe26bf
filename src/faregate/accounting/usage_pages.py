"""The dashboard's usage-log pages as SQL: the filters in a `where`, newest first on (created, id), one page
by LIMIT/OFFSET with its count, and the values each filter can take: on SQLite and PostgreSQL alike (both
take this SQL; `db/postgres.py` turns its `?` into `%s`). Nothing is loaded that the page does not show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import UsageLog, from_row

ANONYMOUS: Final = "(anonymous)"  # how a request made without a key is named in the key filter
# filter name -> usage column (exact matches)
COLUMNS: Final[Mapping[str, str]] = MappingProxyType(
    {"model": "model", "provider": "provider", "rule": "rule"}
)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Whose rows (`all_keys`, else only `key_id`'s: None is the anonymous requests) and which of them."""

    key_id: str | None = None
    all_keys: bool = False
    key: str = ""  # a key id, or ANONYMOUS
    model: str = ""
    provider: str = ""
    rule: str = ""
    status: str = ""  # "", "ok" (< 400), "error" (>= 400) or an exact code
    since: float | None = None
    until: float | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class UsagePage:
    rows: tuple[RequestRecord, ...]
    page: int  # 1-based, clamped to the pages there are
    pages: int
    total: int


def scope_where(q: UsageQuery) -> tuple[list[str], list[Any]]:
    """The viewer's rows since `since`: what the filter lists are drawn from."""
    where: list[str] = ["created >= ?"]
    args: list[Any] = [q.since or 0.0]
    if not q.all_keys:
        if q.key_id is None:
            where.append("key_id is null")
        else:
            where.append("key_id = ?")
            args.append(q.key_id)
    return where, args


def filter_where(q: UsageQuery) -> tuple[str, list[Any]]:
    """The `where` of every filter, with its arguments. Pure."""
    where, args = scope_where(q)
    if q.key == ANONYMOUS:
        where.append("key_id is null")
    elif q.key:
        where.append("key_id = ?")
        args.append(q.key)
    for name, column in COLUMNS.items():
        value = getattr(q, name)
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if q.status == "ok":
        where.append("status < 400")
    elif q.status == "error":
        where.append("status >= 400")
    elif q.status:
        if not q.status.isdigit():
            where.append("1 = 0")  # no status is spelled that way
        else:
            where.append("status = ?")
            args.append(int(q.status))
    if q.until is not None:
        where.append("created < ?")
        args.append(q.until)
    return " and ".join(where), args


def read_page(log: UsageLog, q: UsageQuery, page: int, size: int) -> UsagePage:
    """One page of the rows the filters keep, newest first (ties by id), and how many there are."""
    log.flush()  # what was answered is on the page
    where, args = filter_where(q)
    total = int(next(log.db.query(f"select count(*) n from usage where {where}", args))["n"])
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    rows = log.db.query(
        f"select * from usage where {where} order by created desc, id desc limit ? offset ?",
        [*args, size, (page - 1) * size],
    )
    return UsagePage(tuple(from_row(r) for r in rows), page, pages, total)


def filter_choices(log: UsageLog, q: UsageQuery) -> dict[str, list[str]]:
    """Every value each filter can take among the viewer's rows since `since` (the filter form's lists)."""
    where, args = scope_where(q)
    clause = " and ".join(where)
    out: dict[str, list[str]] = {}
    keys = log.db.query(f"select distinct key_id from usage where {clause}", args)
    out["key"] = sorted(r["key_id"] or ANONYMOUS for r in keys)
    for name, column in COLUMNS.items():
        found = log.db.query(
            f"select distinct {column} v from usage where {clause} and {column} is not null and {column} <> ''",
            args,
        )
        out[name] = sorted(r["v"] for r in found)
    return out
