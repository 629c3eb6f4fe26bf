"""`faregate check`: every problem printed as FILE:LINE:COL: message with exit 1, one test per error kind.

Each broken config in tests/data/configs/ is valid.yaml with one mistake; its first line says which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faregate.cli import main
from faregate.paths import default_routes

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
MODEL_ID = "'^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$'"


@pytest.fixture(autouse=True)
def _shipped_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAREGATE_CATALOG_DIR", raising=False)
    monkeypatch.delenv("FAREGATE_CONFIG", raising=False)


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# (config file, line, column, exact message); an entry with `...` in the message checks a prefix.
PROBLEMS = [
    pytest.param(
        "yaml_syntax.yaml",
        7,
        3,
        "YAML syntax: expected ',' or '}', but got '<scalar>' "
        "(while parsing a flow mapping that starts at line 6, column 15)",
        id="yaml-syntax",
    ),
    pytest.param(
        "unknown_field.yaml",
        17,
        7,
        "unknown field 'stratgy' (allowed: name, strategy, use, weights, when)",
        id="schema-unknown-field",
    ),
    pytest.param(
        "wrong_type.yaml",
        6,
        53,
        "models.acme/small.offerings.acme.input: 'cheap' is not of type 'number'",
        id="schema-wrong-type",
    ),
    pytest.param(
        "bad_enum.yaml",
        17,
        17,
        "routes.default.1.strategy: 'cheapest-first' is not one of "
        "['cheapest', 'ordered', 'fastest', 'weighted']",
        id="schema-bad-enum",
    ),
    pytest.param(
        "missing_use.yaml",
        12,
        7,
        "'use' is a required property in routes.default.0",
        id="schema-missing-use",
    ),
    pytest.param(
        "bad_model_id.yaml",
        14,
        13,
        f"routes.default.0.use.0: 'large' does not match {MODEL_ID} "
        "(A canonical model id, author/name, as OpenRouter names them)",
        id="schema-bad-model-id",
    ),
    pytest.param(
        "unknown_provider_offering.yaml",
        7,
        28,
        "unknown provider 'acmee' (not under providers:)",
        id="unknown-provider-in-models",
    ),
    pytest.param(
        "unknown_provider_order.yaml",
        19,
        17,
        "unknown provider 'zeta' in preferences.order",
        id="unknown-provider-in-preferences",
    ),
    pytest.param(
        "unknown_provider_selector.yaml",
        16,
        25,
        "unknown provider 'zeta'",
        id="unknown-provider-in-selector",
    ),
    pytest.param("unknown_model.yaml", 14, 25, "unknown model 'acme/huge'", id="unknown-model"),
    pytest.param(
        "unknown_route.yaml",
        9,
        9,
        "alias 'auto' names unknown route or alias 'defualt'",
        id="unknown-route",
    ),
    pytest.param(
        "alias_hides_model.yaml",
        10,
        3,
        "alias 'small' hides the model id 'small' (acme/small): requests for it would get the route",
        id="alias-hides-model",
    ),
    pytest.param(
        "unreachable_rule.yaml",
        14,
        7,
        "rule 'tools' can never match: rule 'everything-else' before it matches every request",
        id="rule-after-catch-all",
    ),
    pytest.param(
        "impossible_tokens.yaml",
        13,
        7,
        "rule 'tools' can never match: prompt_tokens_gt 1000 and prompt_tokens_lt 1000",
        id="impossible-token-range",
    ),
    pytest.param(
        "excluded_by_data_collection.yaml",
        16,
        7,
        "rule 'tools': every candidate is excluded by preferences "
        "(deepseek may collect data (data_collection: deny))",
        id="all-excluded-by-data-collection",
    ),
    pytest.param(
        "excluded_by_only.yaml",
        16,
        7,
        "rule 'tools': every candidate is excluded by preferences (deepseek not in only)",
        id="all-excluded-by-only",
    ),
    pytest.param(
        "unpriced_offering.yaml",
        7,
        28,
        "'acme/large' at 'acme' has no price: give input and output (USD per 1M tokens)",
        id="offering-without-price",
    ),
    pytest.param("bad_regex.yaml", 13, 30, "bad regex in prompt_matches: ...", id="bad-regex"),
    pytest.param(
        "unknown_baseline.yaml",
        20,
        13,
        "unknown or unpriced baseline model 'acme/gigantic'",
        id="unknown-baseline",
    ),
    pytest.param(
        "weights_non_candidate.yaml",
        18,
        32,
        "weight for 'acme/medium', which is not a candidate of rule 'everything-else'",
        id="weight-for-non-candidate",
    ),
]


@pytest.mark.parametrize(("name", "line", "col", "message"), PROBLEMS)
def test_each_error_kind_is_reported_at_its_line_and_column(
    name: str, line: int, col: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CONFIGS / name
    code, out, err = check(path, capsys)
    assert code == 1
    assert len(out) == 1, out  # exactly the one mistake, no follow-on noise
    if message.endswith("..."):
        assert out[0].startswith(f"{path}:{line}:{col}: {message[:-3]}")
    else:
        assert out[0] == f"{path}:{line}:{col}: {message}"
    assert err.strip() == "1 error"


def test_alias_cycle_is_reported_at_each_alias_in_it(capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIGS / "alias_cycle.yaml"
    code, out, _ = check(path, capsys)
    assert code == 1
    assert out == [
        f"{path}:10:6: alias cycle: a -> b -> a",
        f"{path}:11:6: alias cycle: b -> a -> b",
    ]


def test_every_problem_is_printed_not_only_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (CONFIGS / "valid.yaml").read_text()
    text = text.replace("use: [acme/large]", "use: [acme/huge]").replace("auto: default", "auto: nowhere")
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    code, out, err = check(path, capsys)
    assert code == 1
    assert [line.split(": ", 1)[1] for line in out] == [
        "alias 'auto' names unknown route or alias 'nowhere'",
        "unknown model 'acme/huge'",
    ]
    assert err.strip() == "2 errors"


def test_a_schema_error_and_an_unknown_model_on_other_lines_are_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After schema errors the semantic checks still run over the parts that validated."""
    text = (CONFIGS / "valid.yaml").read_text()
    text = text.replace("use: [acme/large]", "use: [acme/huge]")  # unknown model: a semantic error
    text = text.replace("input: 0.1,", "input: cheap,")  # a schema error, lines above it
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    code, out, err = check(path, capsys)
    lines = text.splitlines()
    schema_line = next(i for i, line in enumerate(lines, 1) if "input: cheap" in line)
    model_line = next(i for i, line in enumerate(lines, 1) if "acme/huge" in line)
    assert code == 1 and schema_line != model_line
    assert [line.split(":")[1] for line in out] == [str(schema_line), str(model_line)]
    assert out[0].endswith("models.acme/small.offerings.acme.input: 'cheap' is not of type 'number'")
    assert out[1].endswith("unknown model 'acme/huge'")
    assert err.strip() == "2 errors"


