"""The planner: precedence, `when` conditions, strategies, request preferences, narrowing, and hypothesis
properties over a fixed table. Pure: health and randomness are passed in, no event loop."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from types import MappingProxyType
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from faregate.canonical import ChatRequest, Message, Reasoning, TextPart
from faregate.config.model import Preferences
from faregate.errors import InvalidRequest, ModelNotFound
from faregate.providers.parameters import lacks
from faregate.routing.features import Features, extract_features
from faregate.routing.plan import Plan, build_plan
from faregate.routing.preferences import RequestPreferences, parse_request_preferences
from faregate.routing.table import Channel
from tests.unit.test_compile import build, ids

BASE = """
providers: {openai: {}, anthropic: {}, groq: {}, deepseek: {}, openrouter: {}}
aliases: {auto: default, cheap: cheap, quick: cheap, smart: smart, fast: fast, mixed: mixed}
routes:
  default:
    - name: vision
      when: {has_images: true}
      use: [openai/gpt-4o-mini, anthropic/claude-haiku]
    - name: tools
      when: {has_tools: true}
      use: [meta-llama/llama-3.1-8b, anthropic/claude-haiku]
    - name: everything-else
      use: [meta-llama/llama-3.1-8b, openai/gpt-4o-mini, deepseek/deepseek-chat]
  cheap:
    - {name: cheap, use: [meta-llama/llama-3.1-8b]}
  smart:
    - {name: smart, strategy: ordered, use: [anthropic/claude-haiku, openai/gpt-4o]}
  fast:
    - {name: fast, strategy: fastest, use: [meta-llama/llama-3.1-8b, openai/gpt-4o-mini]}
  mixed:
    - name: mixed
      strategy: weighted
      use: [openai/gpt-4o-mini, anthropic/claude-haiku]
      weights: {openai/gpt-4o-mini: 3, anthropic/claude-haiku: 1}
