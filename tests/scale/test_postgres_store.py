"""The PostgreSQL store behaves as the SQLite one: the store modules' own tests, run again on PostgreSQL,
and the command line (keys) against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import faregate
import tests.server.test_responses_store as responses_tests
import tests.unit.test_catalog_store as catalog_tests
import tests.unit.test_usage_log as usage_tests
from faregate.accounting.usage_log import UsageLog
from faregate.db import open_db

USAGE_TESTS = [
    name
    for name in dir(usage_tests)
    if name.startswith("test_") and "log" in usage_tests.__dict__[name].__code__.co_varnames[:1]
]
CATALOG_TESTS = [
    "test_price_history_closes_the_old_interval_and_opens_a_new_one",
    "test_runs_are_recorded_and_the_last_per_provider_is_found",
]


@pytest.mark.parametrize("name", USAGE_TESTS)
async def test_usage_log_on_postgres(name: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = UsageLog(open_db(postgres_url), batch_size=5, interval_s=60.0)
    fn: Any = getattr(usage_tests, name)
    args = {"log": log, "monkeypatch": monkeypatch}
    result = fn(**{k: v for k, v in args.items() if k in fn.__code__.co_varnames[: fn.__code__.co_argcount]})
    if hasattr(result, "__await__"):
        await result


@pytest.mark.parametrize("name", [*CATALOG_TESTS, "responses:test_retention_and_purge"])
def test_store_modules_on_postgres(
    name: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module: Any = catalog_tests
    if name.startswith("responses:"):
        module, name = responses_tests, name.split(":", 1)[1]
    monkeypatch.setattr(module, "open_db", lambda _path: open_db(postgres_url))
    getattr(module, name)(tmp_path)


def faregate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PYTHONPATH": str(Path(faregate.__file__).resolve().parents[1]),
        "PATH": "/usr/bin:/bin",
        "FAREGATE_CACHE_DIR": os.environ["FAREGATE_CACHE_DIR"],  # the test run's, not ~/.cache
    }
    return subprocess.run(
        [sys.executable, "-m", "faregate.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_keys_through_the_cli_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"version: 1\nstore: {postgres_url}\n")  # `store:` at the top of routes.yaml
    made = faregate_cli(
        "keys", "create", "--label", "team", "--budget", "2.5", "--rpm", "7", "--config", str(routes)
    )
    assert made.returncode == 0, made.stderr
    listed = faregate_cli("keys", "list", "--json", "--store", postgres_url)
    assert listed.returncode == 0, listed.stderr
    (key,) = json.loads(listed.stdout)
    assert (key["label"], key["budget_usd"], key["rpm"]) == ("team", "2.5", 7)
    assert faregate_cli("keys", "revoke", key["id"], "--store", postgres_url).returncode == 0
    (after,) = json.loads(faregate_cli("keys", "list", "--json", "--store", postgres_url).stdout)
    assert after["status"] == "revoked"


def test_a_postgresql_store_made_without_the_indexes_gets_them(postgres_url: str) -> None:
    from faregate.accounting.usage_log import COLUMNS

    db = open_db(postgres_url)
    db.table("usage").create(dict(COLUMNS), pk="id")
    UsageLog(db)
    UsageLog(db)
    rows = db.query(
        "select indexname from pg_indexes where tablename = 'usage' and schemaname = current_schema()"
    )
    names = {r["indexname"] for r in rows}
    assert {"idx_usage_key_id_created", "idx_usage_created"} <= names
