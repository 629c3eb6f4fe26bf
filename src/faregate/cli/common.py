"""What every `faregate` command shares: which routes.yaml, which catalog folder, which store."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from faregate.catalog.files import load_catalog_dir
from faregate.catalog.model import Catalog
from faregate.config.load import ConfigIssue
from faregate.paths import catalog_dir

Command = Callable[[argparse.Namespace], int]
Register = Callable[[str, Command, str], argparse.ArgumentParser]


def config_path(args: argparse.Namespace) -> Path:
    path: Path | None = getattr(args, "file", None) or args.config
    if path is None:
        env = os.environ.get("FAREGATE_CONFIG")
        path = Path(env) if env else Path("routes.yaml")
    return path


def load_catalog(args: argparse.Namespace) -> tuple[Catalog, list[ConfigIssue]]:
    return load_catalog_dir(args.catalog or Path(os.environ.get("FAREGATE_CATALOG_DIR") or catalog_dir()))


def synced_catalog(args: argparse.Namespace) -> tuple[Catalog, list[ConfigIssue]]:
    """The shipped catalog with the same store's synced state over it, as the server sees it."""
    import sqlite3

    from faregate.catalog.overlay import overlay_file  # sqlite-utils: only for the commands that read it

    catalog, issues = load_catalog(args)
    store = store_for(args)
    try:
        return overlay_file(catalog, store), issues
    except sqlite3.Error as e:
        return catalog, [*issues, ConfigIssue(str(store), 1, 1, f"cannot read the synced catalog: {e}")]


def store_for(args: argparse.Namespace) -> Path:
    from faregate.config.build import load_routes
    from faregate.db import store_path

    configured = None
    if args.store is None and "FAREGATE_STORE" not in os.environ:
        spec, _, _ = load_routes(config_path(args))
        configured = spec.server.store if spec else None
    return store_path(args.store, configured)