"""
TABLE = build(BASE)
STRICT = build(
    BASE,
    """
    preferences: {data_collection: deny, max_price: {prompt: 1, completion: 5}, allow_fallbacks: true}
    """,
)
HI = Features(user_text="hi", prompt_tokens=8)


@dataclass
class FakeHealth:
    cooling_ids: frozenset[str] = frozenset()
    latencies: Mapping[str, float] = field(default_factory=dict)

    def cooling(self, channel_id: str, now: float) -> bool:
        return channel_id in self.cooling_ids

    def latency_ms(self, channel_id: str) -> float | None:
        return self.latencies.get(channel_id)


def prefs(**provider: Any) -> RequestPreferences:
    models = provider.pop("models", None)
    fields: dict[str, Any] = {"provider": provider} if provider else {}
    if models is not None:
        fields["models"] = models
    return parse_request_preferences(fields)


def plan_ids(plan: Plan) -> list[str]:
    return ids(plan.channels)


def models_of(plan: Plan) -> list[str]:
    return [m for m, _ in groupby(c.model_id for c in plan.channels)]


# -- precedence ------------------------------------------------------------------------------------------


def test_an_omitted_model_means_auto() -> None:
    plan = build_plan(TABLE, None, HI)
    assert (plan.requested, plan.pinned, plan.route, plan.rule) == (
        "auto",
        False,
        "default",
        "everything-else",
    )


def test_the_faregate_model_header_wins_over_the_body() -> None:
    plan = build_plan(TABLE, "openai/gpt-4o", HI, header_model="anthropic/claude-haiku")
    assert plan.requested == "anthropic/claude-haiku" and plan.pinned
    assert {c.model_id for c in plan.channels} == {"anthropic/claude-haiku"}


def test_an_explicit_model_is_pinned_and_rules_are_ignored() -> None:
    plan = build_plan(TABLE, "openai/gpt-4o-mini", Features(has_tools=True))
    assert (plan.pinned, plan.route, plan.rule) == (True, None, None)
    assert plan_ids(plan) == ["openai:gpt-4o-mini", "openrouter:openai/gpt-4o-mini"]
    assert all(e.reason.startswith("pinned model #") for e in plan.entries)


def test_an_alias_walks_its_route_through_alias_chains() -> None:
    plan = build_plan(TABLE, "quick", HI)
    assert (plan.requested, plan.route, plan.rule) == ("quick", "cheap", "cheap")


def test_the_faregate_provider_header_narrows_to_that_provider() -> None:
    plan = build_plan(TABLE, "auto", HI, header_provider="openrouter")
    assert plan_ids(plan) == [
        "openrouter:meta-llama/llama-3.1-8b",
        "openrouter:openai/gpt-4o-mini",
        "openrouter:deepseek/deepseek-chat",
    ]


def test_the_faregate_provider_header_cannot_widen() -> None:
    plan = build_plan(STRICT, "deepseek/deepseek-chat", HI, header_provider="deepseek")
    assert plan.entries == ()
    plan = build_plan(TABLE, "auto", HI, prefs(only=["groq"]), header_provider="openrouter")
    assert plan.entries == ()


def test_a_pinned_model_falls_back_across_offerings_cheapest_first() -> None:
    assert plan_ids(build_plan(TABLE, "anthropic/claude-haiku", HI)) == [
        "anthropic:claude-haiku",
        "openrouter:anthropic/claude-haiku",
    ]


def test_a_pinned_model_follows_order_over_price() -> None:
    table = build(BASE, "preferences: {order: [openrouter]}")
    assert plan_ids(build_plan(table, "anthropic/claude-haiku", HI)) == [
        "openrouter:anthropic/claude-haiku",
        "anthropic:claude-haiku",
    ]
    assert plan_ids(build_plan(TABLE, "anthropic/claude-haiku", HI, prefs(order=["openrouter"]))) == [
        "openrouter:anthropic/claude-haiku",
        "anthropic:claude-haiku",
    ]


def test_a_bare_upstream_id_is_accepted_when_unambiguous() -> None:
    plan = build_plan(TABLE, "gpt-4o-mini", HI)
    assert plan.pinned and plan.requested == "gpt-4o-mini"
    assert {c.model_id for c in plan.channels} == {"openai/gpt-4o-mini"}


def test_an_ambiguous_bare_id_is_a_404() -> None:
    with pytest.raises(ModelNotFound) as e:  # groq's mistral-small and openrouter's mistral-small-2
        build_plan(TABLE, "mistral-small", HI)
    assert e.value.status == 404 and e.value.param == "model"
    assert "ambiguous" in e.value.message and "mistralai/mistral-small-2" in e.value.message


def test_an_unknown_model_is_a_404() -> None:
    with pytest.raises(ModelNotFound) as e:
        build_plan(TABLE, "gpt-9", HI)
    assert (e.value.status, e.value.code, e.value.param) == (404, "model_not_found", "model")


# -- when conditions -------------------------------------------------------------------------------------

WHEN = [
    pytest.param("{has_images: true}", Features(has_images=True), Features(), id="has_images"),
    pytest.param("{has_tools: true}", Features(has_tools=True), Features(), id="has_tools"),
    pytest.param("{json_mode: true}", Features(json_mode=True), Features(), id="json_mode"),
    pytest.param("{stream: false}", Features(stream=False), Features(stream=True), id="stream"),
    pytest.param(
        "{prompt_tokens_gt: 100}", Features(prompt_tokens=101), Features(prompt_tokens=100), id="tokens_gt"
    ),
    pytest.param(
        "{prompt_tokens_lt: 100}", Features(prompt_tokens=99), Features(prompt_tokens=100), id="tokens_lt"
    ),
    pytest.param(
        r"{prompt_matches: '(?i)\bpython\b'}",
        Features(user_text="Write Python, please"),
        Features(user_text="a pythonic answer"),
        id="prompt_matches",
    ),
    pytest.param(
        "{header: {X-Team: search}}",
        Features(headers={"x-team": "search"}),
        Features(headers={"x-team": "ads"}),
        id="header",
    ),
    pytest.param(
        "{key_group: [research, ops]}", Features(key_group="ops"), Features(key_group="sales"), id="key_group"
    ),
    pytest.param(
        "{has_tools: true, prompt_tokens_gt: 10}",
        Features(has_tools=True, prompt_tokens=11),
        Features(has_tools=True, prompt_tokens=10),
        id="all-must-hold",
    ),
]


@pytest.mark.parametrize(("when", "hit", "miss"), WHEN)
def test_each_when_condition_matches_and_does_not(when: str, hit: Features, miss: Features) -> None:
    table = build(
        f"""
        providers: {{openai: {{}}}}
        aliases: {{probe: probe}}
        routes:
          probe:
            - {{name: hit, when: {when}, use: [openai/gpt-4o]}}
            - {{name: miss, use: [openai/gpt-4o-mini]}}
        """
    )
    assert build_plan(table, "probe", hit).rule == "hit"
    assert build_plan(table, "probe", miss).rule == "miss"


def test_no_matching_rule_is_a_400() -> None:
    table = build(
        """
        providers: {openai: {}}
        aliases: {auto: default}
        routes: {default: [{name: tools, when: {has_tools: true}, use: [openai/gpt-4o]}]}
        """
    )
    with pytest.raises(InvalidRequest) as e:
        build_plan(table, None, HI)
    assert e.value.status == 400


# -- strategies ------------------------------------------------------------------------------------------


def test_cheapest_orders_models_by_expected_cost() -> None:
    plan = build_plan(TABLE, "auto", HI)
    assert plan_ids(plan) == [
        "openrouter:meta-llama/llama-3.1-8b",  # 0.02/0.05
        "groq:llama-3.1-8b",  # 0.05/0.08
        "openai:gpt-4o-mini",  # 0.15/0.60, same price as openrouter's: id breaks the tie
        "openrouter:openai/gpt-4o-mini",
        "deepseek:deepseek-chat",
        "openrouter:deepseek/deepseek-chat",
    ]
    assert plan.entries[0].reason == "rule 'everything-else' (cheapest) #1"


def test_cheapest_reorders_models_when_a_models_cheapest_channel_is_removed() -> None:
    """With groq's llama made dear, llama leads only thanks to openrouter's channel; when that one is
    cooling, llama's cheapest remaining channel puts it last."""
    health = FakeHealth(cooling_ids=frozenset({"openrouter:meta-llama/llama-3.1-8b"}))
    table = build(
        BASE,
        """
        models:
          meta-llama/llama-3.1-8b: {offerings: {groq: {input: 0.5, output: 0.8}}}
        """,
    )
    assert models_of(build_plan(table, "auto", HI)) == [
        "meta-llama/llama-3.1-8b",
        "openai/gpt-4o-mini",
        "deepseek/deepseek-chat",
    ]
    assert models_of(build_plan(table, "auto", HI, health=health)) == [
        "openai/gpt-4o-mini",
        "deepseek/deepseek-chat",
        "meta-llama/llama-3.1-8b",
    ]


