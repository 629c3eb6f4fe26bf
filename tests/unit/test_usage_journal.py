"""The usage journal: rows and reservations reach the OS before the answer's last byte; a process that dies
leaves them in its segments, and the next start replays them into the store, once, charging reservations of
requests that never finished.

A "crash" here closes the dead log's files without committing or deleting anything (`crash`): what the
kernel keeps of a killed process. The real SIGKILL is in tests/e2e/test_crash_accounting.py.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from faregate.accounting import journal
from faregate.accounting.usage_log import COLUMNS, INTERRUPTED, UsageLog
from faregate.db import open_db
from tests.unit.test_usage_log import record


def crash(log: UsageLog) -> None:
    """What SIGKILL leaves: the segments as written, the owner's lock released, nothing committed."""
    j = log._journal
    if j is not None:
        j.close(remove=False)
    log._journal = None


def restart(store: Path) -> UsageLog:
    return UsageLog(open_db(store), journal_dir=Path(f"{store}.journal"))


def rows(store: Path) -> dict[str, tuple[int, str]]:
    db = open_db(store)
    return {r["id"]: (r["status"], r["cost_usd"]) for r in db.query("select id, status, cost_usd from usage")}


def segments(store: Path) -> list[Path]:
    return sorted(Path(f"{store}.journal").glob("*.jsonl"))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def test_rows_never_committed_are_replayed_once(store: Path) -> None:
    log = restart(store)
    for n in range(5):
        log.record(record(n))
    assert rows(store) == {}, "nothing committed yet: the rows are only in the journal"
    crash(log)
    again = restart(store)
    assert set(rows(store)) == {f"req{n:04d}" for n in range(5)}
    assert again.recovered == (5, 0)
    assert segments(store) == [], "replayed segments are deleted"
    crash(again)
    assert restart(store).recovered == (0, 0) and len(rows(store)) == 5  # idempotent: no duplicates


def test_a_reservation_of_an_unfinished_request_is_charged(store: Path) -> None:
    log = restart(store)
    log.hold(
        "req0001", key_id="key_a", reserved_usd=Decimal("0.25"), created=1.0, endpoint="chat", alias="auto"
    )
    log.hold(
        "req0002", key_id="key_a", reserved_usd=Decimal("0.5"), created=2.0, endpoint="chat", alias="auto"
    )
    log.record(record(2, cost_usd=Decimal("0.01")))  # finished: its real cost, not the reservation
    crash(log)
    again = restart(store)
    assert rows(store) == {"req0001": (500, "0.25"), "req0002": (200, "0.01")}
    assert again.recovered == (2, 1)
    assert again.spend_by_key() == {"key_a": Decimal("0.26")}
    assert again.get("req0001") is not None and again.get("req0001").error == INTERRUPTED  # type: ignore[union-attr]


def test_a_stream_cut_by_the_crash_keeps_the_row_it_had_when_its_answer_went_out(store: Path) -> None:
    log = restart(store)
    log.hold(
        "req0001", key_id="key_a", reserved_usd=Decimal("0.25"), created=1.0, endpoint="chat", alias="auto"
    )
    log.provisional(record(1, cost_usd=Decimal("0.02")))
    log.provisional(record(3, status=200))
    log.record(record(3, status=499))  # the final record supersedes the provisional one
    crash(log)
    restart(store)
    assert rows(store) == {"req0001": (200, "0.02"), "req0003": (499, "0.000123456789012")}


def test_entries_of_requests_in_flight_survive_each_batch(store: Path) -> None:
    """A batch commit deletes its sealed segment, but carries over the entries of unfinished requests."""
    log = restart(store)
    log.hold("req0009", key_id="key_a", reserved_usd=Decimal("1"), created=1.0, endpoint="chat", alias="auto")
    for round_ in range(3):
        for n in range(round_ * 10, round_ * 10 + 10):
            log.record(record(n))
        assert log.flush() == 10
        assert len(segments(store)) == 1, "committed segments are deleted"
    log.provisional(record(9, cost_usd=Decimal("0.3")))
    log.record(record(40))
    assert log.flush() == 1
    crash(log)
    restart(store)
    got = rows(store)
    assert len(got) == 31 and got["req0009"] == (200, "0.3")


