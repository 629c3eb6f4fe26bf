"""Canonical requests → Gemini's wire: `generateContent` / `streamGenerateContent` and `batchEmbedContents`.

Tables for renames and clamps, small functions for structure (system instruction, turns, parts, tools).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote_to_bytes, urlsplit

from faregate.canonical import (
    PDF,
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
    ToolChoice,
)
from faregate.providers.base import Target, UpstreamCall
from faregate.providers.fields import translate_extra
from faregate.providers.gemini.schema import strip_schema
from faregate.providers.gemini.thoughts import sign_for_upstream
from faregate.providers.params import Param, apply_params, merge_extra
from faregate.providers.reasoning import THOUGHTS_ASKED, budget_of, in_family, with_reasoning
from faregate.providers.wire import dumps, join_url

# ChatRequest sampling fields -> Gemini `generationConfig`. Fields not listed here and not rendered by a
# function below are dropped and named in `UpstreamCall.dropped`.
GENERATION_PARAMS: Final[Mapping[str, Param]] = MappingProxyType(
    {
        "max_tokens": Param("maxOutputTokens"),
        "temperature": Param("temperature", min=0.0, max=2.0),  # Gemini's range, like OpenAI's
        "top_p": Param("topP", min=0.0, max=1.0),
        "stop": Param("stopSequences", transform=list),
        "top_k": Param("topK"),
    }
)
# Gemini models that think and take `thinkingConfig` (2.0 and older answer 400 to it).
THINKING_PREFIXES: Final = ("gemini-2.5", "gemini-3", "gemini-flash", "gemini-pro")
# Chat-completions fields that reach a Gemini model (as generationConfig, tools, thinkingConfig; `seed` and
# the penalties through `fields.py::SAMPLING`).
PARAMETERS: Final = frozenset(
    {
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "stream",
        "tools", "tool_choice", "response_format", "seed", "presence_penalty", "frequency_penalty",
    }
)  # fmt: skip


def parameters(upstream_id: str) -> frozenset[str]:
    return with_reasoning(PARAMETERS, in_family(bare_model_id(upstream_id), THINKING_PREFIXES))


ROLES: Final[Mapping[str, str]] = MappingProxyType({"user": "user", "assistant": "model", "tool": "user"})

TOOL_MODES: Final[Mapping[str, str]] = MappingProxyType(
    {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
)

# `fileData` needs a MIME type and Gemini does not sniff one from a URL: guessed from the extension.
IMAGE_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".webp": "image/webp",
        ".gif": "image/gif",
        ".heic": "image/heic",
        ".heif": "image/heif",
    }
)
DEFAULT_IMAGE_TYPE: Final = "image/jpeg"
JSON_MIME: Final = "application/json"


def chat_call(req: ChatRequest, target: Target) -> UpstreamCall:
    stops, local = req.stops_for(names_stop=False)
    body, dropped = render_chat(req if stops == req.stop else replace(req, stop=stops), target.upstream_id)
    method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
    return UpstreamCall("POST", model_url(target, method), headers(target), dumps(body), dropped, local)


EMBED_SETTINGS: Final = frozenset({"taskType", "title"})  # an EmbedContentRequest's own, per request


def embeddings_call(req: EmbeddingRequest, target: Target) -> UpstreamCall:
    model = f"models/{bare_model_id(target.upstream_id)}"
    # A Gemini client's taskType and title go into every request; any other client's extras are dropped.
    own = {k: v for k, v in req.extra.items() if k in EMBED_SETTINGS} if req.source_api == "gemini" else {}
    requests: list[JSONObject] = []
    for text in req.inputs:
        item: JSONObject = {"model": model, "content": {"parts": [{"text": text}]}, **own}
        if req.dimensions is not None:
            item["outputDimensionality"] = req.dimensions
        requests.append(item)
    dropped = (("user",) if req.user is not None else ()) + tuple(k for k in req.extra if k not in own)
    url = model_url(target, "batchEmbedContents")
    return UpstreamCall("POST", url, headers(target), dumps({"requests": requests}), dropped)


def model_url(target: Target, method: str) -> str:
    return join_url(target.base_url, f"/models/{bare_model_id(target.upstream_id)}:{method}")


def bare_model_id(upstream_id: str) -> str:
    """Gemini's listing names models `models/gemini-2.0-flash`; the URL wants the id once."""
    return upstream_id.removeprefix("models/")


def headers(target: Target) -> dict[str, str]:
    """The key travels in `x-goog-api-key`, never in the URL (where it would end up in logs)."""
    out = {"Content-Type": JSON_MIME}
    if target.api_key:
        out["x-goog-api-key"] = target.api_key
    return out


def render_chat(req: ChatRequest, upstream_id: str = "") -> tuple[JSONObject, tuple[str, ...]]:
    """The `generateContent` body, and the names of the request fields Gemini cannot carry."""
    system, contents = render_messages(req.messages)
    body: JSONObject = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [render_tool(t) for t in req.tools]}]
        if req.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": render_tool_choice(req.tool_choice)}
    config, dropped = render_generation_config(req)
    render_thinking(config, req, upstream_id, dropped)
    if config:
        body["generationConfig"] = config
    if req.user is not None:
        dropped.append("user")  # Gemini has no end-user field
    if req.source_api == "gemini":
        merge_extra(body, nested(req.extra))  # a Gemini client's own fields (safetySettings, seed, ...)
    else:
        mapped, unsent = translate_extra(req.extra, req.source_api, "gemini")  # OpenAI's seed, penalties
        merge_extra(body, nested(mapped))
        dropped.extend(unsent)
    return body, tuple(dropped)