def test_ordered_keeps_the_use_order() -> None:
    assert models_of(build_plan(TABLE, "smart", HI)) == ["anthropic/claude-haiku", "openai/gpt-4o"]


def test_fastest_orders_by_observed_latency_unmeasured_last() -> None:
    health = FakeHealth(latencies={"groq:llama-3.1-8b": 120.0, "openai:gpt-4o-mini": 80.0})
    assert plan_ids(build_plan(TABLE, "fast", HI, health=health)) == [
        "openai:gpt-4o-mini",
        "groq:llama-3.1-8b",
        "openrouter:meta-llama/llama-3.1-8b",  # never measured: compiled order
        "openrouter:openai/gpt-4o-mini",
    ]


def test_weighted_picks_the_first_model_by_weight() -> None:
    rng = random.Random(7)
    firsts = Counter(build_plan(TABLE, "mixed", HI, rng=rng).channels[0].model_id for _ in range(4000))
    share = firsts["openai/gpt-4o-mini"] / 4000
    assert 0.72 < share < 0.78  # weights 3:1
    assert set(firsts) == {"openai/gpt-4o-mini", "anthropic/claude-haiku"}
    plan = build_plan(TABLE, "mixed", HI, rng=random.Random(1))
    assert sorted(models_of(plan)) == ["anthropic/claude-haiku", "openai/gpt-4o-mini"]  # the other follows


def test_weighted_is_deterministic_for_a_seed() -> None:
    a = [plan_ids(build_plan(TABLE, "mixed", HI, rng=random.Random(s))) for s in range(20)]
    b = [plan_ids(build_plan(TABLE, "mixed", HI, rng=random.Random(s))) for s in range(20)]
    assert a == b


# -- request preferences ---------------------------------------------------------------------------------


def test_order_puts_providers_first_within_each_model() -> None:
    plan = build_plan(TABLE, "auto", HI, prefs(order=["deepseek", "groq"]))
    assert plan_ids(plan) == [
        "groq:llama-3.1-8b",
        "openrouter:meta-llama/llama-3.1-8b",
        "openai:gpt-4o-mini",
        "openrouter:openai/gpt-4o-mini",
        "deepseek:deepseek-chat",
        "openrouter:deepseek/deepseek-chat",
    ]


def test_only_keeps_those_providers() -> None:
    plan = build_plan(TABLE, "auto", HI, prefs(only=["groq", "deepseek"]))
    assert plan_ids(plan) == ["groq:llama-3.1-8b", "deepseek:deepseek-chat"]
    assert ("openai:gpt-4o-mini", "openai not in only") in plan.skipped


