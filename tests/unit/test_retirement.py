"""The operator's word over the catalog's (issue 10): routes.yaml declarations win over retirement marks,
`retired:` in routes.yaml takes an offering out, and what the catalog says is a warning, never an error.
Pure: the inline catalog of test_compile.py, no server."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from faregate.catalog.merge import merge
from faregate.catalog.model import Catalog, Price
from faregate.config.build import parse_routes
from faregate.errors import ModelRetired
from faregate.routing.compile import compile_table
from faregate.routing.features import Features
from faregate.routing.plan import build_plan
from tests.unit.test_compile import CATALOG, KEYS, PROVIDERS, _o, ids

D = Decimal


def compile_text(text: str, catalog: Catalog = CATALOG):  # type: ignore[no-untyped-def]
    spec, _, issues = parse_routes("version: 1\n" + PROVIDERS + text)
    assert spec is not None, [str(i) for i in issues]
    result = compile_table(spec, merge(spec, catalog), KEYS)
    errors = [p.message for p in result.problems if p.is_error]
    warnings = [p.message for p in result.problems if not p.is_error]
    return result.table, errors, warnings


RULE = """
aliases: {auto: default}
routes: {default: [{name: old, use: [openai/gpt-3.5-turbo]}]}
"""


def features() -> Features:
    return Features(prompt_tokens=10)


def test_a_declaration_with_its_own_prices_wins_over_the_catalogs_retirement() -> None:
    table, errors, warnings = compile_text(
        """
models:
  openai/gpt-3.5-turbo: {offerings: {openai: {input: 0.4, output: 1.2}}}
"""
        + RULE
    )
    assert errors == []
    assert ids(table.routes["default"][0].channels) == ["openai:gpt-3.5-turbo"]
    assert table.channels["openai:gpt-3.5-turbo"].price == Price(D("0.4"), D("1.2"))
    assert warnings == [
        "'openai/gpt-3.5-turbo' at 'openai' was retired (shipped catalog); routed as routes.yaml says (declared)"
    ]


def test_a_partial_declaration_without_id_or_prices_keeps_the_catalogs_mark() -> None:
    table, errors, warnings = compile_text(
        """
models:
  openai/gpt-3.5-turbo: {offerings: {openai: {tools: true}}}
"""
        + RULE
    )
    assert errors == [] and table.routes["default"][0].channels == ()
    assert "this declaration does not give id, input or output" in warnings[0]
    assert "its requests get 404 model_retired" in warnings[1]


def test_retired_false_routes_it_with_the_catalogs_values() -> None:
    table, errors, warnings = compile_text(
        """
models:
  openai/gpt-3.5-turbo: {offerings: {openai: {retired: false}}}
"""
        + RULE
    )
    assert errors == [] and ids(table.routes["default"][0].channels) == ["openai:gpt-3.5-turbo"]
    assert warnings[0].endswith("routed as routes.yaml says (retired: false)")


def test_routes_yaml_retired_takes_an_offering_out_and_the_next_candidate_serves() -> None:
    table, errors, warnings = compile_text(
        """
models:
  anthropic/claude-haiku: {offerings: {anthropic: {retired: "2026-11-30"}}}
aliases: {auto: default}
routes: {default: [{name: haiku, use: [anthropic/claude-haiku]}]}
"""
    )
    assert (errors, warnings) == ([], [])
    assert ids(table.routes["default"][0].channels) == ["openrouter:anthropic/claude-haiku"]


def test_routes_yaml_retiring_a_rules_last_offering_is_an_error() -> None:
    _, errors, _ = compile_text(
        """
models:
  openai/gpt-4o: {offerings: {openai: {retired: true}}}
aliases: {auto: default}
routes: {default: [{name: big, use: [openai/gpt-4o]}]}
"""
    )
    assert errors == ["rule 'big': no routable offering of openai/gpt-4o (retired in routes.yaml)"]


def test_a_retired_rule_answers_404_model_retired_with_date_and_replacement() -> None:
    catalog = replace(
        CATALOG,
        offerings=tuple(
            replace(o, retired_on="2026-12-03", retired_by="sync", replacement="openai/gpt-4o-mini")
            if o.model_id == "openai/gpt-3.5-turbo"
            else o
            for o in CATALOG.offerings
        ),
    )
    table, errors, warnings = compile_text(RULE, catalog)
    assert errors == [] and len(warnings) == 1
    assert table.routes["default"][0].warnings == tuple(warnings)
    with pytest.raises(ModelRetired) as e:
        build_plan(table, "auto", features())
    assert (e.value.status, e.value.code) == (404, "model_retired")
    assert e.value.message == (
        "The model 'openai/gpt-3.5-turbo' is retired: its offering at 'openai' left openai's listing on "
        "2026-12-03 (catalog sync); its replacement is 'openai/gpt-4o-mini'; rule 'old' of route 'default' "
        "has no other candidate"
    )
    with pytest.raises(ModelRetired):  # pinned, too
        build_plan(table, "openai/gpt-3.5-turbo", features())


def test_a_retired_model_among_others_is_a_warning_and_the_others_serve() -> None:
    table, errors, warnings = compile_text(
        """
aliases: {auto: default}
routes: {default: [{name: two, use: [openai/gpt-3.5-turbo, openai/gpt-4o-mini]}]}
"""
    )
    assert errors == []
    assert warnings == [
        "rule 'two': 'openai/gpt-3.5-turbo' at 'openai' was retired (shipped catalog): not routed, the "
        "rule's other candidates serve it"
    ]
    assert build_plan(table, "auto", features()).channels[0].model_id == "openai/gpt-4o-mini"


def test_a_selector_left_empty_by_retirements_is_a_warning() -> None:
    _, errors, warnings = compile_text(
        """
aliases: {auto: default}
routes: {default: [{name: small, use: {max_input_price: 0.5, min_context: 16000, max_output_price: 2, providers: [openai], tools: false}}]}
"""
    )
    assert errors == [] and "every model this filter matched is retired" in warnings[0]


def test_a_declared_price_that_differs_from_the_synced_one_is_a_warning() -> None:
    catalog = replace(
        CATALOG,
        offerings=tuple(
            replace(o, synced_price=Price(D("0.2"), D("0.6")))
            if (o.model_id, o.provider) == ("openai/gpt-4o-mini", "openai")
            else o
            for o in CATALOG.offerings
        ),
    )
    _, errors, warnings = compile_text(
        """
models:
  openai/gpt-4o-mini: {offerings: {openai: {input: 0.15, output: 0.6}}}
aliases: {auto: default}
routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
""",
        catalog,
    )
    assert errors == []
    assert warnings == [
        "'openai/gpt-4o-mini' at 'openai': declared input price 0.15 differs from the synced listing "
        "price 0.2 (USD per 1M tokens); the declared one is used"
    ]


def test_an_unpriced_only_model_in_a_rule_is_still_an_error() -> None:
    catalog = replace(
        CATALOG, offerings=(*CATALOG.offerings, _o("x/y", "groq", "y", "0", "0", 10, priced=False))
    )
    _, errors, _ = compile_text(
        """
aliases: {auto: default}
routes: {default: [{name: r, use: [x/y]}]}
""",
        catalog,
    )
    assert errors == [
        "rule 'r': no routable offering of x/y (unpriced: declare input and output under models:)"
    ]
