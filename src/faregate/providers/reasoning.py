"""Reasoning settings between formats: an effort level (OpenAI, OpenRouter) and a token budget (Anthropic,
Gemini, OpenRouter's `max_tokens`) stand for each other through one table, and each upstream family says
which of its models think at all (a `reasoning_effort` sent to a model that does not think is a 400).
Also which of the answer's thoughts a client is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final, Literal

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    Reasoning,
    ReasoningDelta,
    ReasoningEffort,
    StreamEvent,
    WireApi,
)
from faregate.errors import InvalidRequest

# Effort -> thinking budget in tokens, and back (a budget maps to the highest effort whose budget it
# reaches). Anthropic's minimum budget is 1024 tokens.
BUDGETS: Final[Mapping[ReasoningEffort, int]] = MappingProxyType(
    {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
)
EFFORTS: Final[tuple[ReasoningEffort, ...]] = ("none", "minimal", "low", "medium", "high")
MIN_ANTHROPIC_BUDGET: Final = 1024


def budget_of(r: Reasoning) -> int | None:
    """The token budget the settings stand for; None when the model should decide."""
    if r.budget_tokens is not None:
        return r.budget_tokens
    return None if r.effort is None else BUDGETS[r.effort]


def effort_of(r: Reasoning) -> ReasoningEffort | None:
    """The effort level the settings stand for; None when the model should decide."""
    if r.effort is not None:
        return r.effort
    if r.budget_tokens is None:
        return None
    if r.budget_tokens <= 0:
        return "none"
    return next((e for e in reversed(EFFORTS) if r.budget_tokens >= BUDGETS[e] > 0), "minimal")


# The chat-completions fields that carry a reasoning request: listed in `supported_parameters` for the
# models whose format maps them (each format's `parameters(upstream_id)`).
REASONING_PARAMETERS: Final = frozenset({"reasoning", "reasoning_effort"})


def with_reasoning(parameters: frozenset[str], reasons: bool) -> frozenset[str]:
    return parameters | REASONING_PARAMETERS if reasons else parameters


def in_family(upstream_id: str, prefixes: tuple[str, ...]) -> bool:
    """Whether an upstream model id starts with one of `prefixes` (a format's list of model families)."""
    bare = upstream_id.rsplit("/", 1)[-1].lower()
    return bare.startswith(prefixes)


def parse_effort(value: object, param: str) -> ReasoningEffort:
    if not isinstance(value, str) or value not in EFFORTS:
        raise InvalidRequest(f"{param}: must be one of {', '.join(EFFORTS)}", param=param)
    return value  # type: ignore[return-value]  # narrowed by the membership test


def parse_openrouter(value: object) -> Reasoning | None:
    """OpenRouter's `reasoning: {effort, max_tokens, exclude, enabled}`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("reasoning: must be an object", param="reasoning")
    effort = None if value.get("effort") is None else parse_effort(value["effort"], "reasoning.effort")
    budget = value.get("max_tokens")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise InvalidRequest(
            "reasoning.max_tokens: must be a non-negative integer", param="reasoning.max_tokens"
        )
    enabled = value.get("enabled")
    if enabled is False:
        effort, budget = "none", None
    exclude = value.get("exclude") is True
    return Reasoning(effort=effort, budget_tokens=budget, include_thoughts=not exclude)


def parse_anthropic_thinking(value: Any) -> Reasoning | None:
    """Anthropic's `thinking`: `{type: enabled, budget_tokens}`, `{type: adaptive}`, `{type: disabled}`."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "disabled":
        return Reasoning(effort="none")
    if kind == "adaptive":
        return Reasoning()
    if kind == "enabled":
        budget = value.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_ANTHROPIC_BUDGET:
            raise InvalidRequest(
                f"thinking.budget_tokens: must be an integer >= {MIN_ANTHROPIC_BUDGET}",
                param="thinking.budget_tokens",
            )
        return Reasoning(budget_tokens=budget, include_thoughts=value.get("display") != "omitted")
    raise InvalidRequest("thinking.type: must be one of enabled, adaptive, disabled", param="thinking.type")


# Anthropic's effort parameter (`output_config.effort`, which steers adaptive thinking) on the canonical
# scale, and back: `xhigh` and `max` are beyond OpenAI's highest effort, so they stand for `high` elsewhere.
ANTHROPIC_EFFORTS: Final[Mapping[str, ReasoningEffort]] = MappingProxyType(
    {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
)
ANTHROPIC_EFFORT_NAMES: Final[Mapping[ReasoningEffort, str]] = MappingProxyType(
    {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
)


def parse_anthropic_effort(value: object) -> ReasoningEffort:
    effort = ANTHROPIC_EFFORTS.get(value) if isinstance(value, str) else None
    if effort is None:
        raise InvalidRequest(
            f"output_config.effort: must be one of {', '.join(ANTHROPIC_EFFORTS)}",
            param="output_config.effort",
        )
    return effort


def parse_gemini_thinking(value: Any) -> Reasoning | None:
    """Gemini's `thinkingConfig: {thinkingBudget, thinkingLevel, includeThoughts}` (-1: dynamic)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("generationConfig.thinkingConfig: must be an object", param="thinkingConfig")
    budget = value.get("thinkingBudget", value.get("thinking_budget"))
    level = value.get("thinkingLevel", value.get("thinking_level"))
    include = bool(value.get("includeThoughts", value.get("include_thoughts", False)))
    effort: ReasoningEffort | None = None
    if isinstance(level, str):
        effort = parse_effort(level.lower(), "generationConfig.thinkingConfig.thinkingLevel")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise InvalidRequest(
            "generationConfig.thinkingConfig.thinkingBudget: must be an integer", param="thinkingBudget"
        )
    if budget is not None and budget < 0:
        budget = None  # -1: dynamic, the model decides
    return Reasoning(effort=effort, budget_tokens=budget, include_thoughts=include)


# --- the model's reasoning text, as the client wants it -------------------------------------------------

ThoughtView = Literal["text", "signed", "none"]
# Formats whose clients get the reasoning text unasked (OpenRouter returns it by default); an Anthropic
# client sees thinking blocks only when it enabled thinking, a Gemini client only with `includeThoughts`.
THOUGHTS_UNASKED: Final[frozenset[WireApi]] = frozenset({"openai"})
# Formats whose `include_thoughts` is the client's own ask (Gemini's `includeThoughts`, a Responses
# `reasoning.summary`, Anthropic's thinking displayed), not a default: an upstream that returns thought text
# only when asked (Gemini) is asked for it.
# Formats whose clients get the signatures unasked (a Gemini model signs its reasoning whether or not the
# client asked for thoughts, and Gemini 3 wants the signature of a function call turn back).
SIGNED_UNASKED: Final[frozenset[WireApi]] = frozenset({"gemini"})
THOUGHTS_ASKED: Final[frozenset[WireApi]] = frozenset({"anthropic", "gemini", "openai-responses"})
# Formats whose inbound takes every thought whole and shows its client what it asked itself: the Responses
# API stores each response whole (for `previous_response_id`) and trims summaries and encrypted content
# per request (`openai_responses/reasoning.py::view`).
THOUGHTS_WHOLE: Final[frozenset[WireApi]] = frozenset({"openai-responses"})


def thought_view(req: ChatRequest) -> ThoughtView:
    """What of the answer's thoughts reaches the client: all of them, only the signed ones with their text
    blanked (the client excluded the text but must pass the signatures back: Anthropic's
    `display: omitted`, OpenRouter's `exclude`), or none."""
    r = req.reasoning
    if req.source_api in THOUGHTS_WHOLE:
        return "text"
    if r is None:
        if req.source_api in THOUGHTS_UNASKED:
            return "text"
        return "signed" if req.source_api in SIGNED_UNASKED else "none"
    if r.effort == "none":
        return "none"
    return "text" if r.include_thoughts else "signed"


def view_thoughts(resp: ChatResponse, view: ThoughtView) -> ChatResponse:
    if view == "text" or not resp.thoughts:
        return resp
    kept = () if view == "none" else tuple(replace(t, text="") for t in resp.thoughts if t.signature)
    return replace(resp, thoughts=kept)


def view_event(ev: StreamEvent, view: ThoughtView) -> StreamEvent | None:
    """A stream event as the client may see it (None: not at all)."""
    if view == "text" or not isinstance(ev, ReasoningDelta):
        return ev
    if view == "none" or (ev.signature is None and not ev.redacted):
        return None
    return replace(ev, text="")
