"""Explain a routing decision in words: each rule in order with why it matched or not, then the plan.

What `faregate explain` prints and `POST /admin/explain` returns: the decision table must be explainable.
"""

from __future__ import annotations

from typing import Any

from faregate.routing.features import Features, explain_when, matches
from faregate.routing.plan import Plan
from faregate.routing.table import DecisionTable
from faregate.values import frozen


@frozen
class RuleVerdict:
    name: str
    matched: bool
    selected: bool
    checks: tuple[tuple[str, bool, str], ...]
    warnings: tuple[str, ...] = ()  # what the catalog says about the rule's candidates


def rule_verdicts(table: DecisionTable, model: str, f: Features) -> tuple[str | None, list[RuleVerdict]]:
    route = table.aliases.get(model)
    if route is None:
        return None, []
    out, chosen = [], False
    for rule in table.routes[route]:
        ok = matches(rule.when, f)
        checks = tuple((c.condition, c.ok, c.detail) for c in explain_when(rule.when, f))
        out.append(RuleVerdict(rule.name, ok, ok and not chosen, checks, rule.warnings))
        chosen = chosen or ok
    return route, out


def explain(table: DecisionTable, plan: Plan, f: Features) -> dict[str, Any]:
    route, verdicts = rule_verdicts(table, plan.requested, f)
    return {
        "requested": plan.requested,
        "pinned": plan.pinned,
        "route": route,
        "rule": plan.rule,
        "features": f.as_json(),
        "rules": [
            {
                "name": v.name,
                "matched": v.matched,
                "selected": v.selected,
                "conditions": [{"condition": c, "holds": ok, "because": why} for c, ok, why in v.checks],
                "warnings": list(v.warnings),
            }
            for v in verdicts
        ],
        "plan": [
            {
                "channel": e.channel.id,
                "provider": e.channel.provider,
                "model": e.channel.model_id,
                "expected_cost_usd": str(e.channel.expected_cost_usd.normalize()),
                "price_per_1m": {"input": str(e.channel.price.input), "output": str(e.channel.price.output)},
                "reason": e.reason,
            }
            for e in plan.entries
        ],
        "skipped": [{"channel": cid, "why": why} for cid, why in plan.skipped],
        "inactive_providers": dict(table.inactive),
    }


def render_text(doc: dict[str, Any]) -> str:
    f = doc["features"]
    lines = [
        f"request: model={doc['requested']}  prompt_tokens={f['prompt_tokens']}  has_images={f['has_images']}"
        f"  has_tools={f['has_tools']}  json_mode={f['json_mode']}  stream={f['stream']}",
    ]
    if doc["route"]:
        lines.append(f"route '{doc['route']}' (alias '{doc['requested']}'), rules in order:")
        for r in doc["rules"]:
            mark = "->" if r["selected"] else ("ok" if r["matched"] else "no")
            conds = r["conditions"] or [
                {"condition": "(no conditions)", "holds": True, "because": "always holds"}
            ]
            why = "; ".join(
                f"{c['condition']}: {'yes' if c['holds'] else 'no'} ({c['because']})" for c in conds
            )
            lines.append(f"  {mark:>2} {r['name']}: {why}")
            lines += [f"     warning: {w}" for w in r.get("warnings", ())]
    else:
        lines.append(f"pinned model '{doc['requested']}': no rules, its channels cheapest first")
    lines.append("plan:")
    for i, e in enumerate(doc["plan"], start=1):
        price = e["price_per_1m"]
        lines.append(
            f"  {i}. {e['channel']}  ({e['model']}, ${price['input']}/${price['output']} per 1M,"
            f" expected ${e['expected_cost_usd']})  {e['reason']}"
        )
    if doc.get("error"):
        lines.append(f"  (none: {doc['error']['code']}: {doc['error']['message']})")
    elif not doc["plan"]:
        lines.append("  (empty: no channel can serve this request)")
    for s in doc["skipped"]:
        lines.append(f"  skipped {s['channel']}: {s['why']}")
    for p, why in doc["inactive_providers"].items():
        lines.append(f"  inactive provider {p}: {why}")
    return "\n".join(lines)