def test_ignore_drops_those_providers() -> None:
    plan = build_plan(TABLE, "auto", HI, prefs(ignore=["openrouter"]))
    assert plan_ids(plan) == ["groq:llama-3.1-8b", "openai:gpt-4o-mini", "deepseek:deepseek-chat"]


def test_allow_fallbacks_false_keeps_one_channel() -> None:
    plan = build_plan(TABLE, "auto", HI, prefs(allow_fallbacks=False))
    assert plan_ids(plan) == ["openrouter:meta-llama/llama-3.1-8b"]


def test_require_parameters_keeps_only_json_capable_channels_for_json_mode() -> None:
    f = Features(json_mode=True, prompt_tokens=8)
    loose = build_plan(TABLE, "auto", f)
    strict = build_plan(TABLE, "auto", f, prefs(require_parameters=True))
    assert len(plan_ids(loose)) == 6  # JSON mode alone is not a hard requirement (OpenRouter's meaning)
    assert plan_ids(strict) == [
        "groq:llama-3.1-8b",
        "openai:gpt-4o-mini",
        "openrouter:openai/gpt-4o-mini",
        "deepseek:deepseek-chat",
    ]
    assert ("openrouter:deepseek/deepseek-chat", "no JSON mode (require_parameters)") in strict.skipped


def test_data_collection_deny_drops_providers_that_may_collect() -> None:
    plan = build_plan(TABLE, "auto", HI, prefs(data_collection="deny"))
    assert "deepseek:deepseek-chat" not in plan_ids(plan)
    assert "openrouter:deepseek/deepseek-chat" in plan_ids(plan)  # the same model elsewhere is fine


def test_sort_price_orders_every_channel_by_expected_cost() -> None:
    table = build(BASE, "preferences: {order: [openrouter]}")
    plan = build_plan(table, "anthropic/claude-haiku", HI, prefs(sort="price"))
    assert plan_ids(plan) == ["anthropic:claude-haiku", "openrouter:anthropic/claude-haiku"]


def test_sort_latency_orders_by_observed_latency() -> None:
    health = FakeHealth(
        latencies={"openrouter:anthropic/claude-haiku": 50.0, "anthropic:claude-haiku": 400.0}
    )
    plan = build_plan(TABLE, "anthropic/claude-haiku", HI, prefs(sort="latency"), health=health)
    assert plan_ids(plan) == ["openrouter:anthropic/claude-haiku", "anthropic:claude-haiku"]


def test_max_price_prompt_and_completion() -> None:
    assert plan_ids(build_plan(TABLE, "auto", HI, prefs(max_price={"prompt": 0.1}))) == [
        "openrouter:meta-llama/llama-3.1-8b",
        "groq:llama-3.1-8b",
    ]
    plan = build_plan(TABLE, "auto", HI, prefs(max_price={"completion": 0.06}))
    assert plan_ids(plan) == ["openrouter:meta-llama/llama-3.1-8b"]
    assert ("groq:llama-3.1-8b", "output price 0.08 > max_price.completion 0.06") in plan.skipped


def test_models_is_a_fallback_list_of_models_and_aliases() -> None:
    plan = build_plan(
        TABLE, "openai/gpt-4o", HI, prefs(models=["cheap", "anthropic/claude-haiku", "openai/gpt-4o"])
    )
    assert plan_ids(plan) == [
        "openai:gpt-4o",
        "openrouter:meta-llama/llama-3.1-8b",
        "groq:llama-3.1-8b",
        "anthropic:claude-haiku",
        "openrouter:anthropic/claude-haiku",
    ]
    assert plan.entries[1].reason == "models[0] fallback: rule 'cheap' (cheapest) #1"
    assert (plan.pinned, plan.rule) == (True, None)  # the plan is the requested model's


def test_models_never_repeats_a_channel() -> None:
    plan = build_plan(TABLE, "cheap", HI, prefs(models=["meta-llama/llama-3.1-8b", "quick"]))
    assert plan_ids(plan) == ["openrouter:meta-llama/llama-3.1-8b", "groq:llama-3.1-8b"]


