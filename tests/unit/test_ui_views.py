"""The dashboard's view models: pure functions over records, totals, the catalog and the decision table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from faregate.accounting.keys import ApiKey
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import Totals
from faregate.canonical import Usage
from faregate.ui import views

D = Decimal
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def rec(
    n: int, *, ago_days: float = 0, cost: str = "0.001", base: str = "0.004", **kw: object
) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"r{n}",
        "created": NOW - ago_days * DAY - n,
        "endpoint": "chat",
        "requested": "auto",
        "status": 200,
        "key_id": "key_a",
        "route": "default",
        "rule": "everything-else",
        "model_id": "openai/gpt-6-luna",
        "provider": "openai",
        "channel": "openai:gpt-6-luna",
        "usage": Usage(10, 5),
        "cost_usd": D(cost),
        "baseline_cost_usd": D(base),
        "latency_ms": float(10 * (n + 1)),
    }
    fields.update(kw)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def totals_of(records: list[RequestRecord]) -> Totals:
    return Totals(
        len(records),
        sum(r.status >= 400 for r in records),
        sum(r.usage.prompt_tokens for r in records),
        sum(r.usage.completion_tokens for r in records),
        sum((r.cost_usd for r in records), D(0)),
        sum((r.baseline_cost_usd for r in records), D(0)),
        sum(r.latency_ms for r in records),
    )


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (D("0"), "$0.00"),
        (D("12.5"), "$12.50"),
        (D("0.000000123"), "$0.000000123"),
        (D("1E-7"), "$0.0000001"),
        (D("-0.25"), "-$0.25"),
        (D("1234.5678900"), "$1234.56789"),
    ],
)
def test_usd_is_exact_and_never_in_exponent_form(amount: Decimal, text: str) -> None:
    assert views.usd(amount) == text


def test_percentile_is_nearest_rank() -> None:
    assert views.percentile([], 50) is None
    assert views.percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert views.percentile(values, 50) == 50.0
    assert views.percentile(values, 95) == 95.0
    assert views.percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_overview_fills_every_day_of_the_period_and_sums_exactly() -> None:
    records = [
        rec(0),
        rec(1),
        rec(2, ago_days=2, cost="0.0000001", base="0.0000003"),
        rec(3, ago_days=2, status=502),
    ]
    ov = views.overview(totals_of(records), records, 7, NOW)
    assert [p.day for p in ov.by_day][-3:] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert len(ov.by_day) == 7 and ov.chart()["labels"][-1] == "2026-12-03"
    assert ov.by_day[-1].spend == D("0.002") and ov.by_day[-3].spend == D("0.0010001")
    assert ov.by_day[0].spend == 0 and ov.by_day[-2].baseline == 0
    assert ov.spend == D("0.0030001") and ov.saved == ov.baseline - ov.spend
    assert ov.error_rate == "25.00%" and ov.requests == 4
    assert ov.latency_p50_ms == 20.0 and ov.latency_p95_ms == 40.0
    assert ov.top["model"][0].value == "openai/gpt-6-luna" and ov.top["model"][0].requests == 4
    assert ov.top["rule"][0].value == "everything-else"
    assert ov.saved_pct == "75.00%"


def test_overview_of_nothing() -> None:
    ov = views.overview(totals_of([]), [], 1, NOW)
    assert ov.requests == 0 and ov.error_rate == "—" and ov.saved_pct == "—" and len(ov.by_day) == 1
    assert ov.latency_p50_ms is None and all(rows == () for rows in ov.top.values())


def test_period_is_one_of_the_offered() -> None:
    assert views.period_of({"days": "7"}) == 7
    assert views.period_of({"days": "8"}) == views.DEFAULT_PERIOD
    assert views.period_of({"days": "x"}) == views.DEFAULT_PERIOD
    assert views.period_of({}) == views.DEFAULT_PERIOD


def test_the_filters_query_string() -> None:
    f = views.UsageFilters.parse({"model": "a/x", "page": "2"})
    assert f.query() == "model=a%2Fx&page=2" and f.query(page=1) == "model=a%2Fx"
    assert views.UsageFilters.parse({"page": "-4"}).page == 1


def test_parse_limits() -> None:
    limits = views.parse_limits({"budget": "$0.25", "rpm": "60", "tpm": "", "group": " team "})
    assert limits == views.Limits(D("0.25"), 60, None, "team")
    assert views.parse_limits({}) == views.Limits(None, None, None, None)
    for bad in ({"rpm": "0"}, {"tpm": "1.5"}, {"budget": "lots"}, {"budget": "-1"}, {"budget": "NaN"}):
        with pytest.raises(ValueError):
            views.parse_limits(bad)


def test_key_rows_put_active_keys_first_with_what_they_spent() -> None:
    keys = [
        ApiKey("k1", "old", "fg_a", created=1.0, revoked=5.0),
        ApiKey("k2", "new", "fg_b", budget_usd=D("1"), created=2.0),
        ApiKey("k3", "newer", "fg_c", created=3.0),
    ]
    rows = views.key_rows(keys, {"k2": D("0.25")})
    assert [r.key.id for r in rows] == ["k3", "k2", "k1"]
    assert rows[1].remaining == D("0.75") and rows[0].remaining is None and rows[2].spent == 0


def test_offerings_say_why_they_are_not_routable() -> None:
    """On the shipped routes.yaml and catalog with no provider key: every offering is listed, none routable,
    each with its provider's missing key as the reason; with keys, a priced live offering is routable."""
    from faregate.catalog.files import load_catalog_dir
    from faregate.catalog.model import Price
    from faregate.catalog.store import PriceRow
    from faregate.config.build import read_routes
    from faregate.paths import catalog_dir, default_routes
    from faregate.pipeline.load import build_loaded

    catalog, _ = load_catalog_dir(catalog_dir())
    loaded, issues, _ = build_loaded(read_routes(default_routes()), catalog, {})
    assert loaded is not None, issues
    rows = views.offerings(loaded.merged, loaded.table, {})
    assert len(rows) == len(loaded.merged.offerings)
    assert all(
        not r.routable and any("inactive" in w for w in r.why_not) for r in rows if r.price is not None
    )
    env = {var: "x" for p in loaded.merged.providers.values() for var in p.api_key_env}
    keyed, _, _ = build_loaded(read_routes(default_routes()), catalog, env)
    assert keyed is not None
    first = next(o for o in keyed.merged.offerings if o.price is not None and not o.retired)
    hist = {
        (first.provider, first.upstream_id): [
            PriceRow(
                first.provider,
                first.upstream_id,
                Price(D("1"), D("2")),
                "2026-11-01T00:00:00+00:00",
                "2026-11-02T00:00:00+00:00",
            ),
            PriceRow(
                first.provider, first.upstream_id, Price(D("0.5"), D("2")), "2026-11-02T00:00:00+00:00", None
            ),
        ]
    }
    keyed_rows = views.offerings(keyed.merged, keyed.table, hist)
    row = next(r for r in keyed_rows if (r.provider, r.upstream_id) == (first.provider, first.upstream_id))
    policy = keyed.merged.providers[first.provider].data_collection
    denied = keyed.table.preferences.data_collection == "deny" and policy == "allow"
    assert row.routable is not denied and row.history_chart()["input"] == [1.0, 0.5]
    retired = [r for r in keyed_rows if any("retired" in w or "listing" in w for w in r.why_not)]
    assert all(not r.routable for r in retired)


