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
from faregate.pipeline.load import Sources

Command = Callable[[argparse.Namespace], int]
Register = Callable[[str, Command, str], argparse.ArgumentParser]


def config_path(args: argparse.Namespace) -> Path:
    path: Path | None = getattr(args, "file", None) or args.config
    if path is None:
        env = os.environ.get("FAREGATE_CONFIG")
        path = Path(env) if env else Path("routes.yaml")
    return path


def catalog_folder(args: argparse.Namespace) -> Path:
    return args.catalog or Path(os.environ.get("FAREGATE_CATALOG_DIR") or catalog_dir())


def load_catalog(args: argparse.Namespace) -> tuple[Catalog, list[ConfigIssue]]:
    """The catalog folder alone (`catalog list|diff` show it beside the synced state)."""
    return load_catalog_dir(catalog_folder(args))


def sources(args: argparse.Namespace, *, assume_keys: bool = False) -> Sources:
    """What to load, as the server loads it: routes.yaml, the catalog folder, the same store's synced
    state over it (a missing store adds nothing), the environment's keys."""
    return Sources(
        config_path(args), catalog_folder(args), os.environ, store=store_for(args), assume_keys=assume_keys
    )


def store_for(args: argparse.Namespace) -> Path:
    from faregate.config.build import load_routes
    from faregate.db import store_path

    configured = None
    if args.store is None and "FAREGATE_STORE" not in os.environ:
        spec, _, _ = load_routes(config_path(args))
        configured = spec.server.store if spec else None
    return store_path(args.store, configured)