def test_an_unknown_entry_in_models_is_an_error_naming_it() -> None:
    with pytest.raises(ModelNotFound) as e:
        build_plan(TABLE, "auto", HI, prefs(models=["cheap", "nope/nothing"]))
    assert e.value.param == "models[1]" and e.value.status == 404
    assert e.value.message.startswith("models[1]: ")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"provider": []}, "provider"),
        ({"provider": {"only": "groq"}}, "provider.only"),
        ({"provider": {"sort": "cheapest"}}, "provider.sort"),
        ({"provider": {"max_price": {"prompt": -1}}}, "provider.max_price.prompt"),
        ({"provider": {"allow_fallbacks": "no"}}, "provider.allow_fallbacks"),
        ({"provider": {"fast": True}}, "provider.fast"),
        ({"models": "cheap"}, "models"),
    ],
)
def test_bad_request_preferences_are_400_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_request_preferences(fields)
    assert e.value.status == 400 and e.value.param == param


# -- narrowing, never widening ---------------------------------------------------------------------------


def test_only_cannot_reach_a_provider_routes_yaml_forbids() -> None:
    assert build_plan(STRICT, "auto", HI, prefs(only=["deepseek"])).entries == ()
    assert build_plan(STRICT, "deepseek/deepseek-chat", HI, prefs(only=["deepseek"])).entries == ()


def test_data_collection_allow_cannot_re_enable() -> None:
    for model in ("auto", "deepseek/deepseek-chat"):
        plan = build_plan(STRICT, model, HI, prefs(data_collection="allow"))
        assert "deepseek" not in {c.provider for c in plan.channels}


def test_a_higher_max_price_keeps_the_static_one() -> None:
    assert (
        build_plan(STRICT, "openai/gpt-4o", HI, prefs(max_price={"prompt": 5, "completion": 50})).entries
        == ()
    )
    lower = build_plan(STRICT, "smart", HI, prefs(max_price={"prompt": 0.5}))
    assert lower.entries == ()  # claude-haiku's input is 1: narrowed further by the request


def test_allow_fallbacks_true_cannot_re_enable() -> None:
    table = build(BASE, "preferences: {allow_fallbacks: false}")
    assert len(build_plan(table, "auto", HI, prefs(allow_fallbacks=True)).entries) == 1


# -- hard requirements, context, health, kind ------------------------------------------------------------


def test_tools_are_a_hard_requirement() -> None:
    plan = build_plan(TABLE, "auto", Features(has_tools=True))
    assert plan.rule == "tools"
    assert ("openrouter:meta-llama/llama-3.1-8b", "no tool support") in plan.skipped
    assert all("tools" in c.caps for c in plan.channels)


def test_images_are_a_hard_requirement() -> None:
    plan = build_plan(TABLE, "meta-llama/llama-3.1-8b", Features(has_images=True))
    assert plan.entries == ()
    assert {why for _, why in plan.skipped} == {"no image input"}
    assert not plan.unavailable_only()  # the request's fault: not a 503


def test_channels_too_small_for_the_prompt_are_skipped() -> None:
    plan = build_plan(TABLE, "auto", Features(prompt_tokens=130_000))
    assert "deepseek:deepseek-chat" not in plan_ids(plan)  # 128k context
    assert plan_ids(plan)[:2] == ["openrouter:meta-llama/llama-3.1-8b", "groq:llama-3.1-8b"]
    plan = build_plan(TABLE, "auto", Features(prompt_tokens=130_000), max_tokens=2000)
    assert plan.entries == ()
    assert ("groq:llama-3.1-8b", "context 131072 < 130000 prompt tokens + 2000 max_tokens") in plan.skipped


def test_cooling_channels_are_skipped() -> None:
    health = FakeHealth(cooling_ids=frozenset({"anthropic:claude-haiku"}))
    plan = build_plan(TABLE, "anthropic/claude-haiku", HI, health=health)
    assert plan_ids(plan) == ["openrouter:anthropic/claude-haiku"]
    assert plan.skipped == (("anthropic:claude-haiku", "cooling down after a failure"),)
    health = FakeHealth(cooling_ids=frozenset(ids(TABLE.models["anthropic/claude-haiku"])))
    plan = build_plan(TABLE, "anthropic/claude-haiku", HI, health=health)
    assert plan.entries == () and plan.unavailable_only()  # a 503, not the request's fault


def test_only_models_of_the_requested_kind_are_used() -> None:
    plan = build_plan(TABLE, "openai/text-embedding-3-small", HI)
    assert plan.entries == () and plan.skipped == (
        ("openai:text-embedding-3-small", "embedding model, not chat"),
    )
    plan = build_plan(TABLE, "openai/text-embedding-3-small", HI, kind="embedding")
    assert plan_ids(plan) == ["openai:text-embedding-3-small"]


# -- properties ------------------------------------------------------------------------------------------