def test_a_rule_with_a_schema_error_does_not_hide_the_positions_of_the_next_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The broken rule is left out of the semantic checks; the rule after it is still placed exactly."""
    text = (CONFIGS / "valid.yaml").read_text()
    text = text.replace("when: {has_tools: true}", "when: {has_tools: maybe}")
    text = text.replace("use: [acme/small, acme/large]", "use: [acme/small, acme/gone]")
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    code, out, _ = check(path, capsys)
    lines = text.splitlines()
    gone = next(i for i, line in enumerate(lines, 1) if "acme/gone" in line)
    col = lines[gone - 1].index("acme/gone") + 1
    assert code == 1 and len(out) == 2, out
    assert "has_tools: 'maybe' is not of type 'boolean'" in out[0]
    assert out[1] == f"{path}:{gone}:{col}: unknown model 'acme/gone'"


def test_a_clean_config_prints_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIGS / "valid.yaml"
    code, out, err = check(path, capsys)
    assert code == 0
    assert out == [
        f"{path}: ok: 1 provider (1 without a key), 2 models, 2 offerings "
        "(0 routable with the keys set here), 1 route, 1 alias"
    ]
    assert err == ""


def test_the_shipped_routes_yaml_has_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings (what the catalog says about retired offerings of its models) but no errors."""
    code, out, _ = check(default_routes(), capsys)
    assert code == 0, out
    assert ": ok: " in out[-1]
    assert all(": warning: " in line and "retired" in line for line in out[:-1]), out


def test_a_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    code, out, _ = check(path, capsys)
    assert code == 1
    assert out == [f"{path}:1:1: cannot read: No such file or directory"]


ROUTE_ONLY = """\
version: 1
providers:
  acme: {api: openai, base_url: http://127.0.0.1:9/v1}
models:
  acme/small: {offerings: {acme: {id: small, input: 0.1, output: 0.2, context: 8000}}}
routes:
  auto:
    - name: all
      use: [acme/small]
"""


AUTO_WARNING = (
    "route 'auto' is named by no alias, so no request reaches it: `auto` (and a request without a model) "
    "asks for the alias `auto`, not a route; add `aliases: {auto: auto}`"
)


@pytest.mark.parametrize(
    ("aliases", "warned"),
    [("", True), ("aliases: {auto: auto}\n", False), ("aliases: {cheap: auto}\n", False)],
)
def test_a_route_named_auto_that_no_alias_names_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aliases: str, warned: bool
) -> None:
    """A request names a model or an alias, never a route (DESIGN "Choosing a channel"): a route named
    `auto` with no alias naming it is unreachable, and `check` says so (a warning: exit 0, 1 with --strict)."""
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTE_ONLY + aliases)
    code, out, _ = check(path, capsys)
    assert code == 0, out
    warnings = [line for line in out if ": warning: " in line]
    assert warnings == ([f"{path}:7:3: warning: {AUTO_WARNING}"] if warned else []), out
    assert main(["check", "--strict", str(path)]) == (1 if warned else 0)


def test_a_route_no_alias_names_other_than_auto_is_a_warning_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTE_ONLY.replace("  auto:", "  spare:") + "aliases: {}\n")
    code, out, _ = check(path, capsys)
    assert code == 0
    assert (
        f"{path}:7:3: warning: route 'spare' is named by no alias, so no request reaches it; add one, e.g. "
        "`aliases: {spare: spare}`" in out
    )
