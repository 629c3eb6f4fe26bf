"""The compiler: routes.yaml (inline) + a small inline catalog -> decision table. Pure, no event loop.

The catalog here is made up for the tests (prices chosen to make orders obvious), so nothing depends on
the shipped prices. `test_plan.py` builds its tables with the same helpers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from faregate.catalog.merge import merge
from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.config.build import parse_routes
from faregate.routing.compile import compile_table
from faregate.routing.table import DecisionTable

ALL = frozenset({"tools", "vision", "json", "streaming"})


def _p(name: str, env: str | None, policy: str = "deny", api: str = "openai") -> ProviderInfo:
    return ProviderInfo(
        name,
        api,  # type: ignore[arg-type]
        f"https://api.{name}.test/v1",
        () if env is None else (env,),
        policy,  # type: ignore[arg-type]
    )


def _o(
    model: str,
    provider: str,
    upstream: str,
    inp: str,
    out: str,
    context: int,
    caps: frozenset[str] = frozenset(),
    *,
    kind: str = "chat",
    retired: bool = False,
    priced: bool = True,
) -> Offering:
    return Offering(
        model,
        provider,
        upstream,
        kind,  # type: ignore[arg-type]
        Price(Decimal(inp), Decimal(out)) if priced else None,
        context,
        caps=caps,
        retired=retired,
    )


CATALOG = Catalog(
    MappingProxyType(
        {
            "openai": _p("openai", "OPENAI_API_KEY"),
            "anthropic": _p("anthropic", "ANTHROPIC_API_KEY", api="anthropic"),
            "groq": _p("groq", "GROQ_API_KEY"),
            "deepseek": _p("deepseek", "DEEPSEEK_API_KEY", "allow"),
            "openrouter": _p("openrouter", "OPENROUTER_API_KEY"),
            "ollama": _p("ollama", None),
        }
    ),
    (
        _o("openai/gpt-4o-mini", "openai", "gpt-4o-mini", "0.15", "0.60", 128_000, ALL),
        _o("openai/gpt-4o-mini", "openrouter", "openai/gpt-4o-mini", "0.15", "0.60", 128_000, ALL),
        _o("openai/gpt-4o", "openai", "gpt-4o", "2.50", "10.00", 128_000, ALL),
        _o("openai/gpt-3.5-turbo", "openai", "gpt-3.5-turbo", "0.50", "1.50", 16_385, retired=True),
        _o(
            "openai/text-embedding-3-small",
            "openai",
            "text-embedding-3-small",
            "0.02",
            "0",
            8191,
            kind="embedding",
        ),
        _o(
            "anthropic/claude-haiku",
            "anthropic",
            "claude-haiku",
            "1",
            "5",
            200_000,
            frozenset({"tools", "vision"}),
        ),
        _o(
            "anthropic/claude-haiku",
            "openrouter",
            "anthropic/claude-haiku",
            "1.10",
            "5.50",
            200_000,
            frozenset({"tools", "vision"}),
        ),
        _o(
            "meta-llama/llama-3.1-8b",
            "groq",
            "llama-3.1-8b",
            "0.05",
            "0.08",
            131_072,
            frozenset({"tools", "json"}),
        ),
        _o("meta-llama/llama-3.1-8b", "openrouter", "meta-llama/llama-3.1-8b", "0.02", "0.05", 131_072),
        _o("meta-llama/llama-3.1-8b", "ollama", "llama3.1:8b", "0", "0", 8192),
        _o(
            "deepseek/deepseek-chat",
            "deepseek",
            "deepseek-chat",
            "0.28",
            "0.42",
            128_000,
            frozenset({"tools", "json"}),
        ),
        _o(
            "deepseek/deepseek-chat",
            "openrouter",
            "deepseek/deepseek-chat",
            "0.30",
            "0.50",
            128_000,
            frozenset({"tools"}),
        ),
        _o("mistralai/mistral-small", "groq", "mistral-small", "0.10", "0.30", 32_000),
        _o("mistralai/mistral-small-2", "openrouter", "mistral-small", "0.12", "0.36", 32_000),
        _o("google/gemma-3", "groq", "gemma-3", "0.07", "0.07", 8192, priced=False),
    ),
)

KEYS: Mapping[str, str] = MappingProxyType(
    {
        "OPENAI_API_KEY": "sk-openai",
        "ANTHROPIC_API_KEY": "sk-anthropic",
        "GROQ_API_KEY": "gsk-groq",
        "DEEPSEEK_API_KEY": "sk-deepseek",
        "OPENROUTER_API_KEY": "sk-or",
    }
)

PROVIDERS = """
providers: {openai: {}, anthropic: {}, groq: {}, deepseek: {}, openrouter: {}}
"""


def compiled(
    *parts: str, env: Mapping[str, str] = KEYS, catalog: Catalog = CATALOG
) -> tuple[DecisionTable, list[str]]:
    """The table and the problems' messages for routes.yaml made of `parts` (each dedented)."""
    text = "version: 1\n" + "\n".join(textwrap.dedent(part).strip("\n") for part in parts)
    spec, _, issues = parse_routes(text)
    assert spec is not None, [str(i) for i in issues]
    result = compile_table(spec, merge(spec, catalog), env)
    return result.table, [p.message for p in result.problems]