PROPERTY_TABLE = build(
    BASE,
    """
    preferences:
      data_collection: deny
      order: [groq, openai]
      max_price: {prompt: 2, completion: 5.2}
    """,
)
PROVIDERS = ["openai", "anthropic", "groq", "deepseek", "openrouter"]
CHANNEL_IDS = sorted(PROPERTY_TABLE.channels)
MODELS = [None, "auto", "cheap", "smart", "fast", "mixed", "openai/gpt-4o-mini", "anthropic/claude-haiku"]
MODELS += [
    "meta-llama/llama-3.1-8b",
    "deepseek/deepseek-chat",
    "openai/gpt-4o",
    "gpt-4o-mini",
    "llama-3.1-8b",
]
PRICES = st.none() | st.sampled_from(
    [Decimal("0.05"), Decimal("0.15"), Decimal("0.6"), Decimal("1"), Decimal("10")]
)
names = st.lists(st.sampled_from(PROVIDERS), unique=True, max_size=4)

request_preferences = st.builds(
    RequestPreferences,
    order=st.none() | names.map(tuple),
    only=st.none() | names.map(tuple),
    ignore=names.map(tuple),
    allow_fallbacks=st.none() | st.booleans(),
    require_parameters=st.booleans(),
    data_collection=st.none() | st.sampled_from(["allow", "deny"]),
    sort=st.none() | st.sampled_from(["price", "latency"]),
    max_price_prompt=PRICES,
    max_price_completion=PRICES,
)
features = st.builds(
    Features,
    has_images=st.booleans(),
    has_tools=st.booleans(),
    json_mode=st.booleans(),
    stream=st.booleans(),
    prompt_tokens=st.integers(0, 210_000),
    user_text=st.sampled_from(["hi", "some python"]),
)
healths = st.builds(
    FakeHealth,
    cooling_ids=st.frozensets(st.sampled_from(CHANNEL_IDS)),
    latencies=st.dictionaries(st.sampled_from(CHANNEL_IDS), st.floats(1, 5000)),
)


def _forbidden(c: Channel, static: Preferences, req: RequestPreferences, header: str | None) -> bool:
    """Written out again, independently of `static_exclusion`/`narrow`: the union of both sides' limits."""
    onlys = [o for o in (static.only, req.only, (header,) if header else None) if o is not None]
    return (
        (c.data_collection == "allow" and "deny" in (static.data_collection, req.data_collection))
        or any(c.provider not in o for o in onlys)
        or c.provider in static.ignore
        or c.provider in req.ignore
        or any(m is not None and c.price.input > m for m in (static.max_price_prompt, req.max_price_prompt))
        or any(
            m is not None and c.price.output > m
            for m in (static.max_price_completion, req.max_price_completion)
        )
    )


def _rank(order: tuple[str, ...]) -> Mapping[str, int]:
    return MappingProxyType({p: i for i, p in enumerate(order)})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS),
    f=features,
    req=request_preferences,
    health=healths,
    header=st.none() | st.sampled_from(PROVIDERS),
    max_tokens=st.none() | st.integers(1, 8000),
)
def test_a_plan_never_holds_an_excluded_channel_and_is_sorted_by_its_strategy(
    model: str | None,
    f: Features,
    req: RequestPreferences,
    health: FakeHealth,
    header: str | None,
    max_tokens: int | None,
) -> None:
    table = PROPERTY_TABLE
    plan = build_plan(table, model, f, req, header_provider=header, health=health, max_tokens=max_tokens)
    chans = plan.channels
    static = table.preferences

    # (a) nothing forbidden, cooling or unable to serve the request
    for c in chans:
        assert not _forbidden(c, static, req, header), c.id
        assert c.id not in health.cooling_ids
        assert c.kind == "chat"
        assert not f.has_tools or "tools" in c.caps
        assert not f.has_images or "vision" in c.caps
        assert not (req.require_parameters and f.json_mode) or "json" in c.caps
        assert f.prompt_tokens + (max_tokens or 0) <= c.context
    # (c) no channel twice
    assert len(set(ids(chans))) == len(chans)
    # no fallback: one attempt; `order` without fallbacks: exactly those providers (OpenRouter's meaning)
    exact_order = req.order is not None and req.allow_fallbacks is False
    if static.allow_fallbacks is False or (req.allow_fallbacks is False and not exact_order):
        assert len(chans) <= 1
    if exact_order:
        assert req.order is not None and all(c.provider in req.order for c in chans)

    # (b) sorted by the strategy
    strategy = "cheapest"
    rule_models: tuple[str, ...] = ()
    if plan.route is not None:
        (rule,) = [r for r in table.routes[plan.route] if r.name == plan.rule]
        strategy, rule_models = rule.strategy, rule.models
    cost = [c.expected_cost_usd for c in chans]
    if req.sort == "price":
        assert cost == sorted(cost)
        return
    if req.sort == "latency" or strategy == "fastest":
        lat = [health.latency_ms(c.id) for c in chans]
        measured = [x for x in lat if x is not None]
        assert lat[: len(measured)] == sorted(measured)  # measured first, fastest first
        return
    rank = _rank(req.order if req.order is not None else static.order)
    groups = [list(g) for _, g in groupby(chans, key=lambda c: c.model_id)]
    assert len(groups) == len({c.model_id for c in chans})  # each model's channels together
    for g in groups:
        keys = [(rank.get(c.provider, len(rank)), c.expected_cost_usd) for c in g]
        assert keys == sorted(keys)  # within a model: provider order, then cost
    if strategy == "cheapest":
        mins = [min(c.expected_cost_usd for c in g) for g in groups]
        assert mins == sorted(mins)
    elif strategy == "ordered":
        positions = [rule_models.index(g[0].model_id) for g in groups]
        assert positions == sorted(positions)


