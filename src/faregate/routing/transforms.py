"""OpenRouter's `transforms: ["middle-out"]`: fit a conversation into a channel's context by removing
messages from its middle. Pure: token counting is passed in.

What is kept, as on OpenRouter: the system prompt (the leading system messages), the start of the conversation
(its first turn) and its end (its last turn); turns are removed from the middle outwards until the prompt
plus the answer's `max_tokens` fits. An assistant turn that calls tools and the tool results answering it are
one turn: they are removed together, so the conversation stays valid for every upstream. Applied per channel:
a channel whose context already holds the conversation gets it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from faregate.canonical import ChatRequest, Message
from faregate.errors import InvalidRequest
from faregate.values import frozen

MIDDLE_OUT: Final = "middle-out"
KNOWN_TRANSFORMS: Final = frozenset({MIDDLE_OUT})
Count = Callable[[Sequence[Message]], int]  # prompt tokens of a conversation (with the request's tools)


@frozen
class Fitted:
    messages: tuple[Message, ...]
    removed: int  # messages removed
    prompt_tokens: int  # of what is kept

    def as_json(self, channel: str, before: int) -> dict[str, object]:
        return {
            "transform": MIDDLE_OUT,
            "channel": channel,
            "removed_messages": self.removed,
            "prompt_tokens_before": before,
            "prompt_tokens_after": self.prompt_tokens,
        }


def turns(messages: Sequence[Message], start: int) -> list[tuple[int, int]]:
    """`[begin, end)` spans from `start`: each message alone, except an assistant message with tool calls,
    which spans the tool results that follow it."""
    spans: list[tuple[int, int]] = []
    i = start
    while i < len(messages):
        end = i + 1
        if messages[i].role == "assistant" and messages[i].tool_calls:
            while end < len(messages) and messages[end].role == "tool":
                end += 1
        spans.append((i, end))
        i = end
    return spans


def system_prefix(messages: Sequence[Message]) -> int:
    n = 0
    while n < len(messages) and messages[n].role == "system":
        n += 1
    return n


def floor_tokens(messages: Sequence[Message], count: Count) -> int:
    """The fewest prompt tokens middle-out can reach: the system prompt, the first and the last turn."""
    head = system_prefix(messages)
    spans = turns(messages, head)
    if len(spans) <= 2:
        return count(messages)
    first, last = spans[0], spans[-1]
    kept = [*messages[:head], *messages[first[0] : first[1]], *messages[last[0] : last[1]]]
    return count(kept)


def middle_out(messages: Sequence[Message], budget: int, count: Count) -> Fitted | None:
    """The conversation with middle turns removed until `count` of it is at most `budget`; the whole
    conversation when it fits already; None when even the system prompt and both ends do not fit."""
    total = count(messages)
    if total <= budget:
        return Fitted(tuple(messages), 0, total)
    head = system_prefix(messages)
    spans = turns(messages, head)
    if len(spans) <= 2:
        return None
    empty = count(())
    middle = spans[1:-1]
    sizes = [count(messages[b:e]) - empty for b, e in middle]
    while middle and total > budget:
        i = len(middle) // 2  # from the middle outwards: the hole grows towards both ends
        total -= sizes.pop(i)
        middle.pop(i)
    keep = {j for b, e in (spans[0], *middle, spans[-1]) for j in range(b, e)} | set(range(head))
    kept = tuple(m for j, m in enumerate(messages) if j in keep)
    exact = count(kept)  # per-turn sizes are estimates of a sum: confirm with one count
    if exact > budget:
        return None if not middle else _shrink(messages, kept, budget, count)
    return Fitted(kept, len(messages) - len(kept), exact)


def _shrink(
    messages: Sequence[Message], kept: tuple[Message, ...], budget: int, count: Count
) -> Fitted | None:
    """The rare case where the per-turn estimate fell a few tokens short: remove one more middle turn at a
    time, counting exactly."""
    while True:
        head = system_prefix(kept)
        spans = turns(kept, head)
        if len(spans) <= 2:
            return None
        b, e = spans[1:-1][len(spans[1:-1]) // 2]
        kept = (*kept[:b], *kept[e:])
        exact = count(kept)
        if exact <= budget:
            return Fitted(kept, len(messages) - len(kept), exact)


def parse_transforms(value: object) -> frozenset[str]:
    """The request's `transforms` (already checked to be a list of strings); an unknown one is a 400."""
    names = frozenset(value) if isinstance(value, list) else frozenset()
    unknown = sorted(names - KNOWN_TRANSFORMS)
    if unknown:
        raise InvalidRequest(
            f"unknown transform {unknown[0]!r} (known: {', '.join(sorted(KNOWN_TRANSFORMS))})",
            param="transforms",
        )
    return names


@frozen
class MiddleOut:
    """middle-out for one request: `fit` gives the request a channel of `context` tokens gets."""

    count: Count
    prompt_tokens: int  # of the whole conversation

    def fit(
        self, req: ChatRequest, channel: str, context: int
    ) -> tuple[ChatRequest, dict[str, object] | None]:
        """(the request for this channel, the note for x-faregate when messages were removed)."""
        budget = context - (req.max_tokens or 0)
        if self.prompt_tokens <= budget:
            return req, None
        fitted = middle_out(req.messages, budget, self.count)
        if fitted is None or not fitted.removed:
            return req, None  # cannot fit: the upstream says so (the plan left such channels out)
        return replace(req, messages=fitted.messages), fitted.as_json(channel, self.prompt_tokens)
