"""Request features that rules match on, and the evaluation of a rule's `when` against them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from faregate.canonical import ChatRequest
from faregate.config.model import When

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Features:
    has_images: bool = False
    has_tools: bool = False
    json_mode: bool = False
    stream: bool = False
    prompt_tokens: int = 0
    user_text: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # names lower-cased
    key_group: str | None = None

    def as_json(self) -> dict[str, object]:
        """What traces and explain show (never the user text or headers)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "has_images": self.has_images,
            "has_tools": self.has_tools,
            "json_mode": self.json_mode,
            "stream": self.stream,
            "key_group": self.key_group,
        }


def extract_features(
    req: ChatRequest,
    count_tokens: Callable[[ChatRequest], int],
    headers: Mapping[str, str] = EMPTY,
    key_group: str | None = None,
) -> Features:
    """`count_tokens` comes from accounting (tiktoken); headers may be any case-insensitive mapping."""
    return Features(
        has_images=req.has_images,
        has_tools=bool(req.tools),
        json_mode=req.json_mode,
        stream=req.stream,
        prompt_tokens=count_tokens(req),
        user_text=req.user_text,
        headers=headers,
        key_group=key_group,
    )


def matches(w: When, f: Features) -> bool:
    """The hot path: does every condition of `w` hold? Cheapest checks first."""
    return (
        (w.has_images is None or w.has_images == f.has_images)
        and (w.has_tools is None or w.has_tools == f.has_tools)
        and (w.json_mode is None or w.json_mode == f.json_mode)
        and (w.stream is None or w.stream == f.stream)
        and (w.prompt_tokens_gt is None or f.prompt_tokens > w.prompt_tokens_gt)
        and (w.prompt_tokens_lt is None or f.prompt_tokens < w.prompt_tokens_lt)
        and (w.key_group is None or f.key_group in w.key_group)
        and (not w.header or all(f.headers.get(k) == v for k, v in w.header.items()))
        and (w.prompt_matches is None or w.prompt_matches.search(f.user_text) is not None)
    )


@dataclass(frozen=True, slots=True)
class Check:
    condition: str
    ok: bool
    detail: str


def explain_when(w: When, f: Features) -> list[Check]:
    """Every condition of `w` with whether it held and why: what `faregate explain` prints."""
    out: list[Check] = []
    for name in ("has_images", "has_tools", "json_mode", "stream"):
        want = getattr(w, name)
        if want is not None:
            got = getattr(f, name)
            out.append(
                Check(f"{name}: {str(want).lower()}", got == want, f"request has {name}={str(got).lower()}")
            )
    if w.prompt_tokens_gt is not None:
        out.append(
            Check(
                f"prompt_tokens_gt: {w.prompt_tokens_gt}",
                f.prompt_tokens > w.prompt_tokens_gt,
                f"{f.prompt_tokens} tokens",
            )
        )
    if w.prompt_tokens_lt is not None:
        out.append(
            Check(
                f"prompt_tokens_lt: {w.prompt_tokens_lt}",
                f.prompt_tokens < w.prompt_tokens_lt,
                f"{f.prompt_tokens} tokens",
            )
        )
    if w.key_group is not None:
        out.append(
            Check(f"key_group: {list(w.key_group)}", f.key_group in w.key_group, f"key group {f.key_group!r}")
        )
    for k, v in w.header.items():
        got = f.headers.get(k)
        out.append(Check(f"header {k}: {v}", got == v, f"header is {got!r}"))
    if w.prompt_matches is not None:
        m = w.prompt_matches.search(f.user_text)
        out.append(
            Check(
                f"prompt_matches: {w.prompt_matches.pattern}",
                m is not None,
                f"matched {m.group(0)!r}" if m else "no match in the user text",
            )
        )
    return out