def render_messages(messages: Iterable[Message]) -> tuple[list[JSONObject], list[JSONObject]]:
    """System text for `systemInstruction`, and the turns: consecutive same-role turns merged (Gemini
    wants a user turn to carry all the function responses of the model turn before it)."""
    system: list[JSONObject] = []
    contents: list[JSONObject] = []
    names: dict[str, str] = {}  # tool call id -> function name: a functionResponse is matched by name
    for msg in messages:
        if msg.role == "system":
            system.extend({"text": p.text} for p in msg.content if isinstance(p, TextPart) and p.text)
            continue
        parts = render_turn(msg, names)
        if not parts:
            continue  # Gemini rejects a turn without parts
        role = ROLES[msg.role]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def render_turn(msg: Message, names: dict[str, str]) -> list[JSONObject]:
    if msg.role == "tool":
        images = [p for p in msg.content if isinstance(p, ImagePart)]
        return [render_function_response(msg, names), *render_parts(images)]
    parts = render_parts(msg.content)
    for call in msg.tool_calls:
        names[call.id] = call.name
        parts.append({"functionCall": {"name": call.name, "args": parse_arguments(call.arguments)}})
    if msg.thoughts:
        sign_for_upstream(parts, msg.thoughts)
    return parts


def render_parts(content: Iterable[Part]) -> list[JSONObject]:
    """Text and images; of input files, inline PDFs (routing keeps other files off Gemini channels)."""
    out: list[JSONObject] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:  # Gemini rejects an empty text part
                out.append({"text": part.text})
        elif isinstance(part, FilePart):
            if part.pdf and part.data_b64 is not None:
                out.append(inline_data(PDF, part.data_b64))
        else:
            out.append(render_image(part))
    return out


def render_image(image: ImagePart) -> JSONObject:
    if image.data_b64 is not None:
        return inline_data(image.media_type or DEFAULT_IMAGE_TYPE, image.data_b64)
    url = image.url or ""
    if url.startswith("data:"):  # OpenAI clients send inline images as data URLs
        header, _, payload = url[len("data:") :].partition(",")
        mime = header.split(";")[0] or DEFAULT_IMAGE_TYPE
        data = payload if ";base64" in header else base64.b64encode(unquote_to_bytes(payload)).decode()
        return inline_data(mime, data)
    return {"fileData": {"mimeType": image.media_type or guess_image_type(url), "fileUri": url}}


def inline_data(mime: str, data_b64: str) -> JSONObject:
    return {"inlineData": {"mimeType": mime, "data": data_b64}}


def guess_image_type(url: str) -> str:
    path = urlsplit(url).path.lower()
    suffix = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
    return IMAGE_TYPES.get(suffix, DEFAULT_IMAGE_TYPE)


def render_function_response(msg: Message, names: Mapping[str, str]) -> JSONObject:
    name = names.get(msg.tool_call_id or "") or msg.name or "unknown"
    # Gemini's convention for a failed call: the response object carries an `error` key.
    response = {"error": msg.text} if msg.is_error else tool_result_object(msg.text)
    return {"functionResponse": {"name": name, "response": response}}


def tool_result_object(text: str) -> JSONObject:
    """`response` must be a JSON object: the result itself when it is one, else `{"content": text}`."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": text}


def parse_arguments(arguments: str) -> JSONObject:
    """`args` must be a JSON object; arguments that are not one (a model's malformed JSON, replayed)
    travel as `{"arguments": text}` rather than failing the whole request."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": arguments}


def render_tool(tool: Tool) -> JSONObject:
    decl: JSONObject = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = strip_schema(tool.parameters)
    if params.get("properties"):  # Gemini rejects an OBJECT with no properties: omit it (no arguments)
        decl["parameters"] = params
    return decl


def render_tool_choice(choice: ToolChoice) -> JSONObject:
    config: JSONObject = {"mode": TOOL_MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


def render_generation_config(req: ChatRequest) -> tuple[JSONObject, list[str]]:
    config: JSONObject = {}
    apply_params(config, req, GENERATION_PARAMS)
    dropped: list[str] = []
    if req.response_format is not None:
        config.update(render_response_format(req.response_format))
    return config, dropped


def render_thinking(config: JSONObject, req: ChatRequest, upstream_id: str, dropped: list[str]) -> None:
    """`thinkingConfig` for a model that thinks: a budget (0 turns thinking off, -1 lets the model decide)."""
    if req.reasoning is None:
        return
    if not in_family(bare_model_id(upstream_id), THINKING_PREFIXES):
        dropped.append("reasoning")
        return
    budget = budget_of(req.reasoning)
    thinking: JSONObject = {"thinkingBudget": -1 if budget is None else budget}
    if req.reasoning.include_thoughts and req.source_api in THOUGHTS_ASKED:
        thinking["includeThoughts"] = True
    config["thinkingConfig"] = thinking


def render_response_format(fmt: ResponseFormat) -> JSONObject:
    """The response format as Gemini's `responseMimeType` (+ `responseSchema`)."""
    if not fmt.json:
        return {}
    out: JSONObject = {"responseMimeType": JSON_MIME}
    if fmt.kind == "json_schema" and fmt.schema is not None:
        out["responseSchema"] = strip_schema(fmt.schema)
    return out


def nested(extra: Mapping[str, Any]) -> JSONObject:
    """A Gemini client's extra fields as the body has them: `generationConfig.seed` (the dotted name the
    inbound reports them under) inside `generationConfig`."""
    out: JSONObject = {}
    for key, value in extra.items():
        head, dot, rest = key.partition(".")
        if dot:
            out.setdefault(head, {})[rest] = value
        else:
            out[key] = value
    return out
