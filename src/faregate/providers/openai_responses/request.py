"""Canonical request → a Responses API body, for an `api: openai-responses` upstream (a provider or model
served only at `{base_url}/responses`).

Leading system messages become `instructions`; the rest of the conversation is sent as input items, with
the thoughts a Responses upstream signed passed back as reasoning items (others' are dropped). The
gateway keeps conversation state itself, so the upstream is asked to store nothing (`store: false`) and,
for a reasoning model when the request sets `reasoning` or passes thoughts back, to return its reasoning as
`encrypted_content` (the only way it reaches the next turn), and a summary when the client wants the text.
What the Responses API cannot carry (`stop`, `top_k`, a reasoning budget on a model that does not reason)
is dropped and noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final

from faregate.canonical import ChatRequest, JSONObject, Message, ResponseFormat, Tool, ToolChoice, signed_for
from faregate.providers.openai.request import REASONING_PREFIXES
from faregate.providers.openai_responses.items import render_items
from faregate.providers.openai_responses.reasoning import ENCRYPTED_INCLUDE
from faregate.providers.params import Param, apply_params, merge_extra
from faregate.providers.reasoning import effort_of, in_family, with_reasoning

SOURCE_API: Final = "openai-responses"
MIN_OUTPUT_TOKENS: Final = 16  # OpenAI refuses a smaller max_output_tokens
HANDLED_EXTRA: Final = frozenset({"parallel_tool_calls"})
NEVER_FORWARDED: Final = frozenset({"store", "previous_response_id", "stream", "background", "conversation"})


def render_tool(t: Tool) -> JSONObject:
    # Not strict: OpenAI's strict mode needs every property required and additionalProperties false,
    # which a schema written for another provider rarely says.
    return {
        "type": "function",
        "name": t.name,
        "description": t.description,
        "parameters": dict(t.parameters) or {"type": "object", "properties": {}},
        "strict": False,
    }


def render_tool_choice(choice: ToolChoice) -> str | JSONObject:
    return {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode


# Chat-completions fields that reach a Responses upstream (`stop` and `top_k` it cannot carry).
PARAMETERS: Final = frozenset(
    {
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stream", "user",
        "tools", "tool_choice", "parallel_tool_calls", "response_format",
    }
)  # fmt: skip


def parameters(upstream_id: str) -> frozenset[str]:
    return with_reasoning(PARAMETERS, in_family(upstream_id, REASONING_PREFIXES))


# Canonical fields → the Responses body (`response_format` is `text.format`, rendered below).
PARAMS: Final[Mapping[str, Param]] = MappingProxyType(
    {
        "max_tokens": Param("max_output_tokens", min=MIN_OUTPUT_TOKENS),
        "temperature": Param("temperature"),
        "top_p": Param("top_p"),
        "user": Param("user"),
    }
)


def render_text_format(response_format: ResponseFormat) -> JSONObject | None:
    if response_format.kind == "json_object":
        return {"format": {"type": "json_object"}}
    if response_format.kind == "json_schema":
        return {"format": {"type": "json_schema", **response_format.schema_spec()}}
    return None


def split_instructions(messages: tuple[Message, ...]) -> tuple[str | None, tuple[Message, ...]]:
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    text = "\n\n".join(m.text for m in messages[:lead] if m.text)
    return text or None, messages[lead:]


def with_encrypted(include: object) -> list[object]:
    """`include` asking for `reasoning.encrypted_content`: with `store: false` the only way the reasoning
    of one turn reaches the next."""
    items = list(include) if isinstance(include, list) else []
    return items if ENCRYPTED_INCLUDE in items else [*items, ENCRYPTED_INCLUDE]


def render_request(req: ChatRequest, upstream_id: str) -> tuple[JSONObject, tuple[str, ...]]:
    """The Responses body and the request fields it could not carry."""
    dropped: list[str] = []
    instructions, rest = split_instructions(req.messages)
    own = tuple(replace(m, thoughts=signed_for(m.thoughts, SOURCE_API)) if m.thoughts else m for m in rest)
    body: JSONObject = {"model": upstream_id, "input": render_items(own), "store": False}
    if instructions is not None:
        body["instructions"] = instructions
    if req.tools or req.hosted_tools:
        body["tools"] = [*(render_tool(t) for t in req.tools), *(dict(t) for t in req.hosted_tools)]
    if req.tool_choice is not None:
        body["tool_choice"] = render_tool_choice(req.tool_choice)
    if req.response_format is not None:
        text = render_text_format(req.response_format)
        if text is not None:
            body["text"] = text
    apply_params(body, req, PARAMS)
    if req.stop:
        dropped.append("stop")
    if req.top_k is not None:
        dropped.append("top_k")
    reasons = in_family(upstream_id, REASONING_PREFIXES)
    if req.reasoning is not None:
        effort = effort_of(req.reasoning)
        if reasons:
            body["reasoning"] = {"effort": effort} if effort is not None else {}
            if req.reasoning.include_thoughts:
                body["reasoning"]["summary"] = "auto"
        elif effort is not None:
            dropped.append("reasoning")
    if req.extra.get("parallel_tool_calls") is False:
        body["parallel_tool_calls"] = False
    extra: JSONObject = {}
    for key, value in req.extra.items():
        if key in HANDLED_EXTRA:
            continue
        if req.source_api == SOURCE_API and key not in NEVER_FORWARDED:
            extra[key] = value
        else:
            dropped.append(key)
    merge_extra(body, extra)
    if reasons and (req.reasoning is not None or any(m.thoughts for m in own)):
        body["include"] = with_encrypted(body.get("include"))
    if req.stream:
        body["stream"] = True
    return body, tuple(dropped)
