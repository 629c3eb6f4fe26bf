"""Deterministic answers: the same prompt always gets the same text, tool call and token counts.

Wire modules parse their request into a `Prompt`; `answer()` decides what the model says and counts
usage; each wire module renders the `Answer` in its own format, streamed or not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from typing import Final, Literal

from faregate.simulator.model import JSON, CountTokens, JSONObject
from faregate.values import frozen

ToolMode = Literal["auto", "none", "any", "tool"]
Finish = Literal["stop", "length", "stop_sequence", "tool_call"]

# Counting rules (documented in DESIGN's simulator section): per message, per reply, per image.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
TOKENS_PER_IMAGE = 85
MAX_REPLY_TOKENS = 100_000
SAID_WORDS = 12
TOOL_RESULT_CHARS = 80

# Common English words of one token each, so that N filler words make about N tokens.
FILLER: Final = tuple(
    "river stone light garden window morning quiet paper signal harbor bridge market forest orange "  # noqa: SIM905
    "silver simple steady gentle careful bright open clear north south table letter answer number "
    "music winter summer valley mountain station engine pattern little people story water cloud field "
    "road city house green yellow blue round small early later".split()
)
_REPLY_TOKENS = re.compile(r"REPLY_TOKENS=(\d+)")


@frozen
class ToolSpec:
    name: str
    parameters: JSONObject
    description: str = ""


# A prompt "mentions" a tool when it contains one of the tool's words: the words of its name (split at
# `_`, `-`, `.` and camelCase humps) and of its description, case-insensitively, whole words only, of at
# least MIN_TOOL_WORD letters and not in COMMON_WORDS (which every other prompt would contain).
MIN_TOOL_WORD = 4
COMMON_WORDS: Final = frozenset(
    "about also been call calls does each ever from function functions give given have into just like "  # noqa: SIM905
    "make many more most much must need only other over returns return same some such than that their "
    "them then there these they this those tool tools used uses using very what when where which while "
    "will with would your".split()
)
_WORD = re.compile(r"[^\W_]+")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(text: str) -> list[str]:
    """The lower-case words of `text`, camelCase humps split (`getWeather` → get, weather)."""
    return [w.lower() for w in _WORD.findall(_HUMP.sub(" ", text))]


def tool_words(tool: ToolSpec) -> frozenset[str]:
    """The words of a tool's name and description a prompt can mention it by."""
    return frozenset(
        w
        for w in words(f"{tool.name} {tool.description}")
        if len(w) >= MIN_TOOL_WORD and w not in COMMON_WORDS
    )


def mentioned_tool(tools: tuple[ToolSpec, ...], text: str) -> ToolSpec | None:
    """The tool the text asks for: one named in full first, else the first (in declaration order) whose
    name or description shares a word with it."""
    named = next((t for t in tools if t.name and t.name in text), None)
    if named is not None:
        return named
    said = set(words(text))
    return next((t for t in tools if tool_words(t) & said), None)


@frozen
class Prompt:
    """What any wire format's request says, as far as the simulated model cares."""

    texts: tuple[str, ...]  # every text in the conversation, system included, for counting
    message_count: int
    last_user_text: str = ""
    image_count: int = 0
    tools: tuple[ToolSpec, ...] = ()
    tools_json: str = ""  # the tool definitions as sent, for counting
    tool_mode: ToolMode = "auto"
    forced_tool: str | None = None
    tool_result: str | None = None  # the last message is a tool result with this text
    json_mode: bool = False
    json_schema: JSONObject | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    thinks: bool = False  # the request turned thinking on: the answer starts with a short thought


