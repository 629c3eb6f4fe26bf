"""`faregate catalog sync|list|diff|export`: the catalog sync from the command line, and what it stored.

Reads the same routes.yaml, catalog folder and store as the server (`--config`, `--catalog`, `--store`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faregate.catalog.model import Catalog, Offering
from faregate.catalog.reconcile import Change
from faregate.cli.common import Register, load_catalog, sources, store_for

MARKS = {"added": "+", "price": "~", "context": "~", "caps": "~", "returned": "+", "retired": "-"}


def register(command: Register) -> None:
    catalog = command(
        "catalog", lambda a: 2, "Sync the catalog from provider listings; list, diff, export it."
    )
    catalog.add_argument(
        "--store",
        type=Path,
        default=None,
        help="store: SQLite file or postgresql:// URL (default as for serve)",
    )
    sub = catalog.add_subparsers(required=True, metavar="ACTION")
    actions: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "sync": (cmd_sync, "fetch every active provider's listing now (keys from the environment)"),
        "list": (cmd_list, "models, offerings and prices: the shipped catalog with what sync stored"),
        "diff": (cmd_diff, "what the last sync of each provider changed"),
        "export": (cmd_export, "write the synced state back to catalog/*.yaml, comments kept"),
    }
    parsers = {}
    for name, (handler, help_) in actions.items():
        p = parsers[name] = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        # Also accepted after the action; SUPPRESS keeps a value given before it.
        p.add_argument(
            "--config", type=Path, default=argparse.SUPPRESS, help="routes.yaml (default ./routes.yaml)"
        )
        p.add_argument(
            "--catalog", type=Path, default=argparse.SUPPRESS, help="catalog folder (default: shipped)"
        )
        p.add_argument(
            "--store",
            type=Path,
            default=argparse.SUPPRESS,
            help="store: SQLite file or postgresql:// URL (default as for serve)",
        )
    for name in ("sync", "list", "diff"):
        parsers[name].add_argument("--provider", default=None, help="only this provider")
    for name in ("list", "diff", "sync"):
        parsers[name].add_argument("--json", action="store_true", help="print JSON instead of a table")
    parsers["export"].add_argument(
        "--out", type=Path, default=None, help="folder to write (default: the catalog folder)"
    )


def _store(args: argparse.Namespace) -> Path:
    return store_for(args)


def _catalogs(args: argparse.Namespace) -> tuple[Catalog, Catalog]:
    """The shipped catalog and the same with the store's synced state over it."""
    from faregate.catalog.overlay import overlay_file

    shipped, issues = load_catalog(args)
    for issue in issues:
        print(issue, file=sys.stderr)
    return shipped, overlay_file(shipped, _store(args))


# -- sync ---------------------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    from faregate.catalog.sync import UnknownSyncProvider

    try:
        results = asyncio.run(_sync(args))
    except SyncSetupError as e:
        print(f"faregate: {e}", file=sys.stderr)
        return 1
    except UnknownSyncProvider:
        print(f"faregate: {args.provider} is not synced here (unknown, disabled, or no key)", file=sys.stderr)
        return 1
    if not results:
        print("faregate: nothing to sync: no provider is active (set their API keys in the environment)")
        return 1
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=2))
    for r in results if not args.json else ():
        run = r.run
        print(
            f"{run.provider}: {run.status}, {run.listed} listed, {run.added} added, {run.changed} changed, "
            f"{run.retired} retired" + (f": {run.error}" if run.error else "")
        )
        for model in run.unpriced:
            print(f"  unpriced (known, not routable): {model}")
    return 0 if all(r.run.status == "ok" for r in results) else 1


class SyncSetupError(Exception):
    pass


async def _sync(args: argparse.Namespace) -> list[Any]:
    import aiohttp

    from faregate.catalog.sync import SyncService, SyncSnapshot, build_snapshot
    from faregate.pipeline.load import load

    store = _store(args)

    def snapshot() -> SyncSnapshot:
        loaded, issues, _ = load(sources(args))
        if loaded is None:
            raise SyncSetupError("cannot load the configuration:\n" + "\n".join(map(str, issues)))
        return build_snapshot(
            loaded.merged.providers,
            loaded.merged.offerings,
            os.environ,
            only=loaded.spec.sync_providers,
            inactive=set(loaded.table.inactive),
            interval_s=0,
            timeout_s=loaded.spec.server.read_timeout_s,
        )

    async with aiohttp.ClientSession() as http:
        return await SyncService(store, http, snapshot).sync(args.provider)


# -- list ---------------------------------------------------------------------------------------------------