def test_a_clean_stop_leaves_no_journal(store: Path) -> None:
    log = restart(store)
    log.record(record(1))
    assert log.flush() == 1
    log.close()
    assert list(Path(f"{store}.journal").iterdir()) == []


def test_a_cut_line_is_skipped_and_a_live_owner_is_left_alone(store: Path) -> None:
    log = restart(store)
    log.record(record(1))
    live = restart(store)  # another worker on the same store: log's owner is alive, its entries are not taken
    assert live.recovered == (0, 0) and rows(store) == {}
    [segment] = segments(store)
    with segment.open("ab") as f:
        f.write(journal.entry(journal.ROW, {"id": "req0002"})[:20])  # killed in the middle of a write
    crash(log)
    again = restart(store)
    assert set(rows(store)) == {"req0001"} and again.recovered == (1, 0)
    live.close()


def test_the_journal_of_a_postgresql_store_is_local_and_names_no_password() -> None:
    from faregate.pipeline.accounts import journal_dir

    url = "postgresql://faregate:s3cret@db.example:5432/faregate"
    where = journal_dir(url)
    assert where is not None and where.parent == Path(".faregate-journal")
    assert "s3cret" not in str(where) and "://" not in str(where)
    assert journal_dir(url) == where and journal_dir(url + "2") != where
    assert journal_dir("/var/lib/faregate.db") == Path("/var/lib/faregate.db.journal")
    assert journal_dir(":memory:") is None


def test_a_journal_of_rows_by_name_is_replayed_too(store: Path) -> None:
    """A segment as an earlier version wrote it (rows as objects, their JSON columns as text, no header)."""
    from faregate.accounting.usage_log import to_row

    directory = Path(f"{store}.journal")
    directory.mkdir()
    rec = record(7)
    (directory / "123-abcd.00000000.jsonl").write_bytes(journal.entry(journal.ROW, to_row(rec)))
    again = restart(store)
    assert again.recovered == (1, 0) and again.get(rec.id) == rec


def test_each_segment_names_the_values_of_its_rows(store: Path) -> None:
    log = restart(store)
    log.record(record(1))
    log.flush()  # a new segment
    log.hold("req0009", key_id="key_a", reserved_usd=Decimal("1"), created=1.0, endpoint="chat", alias="auto")
    [segment] = segments(store)
    header, hold = [orjson.loads(line) for line in segment.read_bytes().splitlines()]
    assert header == ["c", list(COLUMNS)] and hold[0] == "h"
    log.close()


def test_a_stream_that_ended_as_its_closing_events_said_is_journaled_once(store: Path) -> None:
    """Its final row differs from the provisional one only in latency: a replay of the provisional one
    rebuilds the rest, so the final one is not written again; any other difference is."""
    log = restart(store)
    log.provisional(record(1, latency_ms=10.0))
    log.record(record(1, latency_ms=12.5))
    log.provisional(record(2))
    log.record(record(2, status=499))
    [segment] = segments(store)
    tags = [orjson.loads(line)[0] for line in segment.read_bytes().splitlines()]
    assert tags == ["c", "p", "p", "u"]
    crash(log)
    restart(store)
    assert rows(store) == {"req0001": (200, "0.000123456789012"), "req0002": (499, "0.000123456789012")}


def test_a_provisional_row_outlives_its_segment_until_its_final_row_is_committed(store: Path) -> None:
    log = restart(store)
    log.provisional(record(1, latency_ms=10.0))
    log.record(record(2))
    assert log.flush() == 1  # seals the segment; the provisional row is carried into the next
    log.record(record(1, latency_ms=12.5))  # not journaled: the carried provisional row stands for it
    crash(log)
    again = restart(store)
    assert again.recovered == (1, 0) and set(rows(store)) == {"req0001", "req0002"}