def test_explain_form_builds_an_openai_chat_body() -> None:
    form = views.ExplainForm.parse(
        {"model": "", "message": "hi", "images": "on", "tools": "on", "json_mode": "on"}
    )
    body = form.body()
    assert body["model"] == "auto" and body["messages"][0]["content"][1]["type"] == "image_url"
    assert body["tools"][0]["function"]["name"] == "lookup" and body["response_format"] == {
        "type": "json_object"
    }
    assert views.ExplainForm.parse({"message": "x"}).body() == {
        "model": "auto",
        "messages": [{"role": "user", "content": "x"}],
    }


def test_audit_view_keeps_counts_and_cuts_rows() -> None:
    from faregate.audit.model import AuditResult, Section

    big = Section("billing", "Billing", ("id",), tuple({"id": str(n)} for n in range(500)), 500)
    small = Section("spend", "Spend", ("by",), ({"by": "day"},), 0)
    result = AuditResult("now", "routes.yaml", "store.db", (big, small), ("billing",))
    shown = views.audit_view(result)
    assert [(s.name, s.findings, s.failing, s.total_rows) for s in shown] == [
        ("billing", 500, True, 500),
        ("spend", 0, False, 1),
    ]
    assert len(shown[0].rows) == views.AUDIT_ROWS_SHOWN
