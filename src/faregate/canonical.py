"""The canonical chat model: every wire format translates to and from these types, never to another format.

A leaf module (like errors.py): pure frozen dataclasses, importable from every layer. Routing reads a
`ChatRequest` to extract features; each provider adapter renders it to its wire format and parses the
upstream's answer back into a `ChatResponse` or a sequence of `StreamEvent`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
WireApi = Literal["openai", "anthropic", "gemini", "openai-responses"]

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, either by URL (`url`) or inline (`data_b64` with `media_type`)."""

    url: str | None = None
    data_b64: str | None = None
    media_type: str | None = None
    detail: str | None = None


Part: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. `role="tool"` carries a tool result for `tool_call_id`; `system` folds in `developer`."""

    role: Role
    content: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False  # a tool result that reports a failure (Anthropic's `is_error`)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`auto`, `none`, `required` (any tool), or `tool` with `name` (that one tool)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Reasoning:
    """How hard the model should think: OpenAI's `reasoning_effort`, Anthropic's `thinking` budget,
    Gemini's `thinkingConfig`, OpenRouter's `reasoning`. Either field may be unset; each format renders
    the one it has, converting the other (`providers/reasoning.py`). `effort="none"` turns thinking off;
    both unset is "the model decides" (Anthropic's adaptive thinking, Gemini's dynamic budget)."""

    effort: ReasoningEffort | None = None
    budget_tokens: int | None = None
    include_thoughts: bool = True  # whether the client wants the thinking text back (where it can be had)


# The client formats whose answer names the stop sequence that ended it (Anthropic's `stop_sequence`).
# For them, an upstream that does not say which one matched gets none: faregate matches them itself.
NAMES_STOP_SEQUENCE: frozenset[WireApi] = frozenset({"anthropic"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the client asked for, whatever format it spoke. Routing fields live in `RoutingRequest`."""

    model: str | None
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: Mapping[str, Any] | None = None  # OpenAI's shape: {"type": "json_object"} or json_schema
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    user: str | None = None
    top_k: int | None = None
    reasoning: Reasoning | None = None
    # Tools the provider runs itself (the Responses API's `web_search`, `file_search`, ...), as the client
    # sent them: only a Responses upstream can carry them, so routing keeps such a request on one.
    hosted_tools: tuple[Mapping[str, Any], ...] = ()
    source_api: WireApi = "openai"
    # Fields of the source format that have no canonical meaning; forwarded only to an upstream that
    # speaks the same format (e.g. OpenAI's `seed`, `logprobs`), dropped (and noted) otherwise.
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    @property
    def has_images(self) -> bool:
        return any(isinstance(p, ImagePart) for m in self.messages for p in m.content)

    @property
    def json_mode(self) -> bool:
        return self.response_format is not None and self.response_format.get("type") in (
            "json_object",
            "json_schema",
        )

    @property
    def user_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role == "user")

    @property
    def json_schema(self) -> Mapping[str, Any] | None:
        """The schema of a `json_schema` response format, when there is one."""
        fmt = self.response_format
        spec = fmt.get("json_schema") if fmt is not None and fmt.get("type") == "json_schema" else None
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return schema if isinstance(schema, Mapping) else None

    def stops_for(self, names_stop: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(stop sequences to send upstream, stop sequences faregate must match itself). An upstream that
        does not name the matching sequence (`names_stop` False) gets none when the client needs the name."""
        if self.stop and not names_stop and self.source_api in NAMES_STOP_SEQUENCE:
            return (), self.stop
        return self.stop, ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0  # part of prompt_tokens served from the provider's prompt cache
    cache_write_tokens: int = 0  # part of prompt_tokens written to the cache (Anthropic bills these extra)
    estimated: bool = False  # counted by faregate with tiktoken because the upstream reported none
    reasoning_tokens: int = 0  # part of completion_tokens spent thinking, when the upstream says

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Choice:
    """One more answer to the same prompt (OpenAI's `n`), after the response's own first one."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    logprobs: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    id: str
    model: str  # the upstream's model id as it answered
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    created: int = 0
    stop_sequence: str | None = None  # the stop sequence that ended the answer, when the upstream says which
    logprobs: Mapping[str, Any] | None = (
        None  # the first choice's, in OpenAI's shape, as the upstream sent it
    )
    more_choices: tuple[Choice, ...] = ()  # choices 1..n-1 when the request asked for `n` > 1


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str | None
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage


# --- stream events: what a decoder yields from an upstream stream, and an encoder writes to a client ---


@dataclass(frozen=True, slots=True)
class Start:
    id: str
    model: str
    usage: Usage | None = None  # the prompt tokens known when the stream starts (Anthropic's message_start)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int  # position of this call among the response's tool calls, from 0
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    index: int
    arguments: str  # a fragment of the JSON arguments


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of a stream: why it stopped, and the usage when the upstream reported it."""

    finish_reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None


StreamEvent: TypeAlias = Start | TextDelta | ToolCallStart | ToolArgsDelta | Finish


def collect_stream(events: list[StreamEvent]) -> ChatResponse:
    """Fold a complete event sequence into the response a non-streaming call would have given."""
    rid, model, text = "", "", []
    calls: dict[int, list[str]] = {}
    finish: Finish = Finish("stop")
    for ev in events:
        match ev:
            case Start():
                rid, model = ev.id, ev.model
            case TextDelta():
                text.append(ev.text)
            case ToolCallStart():
                calls[ev.index] = [ev.id, ev.name, ""]
            case ToolArgsDelta():
                calls[ev.index][2] += ev.arguments
            case Finish():
                finish = ev
    tool_calls = tuple(ToolCall(c[0], c[1], c[2]) for _, c in sorted(calls.items()))
    return ChatResponse(
        rid,
        model,
        "".join(text),
        tool_calls,
        finish.finish_reason,
        finish.usage,
        stop_sequence=finish.stop_sequence,
    )
