"""The canonical chat model: every wire format translates to and from these types, never to another format.

A leaf module (like errors.py): pure frozen dataclasses, importable from every layer. Routing reads a
`ChatRequest` to extract features; each provider adapter renders it to its wire format and parses the
upstream's answer back into a `ChatResponse` or a sequence of `StreamEvent`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from faregate.values import frozen

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
WireApi = Literal["openai", "anthropic", "gemini", "openai-responses"]

EMPTY: Mapping[str, Any] = MappingProxyType({})


@frozen
class TextPart:
    text: str


@frozen
class ImagePart:
    """An image, either by URL (`url`), inline (`data_b64` with `media_type`) or by the provider's own
    `file_id` (a Responses upstream's upload, which only such a channel takes: see `ChatRequest.files`).
    `source` is where the client put it (`input[0].content[1]`), for errors."""

    url: str | None = None
    data_b64: str | None = None
    media_type: str | None = None
    detail: str | None = None
    file_id: str | None = None
    source: str | None = field(default=None, compare=False)


@frozen
class FilePart:
    """A file for the model to read that is not plain text (a text file becomes a `TextPart`): inline
    (`data_b64` with `media_type`), by URL (`url`, which the provider fetches: faregate never does) or by the
    provider's own `file_id`. `source` is where the client put it (`input[0].content[1]`), for errors."""

    filename: str | None = None
    data_b64: str | None = None
    media_type: str | None = None
    url: str | None = None
    file_id: str | None = None
    source: str | None = field(default=None, compare=False)

    @property
    def pdf(self) -> bool:
        """An inline PDF: the file type most upstream formats read (Anthropic, Gemini, Responses)."""
        return self.data_b64 is not None and self.media_type == PDF


PDF: str = "application/pdf"

Part: TypeAlias = TextPart | ImagePart | FilePart


@frozen
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it


@frozen
class Thought:
    """One piece of the model's reasoning (an Anthropic thinking block, a Gemini thought part, a Responses
    reasoning item, an OpenAI-compatible `reasoning_content`). `signature` is the provider's opaque proof
    that the text is the model's own (Anthropic's `signature`, Gemini's `thoughtSignature`, Responses'
    `encrypted_content`), valid only for an upstream of format `origin`: `signed_for` hands each upstream
    only its own. `redacted` is Anthropic's `redacted_thinking`: no text, `signature` holds its `data`."""

    text: str = ""
    signature: str | None = None
    origin: WireApi | None = None
    redacted: bool = False


def signed_for(thoughts: tuple[Thought, ...], api: WireApi) -> tuple[Thought, ...]:
    """The thoughts an upstream of format `api` may be sent back: those it signed itself. A thought with no
    signature, or another format's, proves nothing to it (Anthropic rejects a bad signature): dropped."""
    return tuple(t for t in thoughts if t.origin == api and t.signature)


@frozen
class Message:
    """One turn. `role="tool"` carries a tool result for `tool_call_id`; `system` folds in `developer`."""

    role: Role
    content: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False  # a tool result that reports a failure (Anthropic's `is_error`)
    thoughts: tuple[Thought, ...] = ()  # an assistant turn's reasoning, passed back by the client
    # An assistant turn's output items of tools a Responses upstream ran (`web_search_call`, ...), passed
    # back: sent unchanged to a Responses upstream only (every other format has the answer they led to).
    provider_items: tuple[Mapping[str, Any], ...] = ()

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@frozen
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@frozen
class ToolChoice:
    """`auto`, `none`, `required` (any tool), or `tool` with `name` (that one tool)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


@frozen
class Reasoning:
    """How hard the model should think: OpenAI's `reasoning_effort`, Anthropic's `thinking` budget,
    Gemini's `thinkingConfig`, OpenRouter's `reasoning`. Either field may be unset; each format renders
    the one it has, converting the other (`providers/reasoning.py`). `effort="none"` turns thinking off;
    both unset is "the model decides" (Anthropic's adaptive thinking, Gemini's dynamic budget)."""

    effort: ReasoningEffort | None = None
    budget_tokens: int | None = None
    include_thoughts: bool = True  # whether the client wants the thinking text back (where it can be had)


FormatKind = Literal["text", "json_object", "json_schema"]
JSON_KINDS: frozenset[str] = frozenset({"json_object", "json_schema"})


@frozen(eq=False)
class ResponseFormat:
    """The shape the answer must have: plain text, any JSON object, or JSON matching `schema` (with the
    name, strictness and description OpenAI's `json_schema` gives it). An inbound parses it once; each
    upstream renders its own form. Compares equal to its OpenAI wire shape, the form traces speak."""

    kind: FormatKind
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None

    @classmethod
    def from_openai(cls, value: Mapping[str, Any]) -> ResponseFormat:
        """From a chat completions `response_format` the inbound has validated."""
        kind = value["type"]
        spec = value.get("json_schema") if kind == "json_schema" else None
        if not isinstance(spec, Mapping):
            return cls(kind)
        schema = spec.get("schema")
        return cls(
            kind,
            spec.get("name"),
            schema if isinstance(schema, Mapping) else None,
            spec.get("strict"),
            spec.get("description"),
        )

    @property
    def json(self) -> bool:
        return self.kind in JSON_KINDS

    def schema_spec(self) -> JSONObject:
        """OpenAI's `json_schema` object: name, schema, strict, description (those set)."""
        fields = (
            ("name", self.name),
            ("schema", self.schema),
            ("strict", self.strict),
            ("description", self.description),
        )
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in fields if v is not None}

    def as_openai(self) -> JSONObject:
        out: JSONObject = {"type": self.kind}
        if self.kind == "json_schema":
            out["json_schema"] = self.schema_spec()
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResponseFormat):
            return self.as_openai() == other.as_openai()
        if isinstance(other, Mapping):
            return self.as_openai() == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.strict, self.description))