def offering_row(o: Offering, shipped: Offering | None) -> dict[str, Any]:
    p = o.price
    status = "retired" if o.retired else ("unpriced" if p is None else "routable")
    source = "sync" if shipped is None else ("synced price" if p != shipped.price else "catalog")
    return {
        "model": o.model_id,
        "provider": o.provider,
        "upstream_id": o.upstream_id,
        "kind": o.kind,
        "input": None if p is None else format(p.input, "f"),
        "output": None if p is None else format(p.output, "f"),
        "cached_input": None if p is None or p.cached_input is None else format(p.cached_input, "f"),
        "context": o.context,
        "caps": sorted(o.caps),
        "status": status,
        "source": source,
    }


def cmd_list(args: argparse.Namespace) -> int:
    shipped, synced = _catalogs(args)
    before = {o.key: o for o in shipped.offerings}
    rows = [
        offering_row(o, before.get(o.key))
        for o in sorted(synced.offerings, key=lambda o: (o.model_id, o.provider))
        if args.provider in (None, o.provider)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(
        Column("model", no_wrap=True),
        "provider",
        Column("upstream id", no_wrap=True),
        "in $/1M",
        "out $/1M",
        "context",
        "caps",
        "status",
        "source",
    )
    for r in rows:
        table.add_row(
            r["model"],
            r["provider"],
            r["upstream_id"],
            r["input"] or "-",
            r["output"] or "-",
            str(r["context"]),
            ",".join(r["caps"]),
            r["status"],
            r["source"],
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


# -- diff ---------------------------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from faregate.catalog.store import CatalogStore
    from faregate.db import open_db, store_exists

    path = _store(args)
    if not store_exists(path):
        print(f"no sync has run yet: {path} does not exist (try `faregate catalog sync`)")
        return 0
    db = open_db(path)
    try:
        store = CatalogStore(db)
        runs = {p: r for p, r in store.last_runs().items() if args.provider in (None, p)}
        changes = {p: store.changes(r.id) for p, r in runs.items() if r.id is not None}
    finally:
        db.close()
    if args.json:
        out = [{**r.as_json(), "changes": [_change(c) for c in changes.get(p, [])]} for p, r in runs.items()]
        print(json.dumps(out, indent=2))
        return 0
    if not runs:
        print("no sync has run yet: try `faregate catalog sync`")
    for provider, run in runs.items():
        print(
            f"{provider}: run {run.id} {run.status} at {run.finished}: {run.added} added, {run.changed} changed, "
            f"{run.retired} retired" + (f" ({run.error})" if run.error else "")
        )
        for c in changes.get(provider, []):
            what = c.kind if c.kind != "added" else f"added, {_price_text(c.new)}"
            detail = (
                f" {_price_text(c.old)} -> {_price_text(c.new)}"
                if c.kind in ("price", "context", "caps")
                else ""
            )
            print(f"  {MARKS[c.kind]} {c.model_id or c.upstream_id} ({c.upstream_id}): {what}{detail}")
    return 0


def _change(c: Change) -> dict[str, Any]:
    return {"change": c.kind, "upstream_id": c.upstream_id, "model": c.model_id, "old": c.old, "new": c.new}


def _price_text(value: str | None) -> str:
    """A stored price JSON as `in 0.15 / out 0.6 $/1M`; other values as they are."""
    if value is None:
        return "none"
    try:
        data = json.loads(value)
    except ValueError:
        return value
    if isinstance(data, dict):
        return " / ".join(f"{k} {v}" for k, v in data.items()) + " $/1M"
    return value


# -- export -------------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from faregate.catalog.export import export_catalog
    from faregate.catalog.files import load_catalog_dir
    from faregate.catalog.store import CatalogStore
    from faregate.db import open_db, store_exists
    from faregate.paths import catalog_dir

    folder = Path(getattr(args, "catalog", None) or os.environ.get("FAREGATE_CATALOG_DIR") or catalog_dir())
    shipped, synced = _catalogs(args)
    retired: dict[tuple[str, str], str] = {}
    path = _store(args)
    if store_exists(path):
        db = open_db(path)
        try:
            rows = CatalogStore(db).offerings()
        finally:
            db.close()
        retired = {(r.provider, r.upstream_id): r.retired_at[:10] for r in rows if r.retired_at}
    report = export_catalog(folder, args.out or folder, shipped, synced, retired)
    for line in report.updated:
        print(f"  {line}")
    for line in report.skipped:
        print(f"  skipped {line}", file=sys.stderr)
    _, issues = load_catalog_dir(args.out or folder)
    for issue in issues:
        print(issue, file=sys.stderr)
    print(f"wrote {len(report.written)} files to {args.out or folder}: {len(report.updated)} changes")
    return 1 if issues else 0