@frozen
class ToolCall:
    name: str
    arguments: JSONObject

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@frozen
class Answer:
    text: str
    tool_call: ToolCall | None
    finish: Finish
    stop_sequence: str | None
    prompt_tokens: int
    completion_tokens: int  # the thinking's tokens included: providers bill them as output
    digest: str  # hex; seeds ids so that the same prompt gets the same ids
    thinking: str = ""  # the model's thought before it answers (when the request turned thinking on)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def answer(prompt: Prompt, label: str, count_tokens: CountTokens, choice: int = 0) -> Answer:
    """The simulated model's reply to `prompt`; `label` is e.g. `openai/gpt-4o-mini`. `choice` > 0 gives
    another answer to the same prompt (OpenAI's `n`): its own words, the same shape."""
    digest = _digest(label, prompt) if choice == 0 else stable_hash(_digest(label, prompt), str(choice))
    prompt_tokens = count_prompt(prompt, count_tokens)
    thought = thinking_text(prompt, label) if prompt.thinks else ""
    thought_tokens = count_tokens(thought) if thought else 0
    tool = pick_tool(prompt)
    if tool is not None:
        call = ToolCall(tool.name, synthesize(tool.parameters))
        tokens = count_tokens(call.arguments_json) + thought_tokens
        return Answer("", call, "tool_call", None, prompt_tokens, tokens, digest, thought)
    text = reply_text(prompt, label, digest, count_tokens)
    finish: Finish = "stop"
    stop_sequence = None
    hits = [(text.find(s), s) for s in prompt.stop if s and s in text]
    if hits:
        cut, stop_sequence = min(hits)
        text, finish = text[:cut], "stop_sequence"
    if prompt.max_tokens is not None and count_tokens(text) > prompt.max_tokens:
        text, finish, stop_sequence = truncate(text, prompt.max_tokens, count_tokens), "length", None
    tokens = count_tokens(text) + thought_tokens
    return Answer(text, None, finish, stop_sequence, prompt_tokens, tokens, digest, thought)


def thinking_text(prompt: Prompt, label: str) -> str:
    """The simulated model's thought: short, and the same for the same conversation. Every format's
    thinking is this text (Anthropic's thinking block, `reasoning_content`, Gemini's thought part, the
    Responses reasoning summary); each renders, signs and bills it its own way."""
    if prompt.tool_result is not None:
        return f"[simulated {label}] The tool answered; I can reply now."
    tool = pick_tool(prompt)
    if tool is not None:
        return f"[simulated {label}] The user needs {tool.name}; I will call it."
    said = " ".join(prompt.last_user_text.split()[:SAID_WORDS]).rstrip(".!?") or "(no text)"
    return f"[simulated {label}] The user said: {said}. I will answer briefly."


def thought_signature(thought: str) -> str:
    """A signature over `thought` that carries it (base64 of a MAC and the text), so the simulator can
    check a thought passed back, as the real APIs do, even when the client was shown no text."""
    raw = thought.encode()
    mac = hashlib.sha256(b"faregate-simulator-thought\x00" + raw).digest()[:12]
    return base64.b64encode(mac + raw).decode()


def signed_thought(signature: str) -> str | None:
    """The thought a signature from `thought_signature` was made for; None when it is not one."""
    try:
        raw = base64.b64decode(signature.encode(), validate=True)
    except ValueError:
        return None
    mac, text = raw[:12], raw[12:]
    if hashlib.sha256(b"faregate-simulator-thought\x00" + text).digest()[:12] != mac:
        return None
    try:
        return text.decode()
    except UnicodeDecodeError:
        return None


def count_prompt(prompt: Prompt, count_tokens: CountTokens) -> int:
    tools = count_tokens(prompt.tools_json) if prompt.tools_json else 0
    texts = sum(count_tokens(t) for t in prompt.texts if t)
    images = TOKENS_PER_IMAGE * prompt.image_count
    return texts + tools + images + TOKENS_PER_MESSAGE * prompt.message_count + TOKENS_PER_REPLY


def pick_tool(prompt: Prompt) -> ToolSpec | None:
    """Forced tool choice wins; otherwise a tool the last user text mentions (`mentioned_tool`), unless a
    tool just answered (so an agent's loop ends with a text answer)."""
    if not prompt.tools or prompt.tool_mode == "none":
        return None
    mentioned = mentioned_tool(prompt.tools, prompt.last_user_text)
    match prompt.tool_mode:
        case "tool":
            return next((t for t in prompt.tools if t.name == prompt.forced_tool), prompt.tools[0])
        case "any":
            return mentioned or prompt.tools[0]
        case _:
            return None if prompt.tool_result is not None else mentioned