# The client formats whose answer names the stop sequence that ended it (Anthropic's `stop_sequence`).
# For them, an upstream that does not say which one matched gets none: faregate matches them itself.
NAMES_STOP_SEQUENCE: frozenset[WireApi] = frozenset({"anthropic"})


@frozen
class Census:
    """What a request's messages carry besides text: its images, its files, its images by file id."""

    images: int = 0
    files: tuple[FilePart, ...] = ()
    image_files: tuple[ImagePart, ...] = ()  # by the provider's `file_id`: only a Responses upstream

    @classmethod
    def of(cls, messages: Sequence[Message]) -> Census:
        parts = [p for m in messages for p in m.content]
        images = [p for p in parts if isinstance(p, ImagePart)]
        return cls(
            len(images),
            tuple(p for p in parts if isinstance(p, FilePart)),
            tuple(p for p in images if p.file_id),
        )

    @property
    def documents(self) -> bool:
        """Inline PDFs, which several formats read (`FilePart.pdf`)."""
        return any(p.pdf for p in self.files)

    @property
    def provider_files(self) -> bool:
        """Files by id, by URL, or inline of a type other than PDF; images by file id."""
        return any(not p.pdf for p in self.files) or bool(self.image_files)


PLAIN: Final = Census()


@frozen
class ChatRequest:
    """What the client asked for, whatever format it spoke. Routing fields live in `RoutingRequest`."""

    model: str | None
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
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

    def __post_init__(self) -> None:
        fmt: object = self.response_format
        if fmt is not None and not isinstance(fmt, ResponseFormat):  # given in OpenAI's wire shape
            object.__setattr__(self, "response_format", ResponseFormat.from_openai(fmt))  # type: ignore[arg-type]

    def census(self) -> Census:
        """What the messages carry besides text, in one pass (`PLAIN` for text only, the common case)."""
        for m in self.messages:
            for p in m.content:
                if type(p) is not TextPart:
                    return Census.of(self.messages)
        return PLAIN

    @property
    def has_images(self) -> bool:
        return self.census().images > 0

    @property
    def json_mode(self) -> bool:
        return self.response_format is not None and self.response_format.json

    def files(self) -> tuple[FilePart, ...]:
        return self.census().files

    def image_files(self) -> tuple[ImagePart, ...]:
        """Images by the provider's `file_id`, which only a Responses upstream takes."""
        return self.census().image_files

    def input_files(self) -> list[FilePart | ImagePart]:
        """What routing places by capability (`has_documents`, `has_provider_files`), named in its errors."""
        c = self.census()
        return [*c.files, *c.image_files]

    @property
    def has_documents(self) -> bool:
        """Inline PDFs, which several formats read (`FilePart.pdf`)."""
        return self.census().documents

    @property
    def has_provider_files(self) -> bool:
        """Files only a Responses upstream takes: by id, by URL, or inline of a type other than PDF; images by
        file id."""
        return self.census().provider_files

    @property
    def user_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role == "user")

    @property
    def json_schema(self) -> Mapping[str, Any] | None:
        """The schema of a `json_schema` response format, when there is one."""
        fmt = self.response_format
        return fmt.schema if fmt is not None and fmt.kind == "json_schema" else None

    def stops_for(self, names_stop: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(stop sequences to send upstream, stop sequences faregate must match itself). An upstream that
        does not name the matching sequence (`names_stop` False) gets none when the client needs the name."""
        if self.stop and not names_stop and self.source_api in NAMES_STOP_SEQUENCE:
            return (), self.stop
        return self.stop, ()


@frozen
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


@frozen
class Choice:
    """One more answer to the same prompt (OpenAI's `n`), after the response's own first one."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    logprobs: Mapping[str, Any] | None = None


@frozen
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
    thoughts: tuple[Thought, ...] = ()  # the first choice's reasoning, in the order the model produced it
    # Output items with no canonical meaning, as a Responses upstream sent them (its built-in tools' calls:
    # `web_search_call`, `file_search_call`, ...), and the annotations of the answer text (`url_citation`):
    # a Responses client gets them unchanged, every other format ignores them.
    provider_items: tuple[Mapping[str, Any], ...] = ()
    annotations: tuple[Mapping[str, Any], ...] = ()

    @property
    def reasoning_text(self) -> str:
        """The reasoning as one text (redacted thoughts have none)."""
        return "".join(t.text for t in self.thoughts)


@frozen
class EmbeddingRequest:
    model: str | None
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    source_api: WireApi = "openai"  # the client's format: `extra` is in its names


@frozen
class EmbeddingResponse:
    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage


# --- stream events: what a decoder yields from an upstream stream, and an encoder writes to a client ---


@frozen
class Start:
    id: str
    model: str
    usage: Usage | None = None  # the prompt tokens known when the stream starts (Anthropic's message_start)


@frozen
class TextDelta:
    text: str
    choice: int = 0  # which answer (OpenAI's `n`): only OpenAI-format streams have others than 0
    logprobs: tuple[Mapping[str, Any], ...] = ()  # this text's tokens, in OpenAI's `logprobs.content` shape


@frozen
class ReasoningDelta:
    """A fragment of the model's reasoning. A `signature` ends the current thought (Anthropic sends it after
    the thinking text, in `signature_delta`); `redacted` is a whole redacted thought (`signature`: its data).
    Consumers that show no reasoning ignore it; it never counts as answer text (stop sequences)."""

    text: str
    signature: str | None = None
    choice: int = 0
    origin: WireApi | None = None
    redacted: bool = False


@frozen
class ToolCallStart:
    index: int  # position of this call among the response's tool calls, from 0
    id: str
    name: str
    choice: int = 0


@frozen
class ToolArgsDelta:
    index: int
    arguments: str  # a fragment of the JSON arguments
    choice: int = 0


@frozen
class Finish:
    """The last event of a stream: why it stopped, and the usage when the upstream reported it."""

    finish_reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None
    more: tuple[tuple[int, FinishReason], ...] = ()  # (choice, finish reason) of the choices after 0


@frozen
class ProviderEvent:
    """A stream event with no canonical meaning (a Responses upstream's built-in tool items and their
    progress, `response.web_search_call.searching`, the annotations of its text), relayed as is to a client
    of format `origin`; every other encoder ignores it. `data`: the event less `type` and `sequence_number`."""

    type: str
    data: Mapping[str, Any]
    origin: WireApi


StreamEvent: TypeAlias = (
    Start | TextDelta | ReasoningDelta | ToolCallStart | ToolArgsDelta | Finish | ProviderEvent
)


@dataclass(slots=True)
class ThoughtFold:
    """Reasoning deltas folded into `Thought`s: a signature closes the open thought, and so does the answer
    moving on (text or a tool call), so interleaved thinking stays in its pieces."""

    done: list[Thought] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def feed(self, ev: ReasoningDelta) -> None:
        if ev.redacted:
            self.cut()
            self.done.append(Thought("", ev.signature, ev.origin, redacted=True))
            return
        self.text.append(ev.text)
        if ev.signature is not None:
            self.done.append(Thought("".join(self.text), ev.signature, ev.origin))
            self.text.clear()

    def cut(self) -> None:
        """The answer moved on: an open, unsigned thought is complete."""
        text = "".join(self.text)
        if text:
            self.done.append(Thought(text))
        self.text.clear()

    def thoughts(self) -> tuple[Thought, ...]:
        self.cut()
        return tuple(self.done)


def collect_stream(events: list[StreamEvent]) -> ChatResponse:
    """Fold a complete event sequence into the response a non-streaming call would have given."""
    rid, model, text = "", "", []
    calls: dict[int, list[str]] = {}
    finish: Finish = Finish("stop")
    fold = ThoughtFold()
    for ev in events:
        if getattr(ev, "choice", 0):
            continue  # the first answer only (the others are OpenAI's `n`, rendered by its encoder)
        match ev:
            case Start():
                rid, model = ev.id, ev.model
            case TextDelta():
                text.append(ev.text)
                fold.cut()
            case ReasoningDelta():
                fold.feed(ev)
            case ToolCallStart():
                fold.cut()
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
        thoughts=fold.thoughts(),
    )
