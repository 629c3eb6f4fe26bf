"""`POST /v1beta/models/{model}:generateContent` clients: validate a Gemini `GenerateContentRequest` into a
canonical `ChatRequest`, so the google-genai SDK works unchanged whatever provider serves it. The answer is
written by `render.py` (response, stream chunks, Google's error envelope).

Field names are Gemini's camelCase; their snake_case twins are accepted too (proto JSON takes both).
Validation raises `InvalidRequest` with `param` as a dotted path (`contents.0.parts.1.inlineData`).
Fields with no canonical meaning (`safetySettings`, `generationConfig.seed`, ...) travel in `extra`, under
dotted names for `generationConfig`'s: forwarded to a Gemini upstream, reported dropped elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from faregate.canonical import (
    ChatRequest,
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
from faregate.errors import InvalidRequest
from faregate.providers.fields import ROUTING_FIELDS, check_routing
from faregate.providers.gemini.thoughts import history_thoughts
from faregate.providers.reasoning import parse_gemini_thinking

SOURCE_API: Final = "gemini"
CONFIG: Final = "generationConfig"
# Top-level fields read into canonical ones; every other one goes to `extra` as sent.
CANONICAL_FIELDS: Final = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
)
# generationConfig fields read into canonical ones; the others go to `extra` as `generationConfig.<name>`.
CONFIG_FIELDS: Final = frozenset(
    {"temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "thinkingConfig"}
    | {"responseMimeType", "responseSchema", "responseJsonSchema"}
)
ROLES: Final[Mapping[str, Literal["user", "assistant"]]] = MappingProxyType(
    {"user": "user", "model": "assistant", "function": "user"}
)
TOOL_MODES: Final[Mapping[str, Literal["auto", "none", "required"]]] = MappingProxyType(
    {"AUTO": "auto", "MODE_UNSPECIFIED": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
)
JSON_MIME: Final = "application/json"
TEXT_MIMES: Final = frozenset({"text/plain"})
# Parts that carry nothing faregate translates (the model's code execution, media metadata).
UNSUPPORTED_PARTS: Final = ("executableCode", "codeExecutionResult", "toolCall", "toolResponse")
# OpenAPI `Schema` keys with no JSON Schema meaning (ordering hints, examples): dropped in translation.
OPENAPI_ONLY: Final = frozenset({"propertyOrdering", "example", "nullable"})
_CAMEL: Final = re.compile(r"_([a-z])")


def fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def as_object(value: Any, where: str) -> JSONObject:
    """A JSON object with its keys in camelCase (one level: property names inside schemas are data)."""
    if not isinstance(value, dict):
        raise fail(f"{where}: Input should be an object", where)
    return {camel(k): v for k, v in value.items()}


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(f"{where}: Input should be a list", where)
    return value


def opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{where}{key}: Input should be a string", where + key)
    return value


def req_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = opt_str(obj, key, where)
    if value is None:
        raise fail(f"{where}{key}: Field required", where + key)
    return value


def number(obj: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(f"{CONFIG}.{key}: must be a number between {low:g} and {high:g}", f"{CONFIG}.{key}")
    return float(value)


def integer(obj: Mapping[str, Any], key: str, minimum: int) -> int | None:
    """An integer (the SDK types some as floats: an integral float is accepted)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(f"{CONFIG}.{key}: must be an integer >= {minimum}", f"{CONFIG}.{key}")
    return value


