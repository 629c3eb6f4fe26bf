"""Canonical request → OpenAI chat completions / embeddings body (for OpenAI and every compatible server).

Runs once per upstream attempt, so it builds plain dicts directly; None and empty fields are omitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from faregate.canonical import (
    ChatRequest,
    EmbeddingRequest,
    FilePart,
    ImagePart,
    JSONObject,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from faregate.providers.fields import DECLARABLE, forwardable, translate_extra
from faregate.providers.params import Param, apply_params, merge_extra
from faregate.providers.reasoning import effort_of, in_family, with_reasoning
from faregate.providers.wire import data_url, file_fields

# OpenAI models that reason and take `reasoning_effort` (any other answers 400 to it).
REASONING_PREFIXES: Final = ("o1", "o3", "o4", "gpt-5", "gpt-6", "gpt-oss")
# Chat-completions fields an OpenAI-format upstream gets: faregate's own, and the client's as they are.
PARAMETERS: Final = frozenset(
    {
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream", "user", "seed",
        "n", "logprobs", "top_logprobs", "frequency_penalty", "presence_penalty", "logit_bias",
        "tools", "tool_choice", "parallel_tool_calls", "response_format",
    }
)  # fmt: skip


# Another format's extra fields with a meaning here: `parallel_tool_calls: false` (a Responses client's, or an
# Anthropic client's `disable_parallel_tool_use`).
HANDLED_EXTRA: Final = frozenset({"parallel_tool_calls"})


def parameters(upstream_id: str, declared: frozenset[str] = frozenset()) -> frozenset[str]:
    """What reaches `upstream_id`: OpenAI's own fields, and the OpenRouter ones its provider declares."""
    own = with_reasoning(PARAMETERS, in_family(upstream_id, REASONING_PREFIXES))
    return own | (declared & DECLARABLE) if declared else own


# Only user messages may carry images on OpenAI's API; elsewhere they are dropped and noted.
IMAGE_ROLES: Final = frozenset({"user"})

# Canonical fields OpenAI takes under the same names and ranges. `stop` and `reasoning` are functions below.
PARAMS: Final[Mapping[str, Param]] = MappingProxyType(
    {
        "response_format": Param("response_format", transform=ResponseFormat.as_openai),
        "max_tokens": Param("max_tokens"),
        "temperature": Param("temperature"),
        "top_p": Param("top_p"),
        "user": Param("user"),
    }
)


def render_file(part: FilePart) -> JSONObject:
    """Chat completions' `file` part (inline data or the provider's file id; a file URL it cannot carry,
    which `render_content` drops)."""
    return {"type": "file", "file": file_fields(part)}


def render_part(part: Part) -> JSONObject:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, FilePart):
        return render_file(part)
    url = part.url if part.url is not None else data_url(part.media_type, part.data_b64 or "")
    image: JSONObject = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def render_content(m: Message, dropped: list[str]) -> str | list[JSONObject] | None:
    """A single text part as a string (what every compatible server accepts), else a list of parts."""
    parts = m.content
    if len(parts) == 1 and type(parts[0]) is TextPart:
        return parts[0].text  # the common case, first
    if any(isinstance(p, FilePart) and p.file_id is None and p.data_b64 is None for p in parts):
        dropped.append(f"{m.role} message file_url")
        parts = tuple(p for p in parts if not isinstance(p, FilePart) or p.file_id or p.data_b64)
    if m.role not in IMAGE_ROLES and any(isinstance(p, ImagePart) for p in parts):
        dropped.append(f"{m.role} message image")
        parts = tuple(p for p in parts if isinstance(p, TextPart))
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    if not parts:
        return None if m.tool_calls else ""
    return [render_part(p) for p in parts]


def render_tool_call(call: ToolCall) -> JSONObject:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def render_message(m: Message, dropped: list[str]) -> JSONObject:
    out: JSONObject = {"role": m.role, "content": render_content(m, dropped)}
    if m.tool_calls:
        out["tool_calls"] = [render_tool_call(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None and m.role != "tool":
        out["name"] = m.name
    return out


def render_tool(t: Tool) -> JSONObject:
    fn: JSONObject = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    if t.parameters:
        fn["parameters"] = t.parameters
    return {"type": "function", "function": fn}


def render_tool_choice(choice: ToolChoice) -> str | JSONObject:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def render_request(
    req: ChatRequest, upstream_id: str, accepted: frozenset[str] = frozenset()
) -> tuple[JSONObject, tuple[str, ...]]:
    """The chat completions body and the request fields it could not carry. `accepted`: the OpenRouter
    sampling fields (`top_k`, `min_p`, ...) the upstream's provider declares it takes; others are dropped."""
    dropped: list[str] = []
    body: JSONObject = {"model": upstream_id, "messages": [render_message(m, dropped) for m in req.messages]}
    if req.tools:
        body["tools"] = [render_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = render_tool_choice(req.tool_choice)
    apply_params(body, req, PARAMS)
    stops, _ = req.stops_for(names_stop=False)
    if stops:
        body["stop"] = list(stops)
    if req.top_k is not None:
        if "top_k" in accepted:
            body["top_k"] = req.top_k
        else:
            dropped.append("top_k")  # OpenAI's API has no top_k
    render_reasoning(body, req, upstream_id, dropped)
    if req.stream:
        # Always ask for the usage chunk, whatever the client asked: cost comes from upstream usage.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.extra:
        if req.source_api == "openai":
            extra, unsent = forwardable(req.extra, "openai", accepted)
            if "max_completion_tokens" in extra:
                body.pop("max_tokens", None)  # the client used the newer name; send only that one
            merge_extra(body, extra)
            dropped.extend(unsent)
        else:
            other = {k: v for k, v in req.extra.items() if k not in HANDLED_EXTRA}
            mapped, unsent = translate_extra(other, req.source_api, "openai", accepted)  # Gemini's seed
            merge_extra(body, mapped)
            dropped.extend(unsent)
            if req.extra.get("parallel_tool_calls") is False and req.tools:
                body["parallel_tool_calls"] = False  # OpenAI refuses it on a request without tools
    return body, tuple(dropped)


def render_reasoning(body: JSONObject, req: ChatRequest, upstream_id: str, dropped: list[str]) -> None:
    """`reasoning_effort` for a model that reasons; noted as dropped for one that does not."""
    if req.reasoning is None:
        return
    effort = effort_of(req.reasoning)
    if effort is None:
        return  # the model decides: OpenAI's default
    if not in_family(upstream_id, REASONING_PREFIXES):
        dropped.append("reasoning")
        return
    body["reasoning_effort"] = effort


def render_embeddings(req: EmbeddingRequest, upstream_id: str) -> tuple[JSONObject, tuple[str, ...]]:
    """The embeddings body. Vectors are always asked for as floats (the default): base64 is not decoded."""
    body: JSONObject = {"model": upstream_id, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user is not None:
        body["user"] = req.user
    dropped: list[str] = []
    if req.extra and req.source_api != "openai":
        dropped = list(req.extra)  # another format's settings (Gemini's taskType, title): none is OpenAI's
    elif req.extra:
        extra, dropped = forwardable(req.extra, "openai")
        if extra.pop("encoding_format", "float") != "float":
            dropped.append("encoding_format")
        merge_extra(body, extra)
    return body, tuple(dropped)