def build(*parts: str, env: Mapping[str, str] = KEYS, catalog: Catalog = CATALOG) -> DecisionTable:
    table, problems = compiled(*parts, env=env, catalog=catalog)
    assert problems == []
    return table


def ids(channels: object) -> list[str]:
    return [c.id for c in channels]  # type: ignore[attr-defined]


SIMPLE = """
providers: {openai: {}, anthropic: {}, groq: {}, deepseek: {}, openrouter: {}}
aliases: {auto: default}
routes:
  default:
    - name: all
      use: [openai/gpt-4o-mini, meta-llama/llama-3.1-8b, anthropic/claude-haiku]
"""


def test_one_channel_per_key_the_second_marked_2() -> None:
    table = build(
        """
        providers: {openai: {api_key_env: [OPENAI_API_KEY, OPENAI_API_KEY_2]}}
        aliases: {auto: default}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        """,
        env={"OPENAI_API_KEY": "sk-1", "OPENAI_API_KEY_2": "sk-2"},
    )
    first, second = table.models["openai/gpt-4o-mini"]
    assert (first.id, first.key_env, first.api_key) == ("openai:gpt-4o-mini", "OPENAI_API_KEY", "sk-1")
    assert (second.id, second.key_env, second.api_key) == ("openai:gpt-4o-mini#2", "OPENAI_API_KEY_2", "sk-2")
    assert ids(table.routes["default"][0].channels) == ["openai:gpt-4o-mini", "openai:gpt-4o-mini#2"]


def test_only_the_keys_present_make_channels() -> None:
    table = build(
        """
        providers: {openai: {api_key_env: [OPENAI_API_KEY, OPENAI_API_KEY_2]}}
        aliases: {auto: default}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        """,
        env={"OPENAI_API_KEY_2": "sk-2"},
    )
    assert [(c.id, c.key_env) for c in table.models["openai/gpt-4o-mini"]] == [
        ("openai:gpt-4o-mini", "OPENAI_API_KEY_2")
    ]


def test_a_provider_without_a_key_is_inactive_and_says_why() -> None:
    env = {k: v for k, v in KEYS.items() if k != "ANTHROPIC_API_KEY"}
    table = build(SIMPLE, env=env)
    assert dict(table.inactive) == {"anthropic": "no key: set ANTHROPIC_API_KEY"}
    assert not any(c.provider == "anthropic" for c in table.channels.values())
    rule = table.routes["default"][0]
    assert "anthropic:claude-haiku" not in ids(rule.channels)
    assert ("anthropic:claude-haiku", "anthropic inactive") in rule.excluded