# --- OpenRouter's names and shortcuts ------------------------------------------------------------------


def test_openrouter_display_names_are_faregate_providers() -> None:
    from faregate.routing.preferences import provider_name

    assert [provider_name(n) for n in ("OpenAI", "Google Vertex", "Together", "x-ai", "Azure")] == [
        "openai",
        "google",
        "together",
        "xai",
        "azure",
    ]
    prefs = parse_request_preferences({"provider": {"order": ["Anthropic", "anthropic"], "ignore": ["GROQ"]}})
    assert (prefs.order, prefs.ignore) == (("anthropic",), ("groq",))


def test_unenforced_provider_fields_are_accepted_and_reported() -> None:
    prefs = parse_request_preferences(
        {
            "provider": {
                "zdr": True,
                "quantizations": ["fp8"],
                "preferred_max_latency": 2,
                "sort": {"by": "price"},
            }
        }
    )
    assert prefs.ignored == ("provider.zdr", "provider.quantizations", "provider.preferred_max_latency")
    assert prefs.sort == "price"
    plan = build_plan(TABLE, "openai/gpt-4o-mini", HI, prefs)
    assert plan.ignored == prefs.ignored


def test_order_without_fallbacks_keeps_exactly_those_providers() -> None:
    prefs = parse_request_preferences({"provider": {"order": ["Anthropic"], "allow_fallbacks": False}})
    plan = build_plan(TABLE, "smart", HI, prefs)
    assert {e.channel.provider for e in plan.entries} == {"anthropic"}
    assert build_plan(TABLE, "cheap", HI, prefs).entries == ()  # no anthropic candidate: nothing else
    # without `order`, no fallback means one attempt
    one = build_plan(TABLE, "auto", HI, parse_request_preferences({"provider": {"allow_fallbacks": False}}))
    assert len(one.entries) == 1


def test_models_without_model_is_the_model_list() -> None:
    prefs = parse_request_preferences({"models": ["anthropic/claude-haiku", "openai/gpt-4o-mini"]})
    plan = build_plan(TABLE, None, HI, prefs)
    assert plan.requested == "anthropic/claude-haiku" and plan.pinned
    assert plan.entries[0].channel.model_id == "anthropic/claude-haiku"
    assert "openai/gpt-4o-mini" in {e.channel.model_id for e in plan.entries}


def test_openrouter_auto_and_variants() -> None:
    from faregate.routing.plan import model_variant

    assert model_variant(TABLE, "openrouter/auto") == ("auto", None)
    assert model_variant(TABLE, "openai/gpt-4o-mini:floor") == ("openai/gpt-4o-mini", "floor")
    assert model_variant(TABLE, "openrouter/auto:nitro") == ("auto", "nitro")
    assert model_variant(TABLE, "some:thing") == ("some:thing", None)
    auto = build_plan(TABLE, "openrouter/auto", HI)
    assert auto.route == "default"
    floor = build_plan(TABLE, "meta-llama/llama-3.1-8b:floor", HI)
    costs = [e.channel.expected_cost_usd for e in floor.entries]
    assert costs == sorted(costs)
    free = build_plan(TABLE, "meta-llama/llama-3.1-8b:free", HI)
    assert all(e.channel.price.is_free() for e in free.entries)
    assert all(why for _, why in free.skipped)


# -- require_parameters: every parameter a channel would drop ---------------------------------------------


