"""The same-format path: an `api: openai` upstream's chat completion answered to an OpenAI chat client.

The translated path parses the upstream's JSON into a canonical `ChatResponse` (`response.py`) and renders
that again (`render.py::render_chat`). When both ends speak OpenAI chat, `relay_answer` adjusts the upstream's
own JSON instead: the same client-visible answer (same fields, same order, same values), fewer objects.
It takes only answers whose every field that matters it knows how the translated path treats; for any other
(content as a list of parts, reasoning text, tool arguments that are not a string, no usage, a shape it
cannot read) it returns None and the caller takes the translated path. `tests/unit/test_samewire.py` runs a
corpus through both and asserts the same answer, and that the rest fall back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from faregate import jsonio
from faregate.canonical import FinishReason, JSONObject, Usage
from faregate.providers.openai.render import EXTRAS_KEY, FINISH_REASONS, ID_PREFIX, render_usage
from faregate.providers.openai.response import _int, parse_finish_reason, parse_usage
from faregate.providers.openai.thoughts import THOUGHT_KEYS
from faregate.values import frozen


@frozen
class SameAnswer:
    """An upstream answer read for the same-format path: the client's choices, built already."""

    choices: list[JSONObject]
    usage: Usage
    finish_reason: FinishReason  # the first choice's, canonical (what the usage log records)
    created: int  # the upstream's, 0 when it sent none

    def render(self, model: str, extras: Mapping[str, Any]) -> JSONObject:
        """The client's body: what `render_chat` writes for the same answer, `usage` and `extras`."""
        body: JSONObject = {
            "id": ID_PREFIX + extras[EXTRAS_KEY]["request_id"],
            "object": "chat.completion",
            "created": self.created or int(time.time()),
            "model": model,
            "choices": self.choices,
            "usage": render_usage(self.usage, extras),
            "system_fingerprint": extras.get("system_fingerprint"),
            EXTRAS_KEY: extras[EXTRAS_KEY],
        }
        return body


def relay_answer(body: bytes) -> SameAnswer | None:
    """The upstream's chat completion, ready for an OpenAI client; None: take the translated path (which
    also reports what is wrong with a body it cannot read)."""
    try:
        data = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    usage = parse_usage(data.get("usage"))
    choices = data.get("choices")
    if usage is None or not isinstance(choices, list) or not choices:
        return None
    if len(choices) > 1:
        if not all(isinstance(c, dict) for c in choices):
            return None
        choices = sorted(choices, key=lambda c: _int(c.get("index")))
    rendered: list[JSONObject] = []
    for i, choice in enumerate(choices):
        out = _choice(i, choice)
        if out is None:
            return None
        rendered.append(out)
    first = choices[0]["message"]
    if not THOUGHT_KEYS.isdisjoint(first):  # reasoning: the translated path renders it (thoughts)
        return None
    return SameAnswer(
        rendered, usage, parse_finish_reason(choices[0].get("finish_reason")), _int(data.get("created"))
    )


def _choice(index: int, choice: object) -> JSONObject | None:
    """One choice as `render_choice` writes it, or None for a shape only the translated path reads."""
    if not isinstance(choice, dict):
        return None
    message = choice.get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        return None  # a list of parts: joined by the translated path
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal  # the model declined: its words are the answer
    calls = _tool_calls(message.get("tool_calls"))
    if calls is None:
        return None
    out: JSONObject = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if calls:
        out["tool_calls"] = calls
    logprobs = choice.get("logprobs")
    return {
        "index": index,
        "message": out,
        "logprobs": dict(logprobs) if isinstance(logprobs, dict) else None,
        "finish_reason": FINISH_REASONS[parse_finish_reason(choice.get("finish_reason"))],
    }


def _tool_calls(calls: object) -> list[JSONObject] | None:
    """The calls as `render_tool_call` writes them ([] for none), or None for a shape to translate."""
    if calls is None:
        return []
    if not isinstance(calls, list):
        return None
    out: list[JSONObject] = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            return None
        name, arguments = fn.get("name"), fn.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, str):
            return None
        out.append(
            {
                "id": str(call.get("id") or ""),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return out
