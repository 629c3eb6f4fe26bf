"""The `faregate` commands that need the server or the store (serve, keys, catalog, audit)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from faregate.cli.catalog import register as register_catalog
from faregate.server.supervisor import worker_count

if TYPE_CHECKING:
    from faregate.accounting.keys import ApiKey
    from faregate.config.model import RoutesSpec
    from faregate.server.options import ServeOptions
from faregate.cli.common import Register, config_path, store_for


def register(command: Register) -> None:
    serve = command("serve", cmd_serve, "Run the gateway.")
    serve.add_argument(
        "--host", default=None, help="address to bind (default: routes.yaml server.host, 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=None, help="port (default: routes.yaml server.port, 8080)")
    serve.add_argument(
        "--store",
        type=Path,
        default=None,
        help="store: a SQLite file or a postgresql:// URL (default: FAREGATE_STORE, store:, ./faregate.db)",
    )
    serve.add_argument(
        "--no-store",
        action="store_true",
        help="keep no store: no keys, no usage log (traces in memory only), no catalog sync; auth must be open",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="run the shipped routes.yaml (unless --config is given) against the built-in provider simulator",
    )
    serve.add_argument(
        "--workers",
        default="1",
        metavar="N|auto",
        help="worker processes on one port (default 1; auto: one per core); more than one needs shared"
        " state (state: redis://...) for keys with limits",
    )
    keys = command("keys", lambda a: 2, "Manage API keys: create, list, revoke, update.")
    sub = keys.add_subparsers(required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--label", required=True)
    _limit_args(create)
    create.set_defaults(handler=cmd_keys_create)
    lst = sub.add_parser("list", help="list keys (never the secrets)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_keys_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=cmd_keys_revoke)
    update = sub.add_parser(
        "update",
        help="change a key's label or limits (--rpm/--tpm 0 clears a limit, --budget none the budget)",
    )
    update.add_argument("key_id")
    update.add_argument("--label", default=None)
    _limit_args(update)
    update.set_defaults(handler=cmd_keys_update)
    audit = command("audit", cmd_audit, "Audit prices and recorded costs; non-zero exit on findings.")
    from faregate.audit.main import add_arguments

    add_arguments(audit)
    register_catalog(command)  # catalog sync|list|diff|export
    for p in (create, lst, revoke, update):
        p.add_argument("--config", type=Path, default=None, help="routes.yaml (to find its server.store)")
        p.add_argument(
            "--store",
            type=Path,
            default=None,
            help="store: SQLite file or postgresql:// URL (default as for serve)",
        )


def _limit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", default=None, help="budget in USD (e.g. 5 or 0.25)")
    p.add_argument("--rpm", type=_count, default=None, help="requests per minute (0: no limit)")
    p.add_argument("--tpm", type=_count, default=None, help="tokens per minute (0: no limit)")
    p.add_argument("--group", default=None, help="key group that rules can match (when: key_group)")


def cmd_audit(args: argparse.Namespace) -> int:
    from faregate.audit.main import run

    return run(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from faregate.config.build import read_routes, strict
    from faregate.paths import catalog_dir, default_routes
    from faregate.server.options import ServeOptions
    from faregate.server.serve import run
    from faregate.settings import Settings, SettingsError

    try:
        settings = Settings.read()
    except SettingsError as e:
        print(f"faregate: {e}")
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = config_path(args)
    if args.demo and args.config is None and "FAREGATE_CONFIG" not in os.environ:
        config = default_routes()
    read = read_routes(config)  # once: the server builds its first table of this reading
    spec, _, issues = strict(read)
    if spec is None:
        for issue in issues:
            print(issue)
        return 1
    options = ServeOptions(
        host=args.host or settings.host or spec.server.host,
        port=args.port if args.port is not None else (settings.port or spec.server.port),
        auth=settings.auth or spec.auth,
        admin_key=settings.admin_key,
        max_body_bytes=spec.server.max_body_bytes,
        state=spec.state,
    )
    from faregate.db import store_path

    store = None if args.no_store else store_path(args.store, spec.server.store)
    if store is None and options.auth == "keys":
        print("faregate: auth: keys needs a store for its keys (drop --no-store)")
        return 1
    folder = args.catalog or settings.catalog_dir or catalog_dir()
    env = {**provider_env_file(), **os.environ}  # provider keys may sit in .env too; the environment wins
    from faregate.server.workers import ID_ENV, WorkerIdentity

    try:
        workers = worker_count(args.workers)
    except ValueError as e:
        print(f"faregate: {e}")
        return 2
    if workers > 1 and ID_ENV not in os.environ:
        return _supervise(args, workers, config, Path(folder), options, spec, store, env)
    options = replace(options, worker=WorkerIdentity.from_env(os.environ))
    return run(config, Path(folder), options, env, demo=args.demo, store=store, routes=read)


def _supervise(
    args: argparse.Namespace,
    workers: int,
    config: Path,
    folder: Path,
    options: ServeOptions,
    spec: RoutesSpec,
    store: Path | None,
    env: dict[str, str],
) -> int:
    """`serve --workers N`: refuse what N processes would get wrong, then run the supervisor."""
    import sys

    from faregate.db import location
    from faregate.server.supervisor import supervise
    from faregate.state.open import state_url

    if state_url(spec.state, env) is None and store is not None:
        limited = [k.id for k in _keys_with_limits(store)]
        if limited:
            shown = ", ".join(limited[:5]) + (" ..." if len(limited) > 5 else "")
            print(
                f"faregate: cannot start {workers} workers with in-process state: {len(limited)} key(s) have"
                f" limits ({shown}), and each worker would enforce them on its own ({workers} times the"
                " budget and rate). Share the state: set `state: redis://HOST:6379/0` in routes.yaml or"
                " FAREGATE_STATE, or run one worker.",
                file=sys.stderr,
            )
            return 1
    argv = [sys.executable, "-m", "faregate.cli", "serve", "--workers", "1", "--config", str(config)]
    argv += ["--catalog", str(folder), "--host", options.host]
    argv += ["--no-store"] if store is None else ["--store", location(store)]
    if args.demo:
        argv.append("--demo")
    return supervise(argv, workers, options.host, options.port, env)


def _keys_with_limits(store: Path) -> list[ApiKey]:
    from faregate.accounting.keys import KeyStore
    from faregate.db import open_db

    keys = KeyStore(open_db(store)).list()
    return [k for k in keys if k.active and (k.rpm or k.tpm or k.budget_usd is not None)]


def provider_env_file(path: Path = Path(".env")) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must not be negative (0: no limit)")
    return n


def _money(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise SystemExit(f"faregate: --budget must be a number of USD, not {text!r}") from None
    if not d.is_finite() or d < 0:
        raise SystemExit("faregate: --budget must be a non-negative number of USD")
    return d


def _keystore(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from faregate.accounting.keys import KeyStore
    from faregate.db import open_db

    return KeyStore(open_db(store_for(args)))


def cmd_keys_create(args: argparse.Namespace) -> int:
    secret, key = _keystore(args).create(
        args.label,
        budget_usd=_money(args.budget),
        rpm=args.rpm or None,
        tpm=args.tpm or None,
        group=args.group,
    )
    print(f"created {key.id} ({key.label}). The key, shown this once:\n{secret}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from faregate.accounting.usage_log import UsageLog
    from faregate.db import open_db

    db = open_db(store_for(args))
    from faregate.accounting.keys import KeyStore

    keys = KeyStore(db).list()
    spent = UsageLog(db).spend_by_key()
    rows = [
        {
            "id": k.id,
            "label": k.label,
            "hint": k.hint + "...",
            "group": k.group,
            "budget_usd": None if k.budget_usd is None else format(k.budget_usd, "f"),
            "spent_usd": format(spent.get(k.id, Decimal(0)), "f"),
            "rpm": k.rpm,
            "tpm": k.tpm,
            "status": "active" if k.active else "revoked",
        }
        for k in keys
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Column, Table

    # The id is what `keys revoke`/`keys update` take: never truncate it, however narrow the terminal.
    id_width = max((len(str(r["id"])) for r in rows), default=2)
    table = Table(Column("id", no_wrap=True, min_width=id_width), "label", "key", "group", "budget", "spent")
    for name in ("rpm", "tpm", "status"):
        table.add_column(name)
    columns = ("id", "label", "hint", "group", "budget_usd", "spent_usd", "rpm", "tpm", "status")
    for r in rows:
        table.add_row(*(str(r[c] if r[c] is not None else "-") for c in columns))
    Console().print(table)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if not _keystore(args).revoke(args.key_id):
        print(f"faregate: no key {args.key_id}")
        return 1
    print(f"revoked {args.key_id}")
    return 0


def cmd_keys_update(args: argparse.Namespace) -> int:
    changes: dict[str, object] = {}
    if args.label is not None:
        changes["label"] = args.label
    if args.budget is not None:
        # "none" clears the budget; 0 is a budget of nothing (spending stops), as for `keys create`.
        changes["budget_usd"] = None if args.budget.lower() == "none" else _money(args.budget)
    for name in ("rpm", "tpm"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value or None
    if args.group is not None:
        changes["group"] = args.group or None
    key = _keystore(args).update(args.key_id, **changes)
    if key is None:
        print(f"faregate: no key {args.key_id}")
        return 1
    print(f"updated {key.id}")
    return 0