def is_object_text(text: str) -> bool:
    """Whether `text` is a JSON object (a tool result that reads as one is sent onwards as that object)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- schemas ---------------------------------------------------------------------------------------


def json_schema(schema: Any, depth: int = 0) -> JSONObject:
    """Gemini's OpenAPI `Schema` (upper-case types, `nullable`) as JSON Schema, at every depth."""
    if not isinstance(schema, dict) or depth > 32:
        return {}
    src = {camel(k): v for k, v in schema.items()}
    out: JSONObject = {}
    for key, value in src.items():
        if key in OPENAPI_ONLY:
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = json_schema(value, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [json_schema(sub, depth + 1) for sub in value]
        else:
            out[key] = value
    if src.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --- contents --------------------------------------------------------------------------------------


@dataclass(slots=True)
class CallIds:
    """Function calls and responses are paired by `id` when the client sends ids, else by name in order
    (Gemini's own convention): canonical tool results always name the call they answer."""

    pending: dict[str, list[str]] = field(default_factory=dict)  # name -> ids not yet answered
    count: int = 0

    def call(self, name: str, given: str | None) -> str:
        call_id = given or f"call_{self.count}"
        self.count += 1
        self.pending.setdefault(name, []).append(call_id)
        return call_id

    def response(self, name: str, given: str | None) -> str:
        ids = self.pending.get(name, [])
        if given:
            if given in ids:
                ids.remove(given)
            return given
        if ids:
            return ids.pop(0)
        call_id = f"call_{self.count}"
        self.count += 1
        return call_id


def parse_inline(data: Mapping[str, Any], where: str) -> ImagePart:
    mime = req_str(data, "mimeType", where + ".")
    if not mime.startswith("image/"):
        raise fail(
            f"{where}.mimeType: faregate translates text and image parts only, not {mime!r}",
            where + ".mimeType",
        )
    return ImagePart(data_b64=req_str(data, "data", where + "."), media_type=mime)


def parse_file(data: Mapping[str, Any], where: str) -> ImagePart:
    mime = opt_str(data, "mimeType", where + ".")
    if mime is not None and not mime.startswith("image/"):
        raise fail(
            f"{where}.mimeType: faregate translates text and image parts only, not {mime!r}",
            where + ".mimeType",
        )
    return ImagePart(url=req_str(data, "fileUri", where + "."), media_type=mime)


def function_response(part: Mapping[str, Any], where: str, ids: CallIds) -> Message:
    """A `functionResponse` as a canonical tool message. `{"content": text}` (or a lone string `output`)
    is that text, unless the text is itself a JSON object; `{"error": ...}` alone is a failed call; any
    other object is its JSON."""
    data = as_object(part, where)
    name = req_str(data, "name", where + ".")
    response = data.get("response")
    if response is None:
        response = {}
    if not isinstance(response, dict):
        raise fail(f"{where}.response: Input should be an object", where + ".response")
    is_error = set(response) == {"error"}
    lone = response.get("error") if is_error else response.get("content", response.get("output"))
    if len(response) == 1 and isinstance(lone, str) and not is_object_text(lone):
        text = lone
    else:
        text = compact(response["error"] if is_error else response)
    call_id = ids.response(name, opt_str(data, "id", where + "."))
    content = (TextPart(text),) if text else ()
    return Message("tool", content, tool_call_id=call_id, name=name, is_error=is_error)


def function_call(part: Mapping[str, Any], where: str, ids: CallIds) -> ToolCall:
    data = as_object(part, where)
    name = req_str(data, "name", where + ".")
    args = data.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise fail(f"{where}.args: Input should be an object", where + ".args")
    return ToolCall(ids.call(name, opt_str(data, "id", where + ".")), name, compact(args))


Item = Part | ToolCall | Message


def parse_part(raw: Any, where: str, ids: CallIds) -> Item | None:
    """One part; None for what is not content (an empty text; the model's thoughts and signatures, which
    `parse_content` reads from the parts into the turn's thoughts)."""
    part = as_object(raw, where)
    if "text" in part:
        text = part["text"]
        if not isinstance(text, str):
            raise fail(f"{where}.text: Input should be a string", where + ".text")
        return None if part.get("thought") is True or not text else TextPart(text)
    if "inlineData" in part:
        return parse_inline(as_object(part["inlineData"], where + ".inlineData"), where + ".inlineData")
    if "fileData" in part:
        return parse_file(as_object(part["fileData"], where + ".fileData"), where + ".fileData")
    if "functionCall" in part:
        return function_call(part["functionCall"], where + ".functionCall", ids)
    if "functionResponse" in part:
        return function_response(part["functionResponse"], where + ".functionResponse", ids)
    kind = next((k for k in UNSUPPORTED_PARTS if k in part), None)
    if kind is not None:
        raise fail(f"{where}.{kind}: not supported by faregate (it runs no tools itself)", f"{where}.{kind}")
    if part.get("thought") is True or "thoughtSignature" in part:
        return None  # a thought with no text: the model's own, not sent onwards
    raise fail(
        f"{where}: a part needs one of text, inlineData, fileData, functionCall, functionResponse", where
    )


def parse_content(raw: Any, where: str, ids: CallIds) -> list[Message]:
    """One `Content`. A model turn is one assistant message with its calls; a user turn's function
    responses become tool messages, in order, ahead of a user message with the rest of the turn."""
    content = as_object(raw, where)
    role_name = content.get("role") or "user"
    role = ROLES.get(role_name) if isinstance(role_name, str) else None
    if role is None:
        raise fail(f"{where}.role: must be 'user' or 'model'", where + ".role")
    parts = as_list(content.get("parts") or [], where + ".parts")
    items = [x for i, p in enumerate(parts) if (x := parse_part(p, f"{where}.parts.{i}", ids)) is not None]
    plain = tuple(x for x in items if isinstance(x, TextPart | ImagePart))
    if role == "assistant":
        if any(isinstance(x, Message) for x in items):
            raise fail(f"{where}: a model turn cannot carry a functionResponse", where)
        calls = tuple(x for x in items if isinstance(x, ToolCall))
        thoughts = history_thoughts(as_object(p, where) for p in parts)
        return [Message("assistant", plain, tool_calls=calls, thoughts=thoughts)] if plain or calls else []
    if any(isinstance(x, ToolCall) for x in items):
        raise fail(f"{where}: a user turn cannot carry a functionCall", where)
    results = [x for x in items if isinstance(x, Message)]
    return [*results, Message("user", plain)] if plain else results


def parse_system(raw: Any) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):  # the SDK sends Content; a bare string is forgiven
        return [Message("system", (TextPart(raw),))] if raw else []
    content = as_object(raw, "systemInstruction")
    texts: list[Part] = []
    for i, p in enumerate(as_list(content.get("parts") or [], "systemInstruction.parts")):
        part = as_object(p, f"systemInstruction.parts.{i}")
        text = part.get("text")
        if not isinstance(text, str):
            raise fail("systemInstruction: text parts only", f"systemInstruction.parts.{i}")
        if text:
            texts.append(TextPart(text))
    return [Message("system", tuple(texts))] if texts else []