def test_checks_do_not_depend_on_keys() -> None:
    """With no key at all the same file gives the same problems (none), just no live channels."""
    table, problems = compiled(SIMPLE, env={})
    assert problems == []
    assert set(table.inactive) == {"openai", "anthropic", "groq", "deepseek", "openrouter"}
    assert table.channels == {}


def test_assume_keys_plans_as_if_every_provider_had_one() -> None:
    spec, _, _ = parse_routes("version: 1" + SIMPLE)
    assert spec is not None
    table = compile_table(spec, merge(spec, CATALOG), {}, assume_keys=True).table
    assert table.inactive == {}
    assert "anthropic:claude-haiku" in table.channels
    assert all(c.api_key is None for c in table.channels.values())


def test_a_keyless_provider_is_active_without_env() -> None:
    table = build(
        """
        providers: {ollama: {}}
        aliases: {auto: default}
        routes: {default: [{name: local, use: [meta-llama/llama-3.1-8b]}]}
        """,
        env={},
    )
    assert table.inactive == {}
    (channel,) = table.models["meta-llama/llama-3.1-8b"]
    assert (channel.id, channel.key_env, channel.api_key) == ("ollama:llama3.1:8b", None, None)


def test_a_disabled_provider_has_no_channels_and_is_not_inactive() -> None:
    table = build(
        """
        providers: {openai: {}, openrouter: {enabled: false}}
        aliases: {auto: default}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        """
    )
    assert ids(table.models["openai/gpt-4o-mini"]) == ["openai:gpt-4o-mini"]
    assert "openrouter" not in table.inactive


def test_retired_and_unpriced_offerings_are_known_but_never_routed() -> None:
    table = build(SIMPLE)
    assert {"openai/gpt-3.5-turbo", "google/gemma-3"} <= table.known
    assert "openai/gpt-3.5-turbo" not in table.models
    assert not any(c.model_id == "openai/gpt-3.5-turbo" for c in table.channels.values())
    assert table.unpriced == (("google/gemma-3", "groq"),)


def test_a_rule_naming_only_a_retired_model_is_a_warning_not_an_error() -> None:
    """What the catalog says about the world never refuses a file (tests/unit/test_retirement.py)."""
    _, problems = compiled(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes: {default: [{name: old, use: [openai/gpt-3.5-turbo]}]}
        """,
    )
    assert problems == [
        "rule 'old': no routable offering of openai/gpt-3.5-turbo: 'openai/gpt-3.5-turbo' at 'openai' was "
        "retired (shipped catalog); its requests get 404 model_retired"
    ]


def test_declared_prices_merge_over_the_catalog() -> None:
    table = build(
        PROVIDERS,
        """
        models:
          openai/gpt-4o-mini:
            offerings:
              openai: {input: 0.1}                 # only the input price changes
              groq: {id: gpt-4o-mini-groq, input: 0.12, output: 0.5, context: 64000}   # a new offering
          meta-llama/llama-3.1-8b:
            offerings:
              groq: {tools: false}                # a capability turned off
        aliases: {auto: default}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        """,
    )
    by_id = table.channels
    assert by_id["openai:gpt-4o-mini"].price == Price(Decimal("0.1"), Decimal("0.60"))
    assert by_id["openai:gpt-4o-mini"].context == 128_000
    assert by_id["openai:gpt-4o-mini"].caps == ALL
    assert by_id["openrouter:openai/gpt-4o-mini"].price.input == Decimal("0.15")  # other offerings untouched
    new = by_id["groq:gpt-4o-mini-groq"]
    assert (new.model_id, new.price, new.context, new.caps) == (
        "openai/gpt-4o-mini",
        Price(Decimal("0.12"), Decimal("0.5")),
        64_000,
        frozenset(),
    )
    assert by_id["groq:llama-3.1-8b"].caps == {"json"}


def test_prices_are_exact_decimals() -> None:
    table = build(
        PROVIDERS,
        """
        models:
          openai/gpt-4o-mini: {offerings: {openai: {input: 0.1, output: 0.7}}}
        aliases: {auto: default}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        estimate: {input_tokens: 1000, output_tokens: 300}
        """,
    )
    c = table.channels["openai:gpt-4o-mini"]
    assert c.price.input == Decimal("0.1") and str(c.price.input) == "0.1"  # not 0.1000000000000000055...
    assert c.expected_cost_usd == Decimal("0.00031")  # (0.1 * 1000 + 0.7 * 300) / 1e6
    assert c.cost_usd(3, 7) == Decimal("0.0000052")
    assert sum((c.cost_usd(1, 0) for _ in range(10)), Decimal(0)) == Decimal("0.000001")


def test_static_preferences_filter_channels_at_compile_time() -> None:
    table = build(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes: {default: [{name: all, use: [deepseek/deepseek-chat, openai/gpt-4o-mini]}]}
        preferences: {data_collection: deny, ignore: [openrouter]}
        """,
    )
    rule = table.routes["default"][0]
    assert ids(rule.channels) == ["openai:gpt-4o-mini"]
    assert dict(rule.excluded) == {
        "deepseek:deepseek-chat": "deepseek may collect data (data_collection: deny)",
        "openrouter:deepseek/deepseek-chat": "openrouter ignored",
        "openrouter:openai/gpt-4o-mini": "openrouter ignored",
    }
    assert "deepseek/deepseek-chat" not in table.models  # pinned requests cannot reach it either