def asking(**fields: Any) -> Features:
    """The features of a one-turn chat request that sets `fields` (canonical ones by name, the rest extra)."""
    canonical = {k: fields.pop(k) for k in list(fields) if k in ("top_k", "reasoning", "user", "source_api")}
    req = ChatRequest(model=None, messages=(Message("user", (TextPart("hi"),)),), extra=fields, **canonical)
    return extract_features(req, lambda _: 8)


@pytest.mark.parametrize(
    ("model", "f", "skipped", "lacked"),
    [
        # OpenAI's sampling fields: Anthropic has none of them
        ("anthropic/claude-haiku", asking(seed=7), "anthropic:claude-haiku", "seed"),
        ("anthropic/claude-haiku", asking(logit_bias={"1": 2}), "anthropic:claude-haiku", "logit_bias"),
        (
            "anthropic/claude-haiku",
            asking(logprobs=True, top_logprobs=2),
            "anthropic:claude-haiku",
            "logprobs",
        ),
        (
            "anthropic/claude-haiku",
            asking(frequency_penalty=0.5),
            "anthropic:claude-haiku",
            "frequency_penalty",
        ),
        # OpenRouter's: only where the provider declares them (OpenAI's API takes none)
        ("openai/gpt-4o-mini", asking(top_k=40), "openai:gpt-4o-mini", "top_k"),
        ("openai/gpt-4o-mini", asking(min_p=0.1), "openai:gpt-4o-mini", "min_p"),
        ("openai/gpt-4o-mini", asking(repetition_penalty=1.1), "openai:gpt-4o-mini", "repetition_penalty"),
        # a reasoning request: only to models that reason
        ("openai/gpt-4o-mini", asking(reasoning=Reasoning(effort="low")), "openai:gpt-4o-mini", "reasoning"),
        # a field no format maps reaches only the client's own format, as sent
        ("anthropic/claude-haiku", asking(service_tier="flex"), "anthropic:claude-haiku", "service_tier"),
    ],
)
def test_require_parameters_skips_a_channel_that_would_drop_a_parameter(
    model: str, f: Features, skipped: str, lacked: str
) -> None:
    loose = build_plan(TABLE, model, f, lacks=lacks)
    strict = build_plan(TABLE, model, f, prefs(require_parameters=True), lacks=lacks)
    assert skipped in plan_ids(loose)  # without require_parameters the field is dropped and reported
    assert skipped not in plan_ids(strict)
    assert (skipped, f"does not take '{lacked}' (require_parameters)") in strict.skipped
    assert set(plan_ids(strict)) == set(plan_ids(loose)) - {skipped} - {c for c, _ in strict.skipped}


def test_require_parameters_keeps_the_channels_that_take_every_parameter() -> None:
    f = asking(seed=7, top_p=0.9, user="u1", service_tier="default")
    plan = build_plan(TABLE, "anthropic/claude-haiku", f, prefs(require_parameters=True), lacks=lacks)
    # OpenRouter speaks OpenAI's format: it takes seed, and service_tier as sent
    assert plan_ids(plan) == ["openrouter:anthropic/claude-haiku"]
    plain = build_plan(TABLE, "anthropic/claude-haiku", asking(), prefs(require_parameters=True), lacks=lacks)
    assert len(plain.entries) == len(build_plan(TABLE, "anthropic/claude-haiku", asking()).entries)
    off = asking(reasoning=Reasoning(effort="none"))  # thinking turned off asks nothing of a channel
    assert build_plan(TABLE, "openai/gpt-4o-mini", off, prefs(require_parameters=True), lacks=lacks).entries


def test_require_parameters_reads_another_formats_names_as_chat_parameters() -> None:
    """A Gemini client's `generationConfig.seed` is OpenAI's `seed`: an OpenAI-format channel takes it, an
    Anthropic one does not; its `safetySettings` only a Gemini channel takes."""
    seed = asking(source_api="gemini", **{"generationConfig.seed": 7})
    plan = build_plan(TABLE, "anthropic/claude-haiku", seed, prefs(require_parameters=True), lacks=lacks)
    assert plan_ids(plan) == ["openrouter:anthropic/claude-haiku"]
    assert (
        "anthropic:claude-haiku",
        "does not take 'generationConfig.seed' (require_parameters)",
    ) in plan.skipped
    safety = asking(source_api="gemini", safetySettings=[])
    plan = build_plan(TABLE, "anthropic/claude-haiku", safety, prefs(require_parameters=True), lacks=lacks)
    assert plan.entries == ()
