"""The dashboard's usage-log pages read in SQL (`accounting/usage_pages.py`), on SQLite and on PostgreSQL:
each filter, the page's rows newest first with the count, the viewer's scope and the filter lists, and only
the rows a page shows are read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import faregate.accounting.usage_pages as usage_pages
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import UsageLog, from_row
from faregate.accounting.usage_pages import UsageQuery, filter_choices, read_page
from faregate.db import open_db
from faregate.ui import views
from tests.unit.test_ui_views import rec


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UsageLog]:
    store: Any = (
        tmp_path / "store.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    usage = UsageLog(open_db(store), batch_size=1000, interval_s=60.0)
    yield usage
    usage.close()


def write(log: UsageLog, records: list[RequestRecord]) -> None:
    for r in records:
        log.record(r)
    log.flush()


def ids(log: UsageLog, size: int = 50, page: int = 1, **filters: Any) -> list[str]:
    q = views.usage_query(views.UsageFilters.parse(filters), None, True)
    return [r.id for r in read_page(log, q, page, size).rows]


def test_each_filter_keeps_its_rows_newest_first(log: UsageLog) -> None:
    write(
        log,
        [
            rec(0, model_id="a/x", provider="p1"),
            rec(1, model_id="b/y", provider="p2", status=429, key_id=None),
            rec(2, ago_days=3, model_id="a/x", provider="p1", rule="vision"),
        ],
    )
    assert ids(log) == ["r0", "r1", "r2"]
    assert ids(log, model="a/x") == ["r0", "r2"]
    assert ids(log, status="error") == ["r1"]
    assert ids(log, status="ok") == ["r0", "r2"]
    assert ids(log, status="429") == ["r1"]
    assert ids(log, status="oops") == []
    assert ids(log, key="(anonymous)") == ["r1"]
    assert ids(log, key="key_a") == ["r0", "r2"]
    assert ids(log, rule="vision") == ["r2"]
    assert ids(log, since="2026-12-01") == ["r0", "r1"]
    assert ids(log, until="2026-11-30") == ["r2"]
    assert ids(log, provider="p2", model="a/x") == []
    q = views.usage_query(views.UsageFilters(), None, True)
    assert filter_choices(log, q) == {
        "key": ["(anonymous)", "key_a"],
        "model": ["a/x", "b/y"],
        "provider": ["p1", "p2"],
        "rule": ["everything-else", "vision"],
    }


def test_pages_are_read_in_sql(log: UsageLog, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [rec(n) for n in range(120)]
    records.append(rec(0, id="r7b", created=records[7].created))  # a tie on `created`: the larger id first
    write(log, records)
    built: list[str] = []
    real = from_row

    def counted(row: dict[str, Any]) -> RequestRecord:
        built.append(row["id"])
        return real(row)

    monkeypatch.setattr(usage_pages, "from_row", counted)
    q = views.usage_query(views.UsageFilters(), None, True)
    p = read_page(log, q, 3, 50)
    assert (p.page, p.pages, p.total, len(p.rows)) == (3, 3, 121, 21)
    assert built == [r.id for r in p.rows]  # only the page's rows are read and built
    newest = sorted(records, key=lambda r: (r.created, r.id), reverse=True)
    assert [r.id for r in p.rows] == [r.id for r in newest[100:]]
    assert ids(log, 50, 1)[:10] == [r.id for r in newest[:10]]
    first = ids(log, 50, 1)
    assert first.index("r7b") == first.index("r7") - 1
    assert read_page(log, q, 99, 50).page == 3  # past the end: the last page
    assert read_page(log, q, 0, 50).page == 1
    assert read_page(log, UsageQuery(all_keys=True, model="none/such"), 1, 50).pages == 1


def test_a_key_sees_only_its_own_rows(log: UsageLog) -> None:
    write(log, [rec(0), rec(1, key_id="key_b"), rec(2, key_id=None), rec(3, key_id="key_b", model_id="c/z")])
    mine = UsageQuery(key_id="key_b")
    assert [r.id for r in read_page(log, mine, 1, 50).rows] == ["r1", "r3"]
    assert filter_choices(log, mine)["model"] == ["c/z", "openai/gpt-6-luna"]
    assert filter_choices(log, mine)["key"] == ["key_b"]
    anonymous = UsageQuery(key_id=None)
    assert [r.id for r in read_page(log, anonymous, 1, 50).rows] == ["r2"]
    assert read_page(log, UsageQuery(key_id="key_b", key="key_a"), 1, 50).total == 0  # never another key's
