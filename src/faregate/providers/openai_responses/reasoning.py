"""Canonical `Thought`s ⇄ Responses API `reasoning` items, both ways.

A reasoning item's `summary` texts are the thought's text (joined by a blank line), and its
`encrypted_content` carries the thought's signature. A thought an `api: openai-responses` upstream made keeps
that upstream's `encrypted_content` as is. A thought another format made (an Anthropic thinking block with
its signature, a Gemini thought signature) is given to a Responses client sealed (`providers/sealed.py`) as
faregate's own opaque `encrypted_content`: passed back, it returns to its origin whole, text included,
even when the client was shown no summary. A stored response keeps every
thought whole; what a client sees (`view`) has summaries only when it asked `reasoning.summary`, and
`encrypted_content` only with `include: ["reasoning.encrypted_content"]`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from faregate.canonical import JSONObject, Thought
from faregate.providers.openai.validate import bad_type, invalid, optional
from faregate.providers.sealed import carried, uncarried

ORIGIN: Final = "openai-responses"
SEPARATOR: Final = "\n\n"  # between the summary parts of one reasoning item
ENCRYPTED_INCLUDE: Final = "reasoning.encrypted_content"


def encrypted_of(t: Thought) -> str | None:
    """The `encrypted_content` a client is given for `t` (None: nothing to pass back)."""
    return carried((t,), ORIGIN)


def item_id_for(t: Thought) -> str:
    """A stable id for a reasoning item sent upstream (the item's own id is not kept)."""
    return "rs_" + hashlib.sha256((t.signature or t.text).encode()).hexdigest()[:48]


def summary_texts(item: Mapping[str, Any]) -> str:
    """The item's summary texts (or, without any, its raw `reasoning_text` content) as one text."""
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        texts = [
            p["text"]
            for p in (parts if isinstance(parts, list) else ())
            if isinstance(p, dict) and p.get("type") == kind and isinstance(p.get("text"), str)
        ]
        if texts:
            return SEPARATOR.join(texts)
    return ""


def parse_reasoning_item(item: Mapping[str, Any], at: str) -> Thought:
    if not isinstance(item.get("summary", []), list):
        raise bad_type(f"{at}.summary", "an array", item.get("summary"))
    text = summary_texts(item)
    encrypted = optional(item, "encrypted_content", f"{at}.encrypted_content", str)
    if not encrypted:
        return Thought(text)
    thoughts = uncarried(encrypted, text, ORIGIN)
    if len(thoughts) != 1:
        raise invalid(f"{at}.encrypted_content", "not the encrypted content of one reasoning item.")
    return thoughts[0]


def reasoning_item(item_id: str, t: Thought, status: str | None = None) -> JSONObject:
    """The whole item: summary and encrypted content (what is stored; `view` trims it for the client)."""
    out: JSONObject = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": t.text}] if t.text else [],
    }
    encrypted = encrypted_of(t)
    if encrypted is not None:
        out["encrypted_content"] = encrypted
    if status is not None:
        out["status"] = status
    return out


def view(item: Mapping[str, Any], summaries: bool, encrypted: bool) -> JSONObject:
    """A reasoning item as a client sees it: without summaries unless asked, without encrypted content
    unless included. Other items unchanged."""
    out = dict(item)
    if out.get("type") != "reasoning":
        return out
    if not summaries:
        out["summary"] = []
    if not encrypted:
        out.pop("encrypted_content", None)
    return out


def view_response(response: JSONObject, summaries: bool, encrypted: bool) -> JSONObject:
    """A whole response object as a client sees it (each reasoning item through `view`)."""
    output = response.get("output")
    if not isinstance(output, list) or not any(i.get("type") == "reasoning" for i in output):
        return response
    return {**response, "output": [view(i, summaries, encrypted) for i in output]}


def stored_view(response: JSONObject, include: list[str]) -> JSONObject:
    """A stored response as `GET /v1/responses/{id}` shows it: summaries if its request asked for them,
    encrypted content if this request includes it."""
    reasoning = response.get("reasoning")
    summaries = isinstance(reasoning, dict) and reasoning.get("summary") is not None
    return view_response(response, summaries, ENCRYPTED_INCLUDE in include)


def wants_encrypted(include: object) -> bool:
    return isinstance(include, list) and ENCRYPTED_INCLUDE in include