def test_cheapest_orders_models_by_expected_cost_and_providers_by_order_then_cost() -> None:
    table = build(
        SIMPLE,
        """
        preferences: {order: [groq]}
        """,
    )
    # llama: groq first (order) although openrouter is cheaper; model groups by their cheapest channel.
    assert ids(table.routes["default"][0].channels) == [
        "groq:llama-3.1-8b",
        "openrouter:meta-llama/llama-3.1-8b",
        "openai:gpt-4o-mini",
        "openrouter:openai/gpt-4o-mini",
        "anthropic:claude-haiku",
        "openrouter:anthropic/claude-haiku",
    ]


def test_ordered_keeps_the_use_order() -> None:
    table = build(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes:
          default:
            - {name: all, strategy: ordered, use: [anthropic/claude-haiku, meta-llama/llama-3.1-8b]}
        """,
    )
    assert [c.model_id for c in table.routes["default"][0].channels] == [
        "anthropic/claude-haiku",
        "anthropic/claude-haiku",
        "meta-llama/llama-3.1-8b",
        "meta-llama/llama-3.1-8b",
    ]


def test_weighted_defaults_missing_weights_to_one() -> None:
    table = build(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes:
          default:
            - name: all
              strategy: weighted
              use: [openai/gpt-4o-mini, anthropic/claude-haiku]
              weights: {anthropic/claude-haiku: 3}
        """,
    )
    rule = table.routes["default"][0]
    assert dict(rule.weights) == {"openai/gpt-4o-mini": Decimal(1), "anthropic/claude-haiku": Decimal(3)}
    assert rule.channels[0].model_id == "anthropic/claude-haiku"  # heaviest first


