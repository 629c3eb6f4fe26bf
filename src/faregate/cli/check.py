"""`faregate check` and `faregate explain`: routes.yaml over the catalog, its errors, and how a request
would be routed."""

from __future__ import annotations

import argparse
import json
import sys

from faregate.canonical import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool
from faregate.cli.common import config_path, sources
from faregate.pipeline.load import load, summary


def cmd_check(args: argparse.Namespace) -> int:
    loaded, errors, warnings = load(sources(args))
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

    loaded, issues, _ = load(sources(args, assume_keys=args.assume_keys))
    if (
        loaded is not None
        and not args.assume_keys
        and not any(c.key_env for c in loaded.table.channels.values())
    ):
        print("note: no provider has a key here; planning as if every provider had one (--assume-keys)")
        loaded, issues, _ = load(sources(args, assume_keys=True))
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
        response_format=ResponseFormat("json_object") if args.json_mode else None,
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
    from faregate.providers.parameters import lacks
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
            lacks=lacks,
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
