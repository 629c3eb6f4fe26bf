"""The `faregate` command: parse arguments, call the layers, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from faregate.canonical import ChatRequest, ImagePart, Message, TextPart, Tool
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.model import Catalog
from faregate.config.load import ConfigIssue
from faregate.paths import catalog_dir
from faregate.routing.load import Loaded, load_checked, summary

Command = Callable[[argparse.Namespace], int]


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

    from faregate.cli.commands import register

    register(command)
    return p


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

    from faregate.catalog.overlay import overlay_file
    from faregate.cli.commands import store_for

    catalog, issues = load_catalog(args)
    store = store_for(args)
    try:
        return overlay_file(catalog, store), issues
    except sqlite3.Error as e:
        return catalog, [*issues, ConfigIssue(str(store), 1, 1, f"cannot read the synced catalog: {e}")]


def load_all(
    args: argparse.Namespace, *, assume_keys: bool = False
) -> tuple[Loaded | None, list[ConfigIssue]]:
    loaded, errors, _ = check_all(args, assume_keys=assume_keys)
    return loaded, errors


def check_all(
    args: argparse.Namespace, *, assume_keys: bool = False
) -> tuple[Loaded | None, list[ConfigIssue], list[ConfigIssue]]:
    """(the table or None, errors, warnings): routes.yaml over the catalog and the store's synced state."""
    catalog, issues = synced_catalog(args)
    loaded, errors, warnings = load_checked(config_path(args), catalog, os.environ, assume_keys=assume_keys)
    return (None if issues else loaded), issues + errors, warnings


def cmd_check(args: argparse.Namespace) -> int:
    loaded, errors, warnings = check_all(args)
    for issue in sorted(errors + warnings):
        print(issue)
    counts = ", ".join(
        _n(len(found), word) for found, word in ((errors, "error"), (warnings, "warning")) if found
    )
    if errors or loaded is None:
        print(counts, file=sys.stderr)
        return 1
    print(f"{config_path(args)}: ok: {summary(loaded)}" + (f" ({counts})" if warnings else ""))
    return 1 if warnings and args.strict else 0


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cmd_explain(args: argparse.Namespace) -> int:
    from faregate.accounting.tokens import TokenCounter
    from faregate.routing.explain import explain, render_text
    from faregate.routing.features import extract_features
    from faregate.routing.plan import build_plan
    from faregate.routing.preferences import parse_request_preferences

    loaded, issues = load_all(args, assume_keys=args.assume_keys)
    if (
        loaded is not None
        and not args.assume_keys
        and not any(c.key_env for c in loaded.table.channels.values())
    ):
        print("note: no provider has a key here; planning as if every provider had one (--assume-keys)")
        loaded, issues = load_all(args, assume_keys=True)
    if loaded is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        return 1
    parts: list[TextPart | ImagePart] = [TextPart(args.message)]
    if args.image:
        parts.append(ImagePart(url="https://example.com/image.png"))
    messages = [Message("user", tuple(parts))]
    if args.system:
        messages.insert(0, Message("system", (TextPart(args.system),)))
    req = ChatRequest(
        model=args.model,
        messages=tuple(messages),
        tools=(Tool("lookup", "Look something up", {"type": "object", "properties": {}}),)
        if args.tools
        else (),
        response_format={"type": "json_object"} if args.json_mode else None,
        stream=args.stream,
    )
    bad = [h for h in args.header if "=" not in h]
    if bad:
        print(f"error: --header takes K=V, got {bad[0]!r}", file=sys.stderr)
        return 2
    headers = {k.strip().lower(): v.strip() for k, v in (h.split("=", 1) for h in args.header)}
    counter = TokenCounter()
    f = extract_features(req, counter.count_request, headers, args.key_group)
    from faregate.errors import FaregateError, ModelRetired
    from faregate.routing.plan import Plan

    try:
        provider = json.loads(args.provider) if args.provider else None
    except json.JSONDecodeError as e:
        print(f"error: --provider is not JSON: {e}", file=sys.stderr)
        return 2
    try:
        prefs = parse_request_preferences({} if provider is None else {"provider": provider})
        plan = build_plan(
            loaded.table,
            args.model,
            f,
            prefs,
            header_model=headers.get("faregate-model"),
            header_provider=headers.get("faregate-provider"),
        )
    except ModelRetired as e:  # still explained: the rules, their warnings, and the 404 it gets
        retired: ModelRetired | None = e
        plan = Plan(args.model, args.model not in loaded.table.aliases, None, None, (), ())
    except FaregateError as e:
        print(f"error {e.status}: {e.message}", file=sys.stderr)
        return 1
    else:
        retired = None
    doc = explain(loaded.table, plan, f)
    if retired is not None:
        doc["error"] = {"status": retired.status, "code": retired.code, "message": retired.message}
    print(json.dumps(doc, indent=2) if args.json else render_text(doc))
    return 0 if retired is None else 1