# --- tools -----------------------------------------------------------------------------------------


def parse_declaration(raw: Any, where: str) -> Tool:
    decl = as_object(raw, where)
    schema = decl.get("parametersJsonSchema")
    if schema is None:
        params = decl.get("parameters")
        schema = json_schema(params) if params is not None else None
    elif not isinstance(schema, dict):
        raise fail(
            f"{where}.parametersJsonSchema: Input should be an object", where + ".parametersJsonSchema"
        )
    if not schema:
        schema = {"type": "object", "properties": {}}
    return Tool(
        name=req_str(decl, "name", where + "."),
        description=opt_str(decl, "description", where + ".") or None,
        parameters=MappingProxyType(dict(schema)),
    )


def parse_tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    tools: list[Tool] = []
    for i, t in enumerate(as_list(raw, "tools")):
        tool = as_object(t, f"tools.{i}")
        other = sorted(k for k in tool if k != "functionDeclarations")
        if other:
            raise fail(
                f"tools.{i}.{other[0]}: built-in tools are not supported by faregate: only functionDeclarations"
                " are (faregate translates each request for the upstream it routes to, and runs no tools)",
                f"tools.{i}.{other[0]}",
            )
        decls = as_list(tool.get("functionDeclarations") or [], f"tools.{i}.functionDeclarations")
        tools += [parse_declaration(d, f"tools.{i}.functionDeclarations.{j}") for j, d in enumerate(decls)]
    return tuple(tools)


def parse_tool_config(raw: Any, tools: tuple[Tool, ...]) -> tuple[ToolChoice | None, tuple[Tool, ...]]:
    """`toolConfig.functionCallingConfig`: the choice, and the tools it allows (`allowedFunctionNames`
    with ANY: one name is that tool, several narrow the list)."""
    if raw is None or not tools:
        return None, tools
    config = as_object(as_object(raw, "toolConfig").get("functionCallingConfig") or {}, "toolConfig")
    mode_name = config.get("mode") or "AUTO"
    mode = TOOL_MODES.get(mode_name) if isinstance(mode_name, str) else None
    where = "toolConfig.functionCallingConfig"
    if mode is None:
        raise fail(f"{where}.mode: must be one of {', '.join(TOOL_MODES)}", where + ".mode")
    allowed = config.get("allowedFunctionNames")
    if allowed is None or mode != "required":
        return ToolChoice(mode), tools
    names = as_list(allowed, where + ".allowedFunctionNames")
    unknown = [n for n in names if n not in {t.name for t in tools}]
    if unknown:
        raise fail(f"{where}.allowedFunctionNames: no function named {unknown[0]!r}", where)
    if len(names) == 1:
        return ToolChoice("tool", names[0]), tools
    return ToolChoice("required"), tuple(t for t in tools if t.name in names)


