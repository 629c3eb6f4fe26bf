"""The prompt optimizer behind `POST /v1/optimize`: fewer tokens for the same request, deterministically.

Steps run in order, each kept only if the result stays at least `similarity_threshold` similar to the
original (cosine similarity of word counts, ignoring case): collapse whitespace, drop repeated lines
and sentences, drop politeness and filler phrases, drop filler words. Nothing is paraphrased or
summarised, so every kept word is the user's own; the similarity says how much of their wording is left.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Final

from faregate.values import frozen

WORD: Final = re.compile(r"\w+", re.UNICODE)
SPACES: Final = re.compile(r"[ \t]+")
BLANK_LINES: Final = re.compile(r"\n\s*\n+")
SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")
# Phrases that ask politely or announce a request without adding to it (matched whole, any case).
FILLER_PHRASES: Final = re.compile(
    r"\b(?:please|kindly|i would like you to|i would like to ask you to|i want you to|could you please|"
    r"could you|can you please|can you|would you please|would you|if you don't mind|if possible|"
    r"thank you(?: very much)?(?: in advance)?|thanks(?: in advance)?)\b[,]?\s*",
    re.IGNORECASE,
)
FILLER_WORDS: Final = re.compile(
    r"\b(?:basically|actually|really|very(?!\s+much)|just|simply|quite|literally|totally|essentially)\b\s*",
    re.IGNORECASE,
)


@frozen
class Optimized:
    optimized_prompt: str
    original_tokens: int
    compressed_tokens: int
    tokens_saved: int
    similarity_score: float
    steps: tuple[str, ...]  # the steps that were kept


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the two texts' word counts (case-insensitive); 1.0 for two empty texts."""
    ca, cb = Counter(w.lower() for w in WORD.findall(a)), Counter(w.lower() for w in WORD.findall(b))
    if not ca and not cb:
        return 1.0
    dot = sum(n * cb[w] for w, n in ca.items())
    norm = math.sqrt(sum(n * n for n in ca.values())) * math.sqrt(sum(n * n for n in cb.values()))
    return 0.0 if norm == 0 else dot / norm


def collapse_whitespace(text: str) -> str:
    lines = [SPACES.sub(" ", line).strip() for line in text.strip().splitlines()]
    return BLANK_LINES.sub("\n\n", "\n".join(lines))


def drop_repeats(text: str) -> str:
    """Keep the first of identical lines, and of identical sentences within the text."""
    seen: set[str] = set()
    out_lines = []
    for line in text.split("\n"):
        sentences = []
        for sentence in SENTENCE_END.split(line):
            key = sentence.strip().lower()
            if key and key in seen:
                continue
            if key:
                seen.add(key)
            sentences.append(sentence)
        out_lines.append(" ".join(s for s in sentences if s))
    return collapse_whitespace("\n".join(line for line in out_lines if line.strip() or not line))


def drop_filler_phrases(text: str) -> str:
    return _tidy(FILLER_PHRASES.sub("", text))


def drop_filler_words(text: str) -> str:
    return _tidy(FILLER_WORDS.sub("", text))


def _tidy(text: str) -> str:
    text = SPACES.sub(" ", text)
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    text = re.sub(r"([.!?])[.,;:]+", r"\1", text)  # "short. ." left by a removed sentence
    text = re.sub(r",(\s*,)+", ",", text)
    # A sentence that lost its first word starts with a capital again.
    return re.sub(r"(^|[.!?]\s+|\n)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text.strip())


STEPS: Final[tuple[tuple[str, Callable[[str], str]], ...]] = (
    ("collapse_whitespace", collapse_whitespace),
    ("drop_repeats", drop_repeats),
    ("drop_filler_phrases", drop_filler_phrases),
    ("drop_filler_words", drop_filler_words),
)


def optimize(prompt: str, similarity_threshold: float, count_tokens: Callable[[str], int]) -> Optimized:
    """Apply each step whose result keeps `similarity(original, result) >= similarity_threshold` and
    has no more tokens than before."""
    original_tokens = count_tokens(prompt)
    best, best_tokens, kept = prompt, original_tokens, []
    for name, step in STEPS:
        candidate = step(best)
        if candidate == best:
            continue
        tokens = count_tokens(candidate)
        if tokens <= best_tokens and similarity(prompt, candidate) >= similarity_threshold:
            best, best_tokens = candidate, tokens
            kept.append(name)
    return Optimized(
        optimized_prompt=best,
        original_tokens=original_tokens,
        compressed_tokens=best_tokens,
        tokens_saved=original_tokens - best_tokens,
        similarity_score=similarity(prompt, best),
        steps=tuple(kept),
    )
