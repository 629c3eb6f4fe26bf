"""The price audit on a store built with known prices, history and usage rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import UsageLog
from faregate.canonical import Usage
from faregate.catalog.store import CatalogStore, now_iso
from faregate.cli import main
from faregate.db import open_db
from faregate.paths import schema_path

CATALOG = """
provider: acme
api: openai
base_url: http://127.0.0.1:9/v1
api_key_env: ACME_KEY
data_collection: deny
listing: openai
source: {url: https://example.com/pricing, taken: "2026-11-01"}
offerings:
  acme/small: {id: small, input: 1, output: 2, context: 100000}
  acme/big: {id: big, input: 10, output: 20, context: 100000}
  acme/freebie: {id: freebie, input: 0, output: 0, context: 100000}
"""

ROUTES = """
version: 1
providers:
  acme: {}
models:
  acme/extra: {offerings: {acme: {id: extra, context: 1000}}}
aliases: {auto: default}
routes:
  default:
    - name: all
      use: [acme/small, acme/big]
savings: {baseline: acme/big}
"""

NOW = time.time()


def iso(days_ago: float) -> str:
    return now_iso(datetime.now(UTC) - timedelta(days=days_ago))


def record(rid: str, days_ago: float, channel: str, usage: Usage, cost: str, baseline: str) -> RequestRecord:
    return RequestRecord(
        id=rid,
        created=NOW - days_ago * 86400,
        endpoint="chat",
        requested="auto",
        status=200,
        key_id="key_a",
        route="default",
        rule="all",
        model_id="acme/" + channel.split(":")[1],
        provider="acme",
        channel=channel,
        usage=usage,
        cost_usd=Decimal(cost),
        baseline_cost_usd=Decimal(baseline),
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    cat = tmp_path / "catalog"
    cat.mkdir()
    (cat / "acme.yaml").write_text(CATALOG)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    store = tmp_path / "store.db"
    db = open_db(store)
    CatalogStore(db)  # creates the catalog tables
    db.table("offerings").insert(
        {
            "provider": "acme",
            "upstream_id": "small",
            "model_id": "acme/small",
            "first_seen": iso(20),
            "last_seen": iso(0),
        }
    )
    rows: list[dict[str, object]] = [
        {
            "provider": "acme",
            "upstream_id": "small",
            "input": "1",
            "output": "2",
            "valid_from": iso(20),
            "valid_to": iso(5),
        },
        {
            "provider": "acme",
            "upstream_id": "small",
            "input": "1.5",
            "output": "2",
            "valid_from": iso(5),
            "valid_to": None,
        },
    ]
    db.table("prices").insert_all(rows)
    log = UsageLog(db)
    u = Usage(1000, 500)
    log.record(record("r-old-price", 10, "acme:small", u, "0.002", "0.02"))  # (1000*1 + 500*2) / 1e6
    log.record(record("r-new-price", 1, "acme:small", u, "0.0025", "0.02"))  # (1000*1.5 + 500*2) / 1e6
    log.record(record("r-wrong", 1, "acme:big", Usage(100, 100), "0.999", "0.003"))  # should be 0.003
    log.flush()
    db.close()
    return cat, routes, store


def run(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], *extra: str
) -> tuple[int, dict[str, Any]]:
    cat, routes, store = setup
    code = main(
        ["audit", "--config", str(routes), "--catalog", str(cat), "--store", str(store), "--json", *extra]
    )
    return code, json.loads(capsys.readouterr().out)


def test_each_section_finds_what_was_planted(capsys, setup) -> None:
    code, out = run(capsys, setup)
    s = out["sections"]
    unpriced = {(r["model"], r["issue"]) for r in s["unpriced"]["rows"]}
    assert unpriced == {
        ("acme/extra", "no price"),
        ("acme/freebie", "zero price at a provider that is not free"),
    }
    assert s["drift"]["rows"] == [
        {
            "model": "acme/small",
            "provider": "acme",
            "field": "input",
            "declared": "1",
            "synced": "1.5",
            "change_pct": "50.00",
        }
    ]
    assert [(r["old"], r["new"], r["change_pct"]) for r in s["changes"]["rows"]] == [("1", "1.5", "50.00")]
    billing = s["billing"]["rows"]
    assert [(r["request_id"], r["recorded"], r["expected"]) for r in billing] == [
        ("r-wrong", "0.999", "0.003")
    ]
    assert s["billing"]["notes"] == ["3 answered requests recomputed"]
    routes = {(r["alias"], r["shape"]): r for r in s["routes"]["rows"]}
    short = routes[("auto", "short-chat")]
    # 200 prompt + 150 completion tokens at acme/small's synced price (1.5 / 2 per 1M), times 1000
    assert short["channel"] == "acme:small"
    assert Decimal(short["cost_per_1k"]) == (200 * Decimal("1.5") + 150 * 2) / 1000
    assert Decimal(short["baseline_per_1k"]) == (200 * 10 + 150 * 20) / Decimal(1000)
    # acme has no model with tools or vision: those shapes have no channel, and that is a finding
    assert {(r["shape"], r["issue"]) for r in s["routes"]["rows"] if r["issue"]} == {
        ("with-tools", "no channel"),
        ("with-image", "no channel"),
    }
    by_day = [r for r in s["spend"]["rows"] if r["by"] == "key"]
    assert by_day == [
        {
            "by": "key",
            "value": "key_a",
            "requests": 3,
            "tokens": 3200,
            "spend_usd": "1.0035",
            "baseline_usd": "0.043",
            "saved_usd": "-0.9605",
            "saved_pct": "-2233.72",
        }
    ]
    assert code == 1 and set(out["failed"]) == {"unpriced", "drift", "billing"}


def test_output_matches_its_schema(capsys, setup) -> None:
    _, out = run(capsys, setup)
    schema = json.loads(schema_path("audit").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(out, schema)


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [
        ("none", 0),
        ("spend,changes", 1),
        ("spend", 0),
        ("routes", 1),
        ("changes", 1),
        ("billing", 1),
        ("unpriced", 1),
    ],
)
def test_fail_on_chooses_what_fails(capsys, setup, fail_on: str, code: int) -> None:
    got, out = run(capsys, setup, "--fail-on", fail_on)
    assert got == code
    assert bool(out["failed"]) == bool(code)


def test_tolerance_hides_small_drift(capsys, setup) -> None:
    _, out = run(capsys, setup, "--tolerance", "60", "--fail-on", "drift")
    assert out["sections"]["drift"]["findings"] == 0 and out["failed"] == []


def test_unknown_fail_on_section_is_an_error(capsys, setup) -> None:
    cat, routes, store = setup
    assert (
        main(
            [
                "audit",
                "--config",
                str(routes),
                "--catalog",
                str(cat),
                "--store",
                str(store),
                "--fail-on",
                "nope",
            ]
        )
        == 2
    )


def test_tables_csv_and_plot(capsys, setup, tmp_path: Path) -> None:
    cat, routes, store = setup
    base = [
        "audit",
        "--config",
        str(routes),
        "--catalog",
        str(cat),
        "--store",
        str(store),
        "--fail-on",
        "none",
    ]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "Usage-log costs recomputed" in text and "r-wrong" in text
    assert main([*base, "--csv", str(tmp_path / "csv"), "--plot", str(tmp_path / "spend.png")]) == 0
    assert (tmp_path / "csv" / "billing.csv").read_text().splitlines()[1].startswith("r-wrong,")
    assert (tmp_path / "spend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_runs_the_same_audit(setup) -> None:
    import subprocess
    import sys

    cat, routes, store = setup
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "audit_prices.py"),
            "--config",
            str(routes),
            "--catalog",
            str(cat),
            "--store",
            str(store),
            "--json",
            "--section",
            "billing",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["failed"] == ["billing"]


def test_spend_is_grouped_by_app() -> None:
    from dataclasses import replace

    from faregate.audit import checks

    base = record("r1", 1, "acme:small", Usage(10, 5), "0.5", "1.0")
    rows = [replace(base, app="My App"), replace(base, id="r2", app="My App"), replace(base, id="r3")]
    section = checks.spend(rows)
    apps = {r["value"]: r for r in section.rows if r["by"] == "app"}
    assert set(apps) == {"My App", "(none)"}
    assert apps["My App"]["requests"] == 2 and Decimal(apps["My App"]["spend_usd"]) == Decimal("1.0")