# --- generationConfig ------------------------------------------------------------------------------


def parse_response_format(config: Mapping[str, Any], extra: JSONObject) -> ResponseFormat | None:
    """`responseMimeType: application/json` (with `responseJsonSchema` or `responseSchema`) as OpenAI's
    `response_format`; another MIME type (`text/x.enum`) stays Gemini's own, in `extra`."""
    mime = opt_str(config, "responseMimeType", CONFIG + ".")
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = json_schema(config["responseSchema"])
    if mime is None or mime in TEXT_MIMES:
        return None
    if mime != JSON_MIME:
        for key in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            if key in config:
                extra[f"{CONFIG}.{key}"] = config[key]
        return None
    if not isinstance(schema, dict) or not schema:
        return ResponseFormat("json_object")
    return ResponseFormat("json_schema", "response", schema)


def parse_stop(config: Mapping[str, Any]) -> tuple[str, ...]:
    stops = config.get("stopSequences")
    if stops is None:
        return ()
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise fail(f"{CONFIG}.stopSequences: Input should be a list of strings", f"{CONFIG}.stopSequences")
    return tuple(stops)


def parse_routing(body: Mapping[str, Any]) -> JSONObject:
    """faregate's own fields (OpenRouter's names): consumed here, never forwarded."""
    routing: JSONObject = {}
    for key in ROUTING_FIELDS:
        if body.get(key) is not None:
            expected = check_routing(key, body[key])
            if expected is not None:
                raise fail(f"{key}: Input should be {expected}", key)
            routing[key] = body[key]
    return routing


def bare_model(name: str | None) -> str | None:
    """`models/gemini-2.5-flash` or `gemini-2.5-flash` → the model id faregate routes on."""
    if not name:
        return None
    return name.removeprefix("models/") or None


def parse_request(raw: object, model: str | None, *, stream: bool) -> tuple[ChatRequest, JSONObject]:
    """A GenerateContentRequest for `model` (from the URL; the body's own `model` when there is none)."""
    body = as_object(raw, "body")
    routing = parse_routing(body)
    contents = as_list(body.get("contents"), "contents") if body.get("contents") is not None else []
    if not contents:
        raise fail("contents: must be a non-empty list", "contents")
    ids = CallIds()
    messages = parse_system(body.get("systemInstruction"))
    for i, c in enumerate(contents):
        messages.extend(parse_content(c, f"contents.{i}", ids))
    if not any(m.role != "system" for m in messages):
        raise fail("contents: no part with anything to answer", "contents")
    extra: JSONObject = {
        k: v
        for k, v in body.items()
        if k not in CANONICAL_FIELDS and k not in ROUTING_FIELDS and v is not None
    }
    config = as_object(body.get(CONFIG) or {}, CONFIG)
    for key, value in config.items():
        if key not in CONFIG_FIELDS and value is not None:
            extra[f"{CONFIG}.{key}"] = value
    if (integer(config, "candidateCount", 1) or 1) > 1:
        raise fail(
            f"{CONFIG}.candidateCount: faregate answers with one candidate", f"{CONFIG}.candidateCount"
        )
    tools = parse_tools(body.get("tools"))
    choice, tools = parse_tool_config(body.get("toolConfig"), tools)
    req = ChatRequest(
        model=bare_model(model) or bare_model(opt_str(body, "model", "")),
        messages=tuple(messages),
        tools=tools,
        tool_choice=choice,
        response_format=parse_response_format(config, extra),
        stream=stream,
        include_usage=True,  # Gemini always reports usageMetadata
        max_tokens=integer(config, "maxOutputTokens", 1),
        temperature=number(config, "temperature", 0.0, 2.0),
        top_p=number(config, "topP", 0.0, 1.0),
        stop=parse_stop(config),
        top_k=integer(config, "topK", 1),
        reasoning=parse_gemini_thinking(config.get("thinkingConfig")),
        source_api=SOURCE_API,
        extra=MappingProxyType(extra),
    )
    return req, routing