def reply_text(prompt: Prompt, label: str, digest: str, count_tokens: CountTokens) -> str:
    head = f"[simulated {label}] "
    if prompt.json_schema is not None:
        return json.dumps(synthesize(prompt.json_schema, text=head.strip()))
    if prompt.tool_result is not None:
        body = head + f"Tool result received: {prompt.tool_result[:TOOL_RESULT_CHARS]}"
    else:
        words = prompt.last_user_text.split()
        said = " ".join(words[:SAID_WORDS]).rstrip(".!?") if words else "(no text)"
        body = head + f"You said: {said}."
        wanted = _REPLY_TOKENS.search(prompt.last_user_text)
        seed = int(digest[:8], 16)
        if wanted:
            target = min(int(wanted.group(1)), MAX_REPLY_TOKENS)
            filler = _filler(seed, max(target, 1))  # every filler word is at least one token
            body = truncate(f"{body} {filler}", max(target, 1), count_tokens)
        else:
            body = f"{body} {_filler(seed, 6 + seed % 11)}"
    return json.dumps({"answer": body}) if prompt.json_mode else body


def truncate(text: str, max_tokens: int, count_tokens: CountTokens) -> str:
    """The longest prefix of whole words within `max_tokens` (whole characters if no word fits)."""
    words = re.findall(r"\s*\S+", text)
    lo, hi = 0, len(words)
    while lo < hi:  # the largest k with count(words[:k]) <= max_tokens
        mid = (lo + hi + 1) // 2
        if count_tokens("".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    if lo > 0:
        return "".join(words[:lo])
    first = words[0] if words else ""
    lo, hi = 0, len(first)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(first[:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return first[:lo]


def synthesize(schema: JSON, *, text: str = "sample", depth: int = 0) -> JSON:
    """A value that fits a JSON schema: required properties only, filled by type (Gemini's upper-case too)."""
    if not isinstance(schema, dict) or depth > 8:
        return {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return synthesize(schema[key][0], text=text, depth=depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    match str(kind).lower():
        case "object":
            props = schema.get("properties") or {}
            required = [r for r in schema.get("required") or () if r in props]
            return {name: synthesize(props[name], text=text, depth=depth + 1) for name in required}
        case "array":
            return [synthesize(schema.get("items") or {}, text=text, depth=depth + 1)]
        case "number" | "integer":
            return 1
        case "boolean":
            return True
        case "null":
            return None
        case _:
            return text


def embed(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`: components drawn from a hash stream."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        raw = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", raw))
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def default_dimensions(upstream_id: str) -> int:
    """Each embedding model has its own fixed size, 8..64."""
    return 8 + int(hashlib.sha256(upstream_id.encode()).hexdigest()[:8], 16) % 57


def word_deltas(text: str) -> list[str]:
    """Word-sized stream deltas, each word with the whitespace before it; joined they give `text` back."""
    parts = re.findall(r"\s*\S+", text)
    rest = text[len("".join(parts)) :]
    return [*parts[:-1], parts[-1] + rest] if parts else ([text] if text else [])


def token_pieces(text: str, count_tokens: CountTokens) -> list[str]:
    """`text` cut into token-sized pieces (each word split into as many pieces as it counts tokens);
    joined they give `text` back. What the simulator reports logprobs for."""
    pieces: list[str] = []
    for word in word_deltas(text):
        n = max(1, count_tokens(word))
        size = max(1, math.ceil(len(word) / n))
        pieces += [word[i : i + size] for i in range(0, len(word), size)]
    return pieces


def json_fragments(text: str, pieces: int = 3) -> list[str]:
    """Tool arguments split in a few fragments, as providers stream partial JSON."""
    size = max(1, math.ceil(len(text) / pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stable_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _digest(label: str, prompt: Prompt) -> str:
    return stable_hash(label, *prompt.texts, prompt.tools_json, str(prompt.image_count))


def _filler(seed: int, count: int) -> str:
    words = [FILLER[(seed + i * 7 + (seed >> (i % 13))) % len(FILLER)] for i in range(count)]
    return " ".join(words) + "."
