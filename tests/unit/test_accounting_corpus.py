"""The accounting path makes of a corpus of requests exactly what it made before it was restructured for
issue 16: the same usage-log rows (however they reach the store: a batch commit, or a journal replayed
after a crash), the same traces, the same `x-faregate` extras and `X-Faregate-*` headers, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from faregate.accounting.usage_log import COLUMNS, UsageLog, from_row, to_row
from faregate.db import open_db
from tests.unit.accounting_corpus import priced, priced_json, records

GOLDEN = Path(__file__).parent.parent / "data" / "accounting" / "corpus.json"


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data


def stored(db_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: {name: r[name] for name in COLUMNS} for r in db_rows}


def test_rows_and_traces_are_what_they_were(golden: dict[str, Any]) -> None:
    recs = records()
    assert len(recs) == len(golden["records"])
    for rec, want in zip(recs, golden["records"], strict=True):
        assert to_row(rec) == want["row"], rec.id
        assert list(to_row(rec)) == list(want["row"])
        assert orjson.dumps(rec.as_json()).decode() == want["trace"], rec.id
        assert from_row(to_row(rec)) == rec


def test_committed_rows_are_what_they_were(tmp_path: Path, golden: dict[str, Any]) -> None:
    log = UsageLog(open_db(tmp_path / "store.db"), journal_dir=tmp_path / "store.db.journal")
    for rec in records():
        log.record(rec)
    log.flush()
    got = stored(list(log.db.query("select * from usage")))
    assert got == {want["row"]["id"]: want["row"] for want in golden["records"]}
    assert [log.get(r.id) for r in records()] == records()
    log.close()


def test_replayed_rows_are_what_they_were(tmp_path: Path, golden: dict[str, Any]) -> None:
    store, journal = tmp_path / "store.db", tmp_path / "store.db.journal"
    log = UsageLog(open_db(store), journal_dir=journal)
    recs = records()
    for rec in recs[:40]:
        log.provisional(rec)  # superseded by the final rows
    for rec in recs:
        log.record(rec)
    assert log._journal is not None
    log._journal.close(remove=False)  # killed: nothing committed, the journal left behind
    log._journal = None
    again = UsageLog(open_db(store), journal_dir=journal)
    assert again.recovered == (len(recs), 0)
    got = stored(list(again.db.query("select * from usage")))
    assert got == {want["row"]["id"]: want["row"] for want in golden["records"]}


def test_priced_answers_are_what_they_were(golden: dict[str, Any]) -> None:
    answers = priced()
    assert len(answers) == len(golden["priced"])
    for p, want in zip(answers, golden["priced"], strict=True):
        assert priced_json(p) == want, p.exchange.id