def test_a_selector_picks_chat_models_by_capability_context_and_price() -> None:
    table = build(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes:
          default:
            - {name: long, when: {prompt_tokens_gt: 100000}, use: {min_context: 130000, tools: true}}
            - {name: cheap, use: {max_input_price: 0.1, providers: [groq]}}
        """,
    )
    long, cheap = table.routes["default"]
    assert long.models == ("anthropic/claude-haiku", "meta-llama/llama-3.1-8b")
    assert "openrouter:meta-llama/llama-3.1-8b" not in ids(long.channels)  # that offering has no tools
    assert ids(cheap.channels) == ["groq:llama-3.1-8b", "groq:mistral-small"]


def test_aliases_resolve_through_chains() -> None:
    table = build(
        PROVIDERS,
        """
        aliases: {auto: default, fast: auto, quick: fast}
        routes: {default: [{name: all, use: [openai/gpt-4o-mini]}]}
        """,
    )
    assert dict(table.aliases) == {"auto": "default", "fast": "default", "quick": "default"}


def test_bare_upstream_ids_map_to_models_only_when_unambiguous() -> None:
    table = build(SIMPLE)
    assert table.upstream_ids["gpt-4o-mini"] == "openai/gpt-4o-mini"
    assert table.upstream_ids["deepseek-chat"] == "deepseek/deepseek-chat"
    assert "llama3.1:8b" not in table.upstream_ids  # ollama is not under providers: here
    assert "mistral-small" not in table.upstream_ids
    assert table.ambiguous_ids["mistral-small"] == ("mistralai/mistral-small", "mistralai/mistral-small-2")


def test_an_upstream_id_under_its_provider_names_its_model_in_a_rule_and_a_request() -> None:
    # LiteLLM's spelling (provider/upstream id), as a migrating user writes it
    table = build(
        """
        providers: {groq: {}, anthropic: {}}
        aliases: {auto: default}
        routes:
          default:
            - name: all
              use: [groq/llama-3.1-8b, anthropic/claude-haiku]
        """
    )
    (rule,) = table.routes["default"]
    assert rule.models == ("meta-llama/llama-3.1-8b", "anthropic/claude-haiku")
    assert table.upstream_ids["groq/llama-3.1-8b"] == "meta-llama/llama-3.1-8b"
    assert "openai/gpt-4o-mini" not in table.upstream_ids  # a model id stays a model id
    _, problems = compiled(
        """
        providers: {groq: {}}
        routes: {default: [{name: all, use: [mistral/llama-3.1-8b]}]}
        """
    )
    assert any("unknown model 'mistral/llama-3.1-8b'" in p for p in problems)


def test_the_baseline_is_the_cheapest_offering_of_its_model() -> None:
    table = build(SIMPLE, "savings: {baseline: anthropic/claude-haiku}")
    assert table.baseline is not None
    assert table.baseline.price == Price(Decimal("1"), Decimal("5"))


def test_a_rule_with_the_same_conditions_as_an_earlier_one_can_never_match() -> None:
    _, problems = compiled(
        PROVIDERS,
        """
        aliases: {auto: default}
        routes:
          default:
            - {name: a, when: {has_tools: true}, use: [openai/gpt-4o-mini]}
            - {name: b, when: {has_tools: true}, use: [anthropic/claude-haiku]}
            - {name: c, use: [openai/gpt-4o-mini]}
        """,
    )
    assert problems == ["rule 'b' can never match: rule 'a' before it has the same conditions"]


def test_unknown_providers_in_sync_providers_are_reported() -> None:
    _, problems = compiled(SIMPLE, "catalog: {sync_providers: [openai, nope]}")
    assert problems == ["unknown provider 'nope' in catalog.sync_providers"]


def test_params_come_from_the_provider_and_an_offering_replaces_them() -> None:
    """`params:` (sampling fields beyond the wire format's own) under a provider reach each of its channels;
    an offering's own `params` replace the provider's for that offering only."""
    table = build(
        """
        providers: {groq: {params: [top_k, min_p]}, openrouter: {params: [top_k]}}
        models:
          meta-llama/llama-3.1-8b:
            offerings: {openrouter: {params: [min_p, repetition_penalty]}}
        aliases: {auto: default}
        routes: {default: [{name: all, use: [meta-llama/llama-3.1-8b, mistralai/mistral-small-2]}]}
        """
    )
    params = {c.id: c.params for cs in table.models.values() for c in cs}
    assert params["groq:llama-3.1-8b"] == {"top_k", "min_p"}
    assert params["openrouter:meta-llama/llama-3.1-8b"] == {"min_p", "repetition_penalty"}
    assert params["openrouter:mistral-small"] == {"top_k"}
    assert build(SIMPLE).models["openai/gpt-4o-mini"][0].params == frozenset()
