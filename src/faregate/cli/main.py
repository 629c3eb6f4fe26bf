"""The `faregate` command: parse arguments, call the layers, print. No logic of its own."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from faregate.cli.check import cmd_check, cmd_explain
from faregate.cli.commands import register
from faregate.cli.common import Command


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command = args.handler
    return handler(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faregate", description="An OpenAI-compatible LLM gateway driven by routes.yaml."
    )
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_, description=help_)
        c.add_argument("--config", type=Path, default=None, help="routes.yaml to use (default ./routes.yaml)")
        c.add_argument(
            "--catalog", type=Path, default=None, help="catalog folder (default: the shipped catalog/)"
        )
        c.set_defaults(handler=handler)
        return c

    check = command(
        "check", cmd_check, "Validate routes.yaml and the catalog; print every problem as FILE:LINE:COL."
    )
    check.add_argument("file", nargs="?", type=Path, help="routes.yaml to check (same as --config)")
    check.add_argument(
        "--strict", action="store_true", help="fail (exit 1) on warnings too, for CI: what the catalog says"
    )

    ex = command(
        "explain", cmd_explain, "Show how a request would be routed: each rule, why it matched, the plan."
    )
    ex.add_argument("--model", default="auto", help="model or alias (default auto)")
    ex.add_argument("--message", default="Hello", help="the user message")
    ex.add_argument("--system", default=None, help="a system message")
    ex.add_argument("--image", action="store_true", help="attach an image")
    ex.add_argument("--tools", action="store_true", help="offer a tool")
    ex.add_argument("--json-mode", action="store_true", help="ask for JSON output")
    ex.add_argument("--stream", action="store_true", help="a streaming request")
    ex.add_argument(
        "--header", action="append", default=[], metavar="K=V", help="a request header (repeatable)"
    )
    ex.add_argument("--key-group", default=None, help="the caller's key group")
    ex.add_argument(
        "--provider", default=None, metavar="JSON", help="OpenRouter `provider` preferences as JSON"
    )
    ex.add_argument("--json", action="store_true", help="print JSON instead of text")
    for c in (check, ex):
        c.add_argument(
            "--store",
            type=Path,
            default=None,
            help="the store whose synced catalog to use (default as for serve; a missing one adds nothing)",
        )
    ex.add_argument(
        "--assume-keys",
        action="store_true",
        help="plan as if every provider had a key (automatic when none has)",
    )

    register(command)
    return p
