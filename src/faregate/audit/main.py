"""Gather routes.yaml, the catalog store and the usage log, run the checks, print, exit non-zero on findings."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import faregate.audit.checks as checks
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import UsageLog, days_ago
from faregate.audit.model import DEFAULT_FAIL_ON, SECTIONS, AuditResult, Section
from faregate.audit.shapes import BUILT_IN, Shape, load_shapes
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.merge import merge
from faregate.catalog.model import Catalog, Price
from faregate.catalog.overlay import overlay
from faregate.catalog.store import CatalogStore, PriceRow, now_iso
from faregate.config.build import load_routes
from faregate.config.model import RoutesSpec
from faregate.db import open_db, shown, store_exists, store_path
from faregate.paths import catalog_dir
from faregate.routing.compile import compile_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        type=Path,
        default=None,
        help="store: a SQLite file or a postgresql:// URL (default: FAREGATE_STORE, store:, ./faregate.db)",
    )
    p.add_argument("--days", type=float, default=30, help="period for price changes and spend (default 30)")
    p.add_argument(
        "--tolerance", default="0", help="percent a declared price may differ from the synced one (default 0)"
    )
    p.add_argument(
        "--shapes", type=Path, default=None, help="YAML/JSON list of request shapes for the routes check"
    )
    p.add_argument(
        "--section", action="append", choices=SECTIONS, help="run only these sections (repeatable)"
    )
    p.add_argument(
        "--fail-on",
        default=",".join(DEFAULT_FAIL_ON),
        help=f"comma-separated sections whose findings fail the run (default {','.join(DEFAULT_FAIL_ON)}; 'none' for never)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (schemas/audit.schema.json)")
    out.add_argument(
        "--csv", type=Path, default=None, metavar="DIR", help="write one CSV per section into DIR"
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="chart of spend against the baseline by day",
    )


def run(args: argparse.Namespace) -> int:
    config = Path(args.config or os.environ.get("FAREGATE_CONFIG") or "routes.yaml")
    spec, _, issues = load_routes(config)
    if spec is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        return 2
    catalog, issues = load_catalog_dir(
        args.catalog or Path(os.environ.get("FAREGATE_CATALOG_DIR") or catalog_dir())
    )
    if issues:
        for issue in issues:
            print(issue, file=sys.stderr)
        return 2
    try:
        tolerance = Decimal(args.tolerance)
    except InvalidOperation:
        print(f"faregate audit: --tolerance must be a number, not {args.tolerance!r}", file=sys.stderr)
        return 2
    fail_on = tuple(s for s in args.fail_on.split(",") if s and s != "none")
    unknown = [s for s in fail_on if s not in SECTIONS]
    if unknown:
        print(
            f"faregate audit: unknown section in --fail-on: {', '.join(unknown)} (known: {', '.join(SECTIONS)})",
            file=sys.stderr,
        )
        return 2
    store = store_path(args.store, spec.server.store)
    shapes = load_shapes(args.shapes) if args.shapes else BUILT_IN
    result = audit(
        spec,
        catalog,
        store,
        config,
        days=args.days,
        tolerance=tolerance,
        shapes=shapes,
        only=tuple(args.section or SECTIONS),
        fail_on=fail_on,
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    elif args.csv:
        write_csv(result, args.csv)
    else:
        from faregate.audit.report import print_tables

        print_tables(result)
    if args.plot:
        from faregate.audit.plot import plot_spend

        plot_spend(result, args.plot)
    return 1 if result.failed else 0


def audit(
    spec: RoutesSpec,
    catalog: Catalog,
    store: Path,
    config: Path,
    *,
    days: float,
    tolerance: Decimal,
    shapes: Sequence[Shape],
    only: tuple[str, ...],
    fail_on: tuple[str, ...],
) -> AuditResult:
    """Run the chosen checks. The store may not exist yet: then only the price tables are audited."""
    declared = merge(spec, catalog)
    db = open_db(store) if store_exists(store) else None
    synced: dict[tuple[str, str], Price] = {}
    history: list[PriceRow] = []
    records: list[RequestRecord] = []
    effective = declared
    cstore = None
    if db is not None:
        cstore = CatalogStore(db)
        synced = cstore.current_prices()
        history = [row for o in cstore.offerings() for row in cstore.history(o.provider, o.upstream_id)]
        effective = merge(spec, overlay(catalog, db))
        records = list(UsageLog(db).rows(since=days_ago(days)))
    keys = {var: "audit" for p in effective.providers.values() for var in p.api_key_env}
    table = compile_table(spec, effective, keys).table
    declared_price = {(o.provider, o.upstream_id): o.price for o in effective.offerings}

    def price_at(provider: str, upstream_id: str, created: float) -> Price | None:
        if cstore is not None:
            found = cstore.price_at(provider, upstream_id, datetime.fromtimestamp(created, UTC))
            if found is not None:
                return found
        return declared_price.get((provider, upstream_id))

    model_of = {(o.provider, o.upstream_id): o.model_id for o in effective.offerings}
    since = now_iso(datetime.now(UTC) - timedelta(days=days))
    makers = {
        "unpriced": lambda: checks.unpriced(effective.offerings, effective.providers),
        "drift": lambda: checks.drift(declared.offerings, synced, tolerance),
        "changes": lambda: checks.changes(history, since, model_of),
        "billing": lambda: checks.billing(records, price_at),
        "routes": lambda: checks.routes(table, shapes),
        "spend": lambda: checks.spend(records),
    }
    sections: list[Section] = [makers[name]() for name in SECTIONS if name in only]
    return AuditResult(now_iso(), str(config), shown(store), tuple(sections), fail_on)


def write_csv(result: AuditResult, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in result.sections:
        with (folder / f"{s.name}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(s.columns), extrasaction="ignore")
            w.writeheader()
            w.writerows(s.rows)
    print(f"wrote {len(result.sections)} CSV files to {folder}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="audit_prices", description="Audit faregate's prices and recorded costs."
    )
    p.add_argument("--config", type=Path, default=None, help="routes.yaml (default ./routes.yaml)")
    p.add_argument(
        "--catalog", type=Path, default=None, help="catalog folder (default: the shipped catalog/)"
    )
    add_arguments(p)
    return run(p.parse_args(argv))
