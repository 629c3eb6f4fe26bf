"""The `faregate` commands that need the server or the store (serve, keys, catalog, audit)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

Register = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def register(command: Register) -> None:
    serve = command("serve", cmd_serve, "Run the gateway.")
    serve.add_argument("--host", default=None, help="address to bind (default: routes.yaml server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: routes.yaml server.port, 8080)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="run the shipped routes.yaml (unless --config is given) against the built-in provider simulator",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from faregate.cli import config_path
    from faregate.config.build import load_routes
    from faregate.paths import catalog_dir, default_routes
    from faregate.server.options import ServeOptions
    from faregate.server.serve import run
    from faregate.settings import Settings

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_path(args)
    if args.demo and args.config is None and "FAREGATE_CONFIG" not in os.environ:
        config = default_routes()
    spec, _, issues = load_routes(config)
    if spec is None:
        for issue in issues:
            print(issue)
        return 1
    options = ServeOptions(
        host=args.host or settings.host or spec.server.host,
        port=args.port if args.port is not None else (settings.port or spec.server.port),
        auth=settings.auth or spec.auth,
        admin_key=settings.admin_key.get_secret_value() if settings.admin_key else None,
        max_body_bytes=spec.server.max_body_bytes,
    )
    folder = args.catalog or settings.catalog_dir or catalog_dir()
    return run(config, Path(folder), options, os.environ, demo=args.demo)
