"""Removing credentials from text that came from outside (upstream error bodies, sync errors, headers)
before it is logged, stored or sent. A leaf module: pure, no I/O.

Two nets: the shapes keys are known to have (`sk-…`, `gsk_…`, `AIza…`, `Bearer …`, faregate's `fg_…`),
and the configured key values themselves, whatever their shape, in whole or in part: an upstream that
echoes "Incorrect API key provided: Xk9QmZ2v…" quotes a piece of the key, so any word that shares
`GRAM` consecutive characters with a configured key is removed (pieces made only of letters are
ignored, so that a stand-in key like `sim-key-openrouter` does not erase the word "openrouter").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

REDACTED: Final = "[redacted]"
GRAM: Final = 8  # the shortest piece of a configured key that is recognised
KNOWN_SHAPES: Final = re.compile(
    r"(?i)\b(?:sk|gsk|key|pk|rk|xai|fg)[-_][A-Za-z0-9*._\-]{4,}|\bAIza[0-9A-Za-z_\-]{20,}|\bBearer\s+\S+"
)
_WORD: Final = re.compile(rf"[A-Za-z0-9_\-.~+/=*]{{{GRAM},}}")
_LETTERS: Final = re.compile(r"[A-Za-z]+")


class Scrubber:
    """`scrub(text)`: the text with every known key shape and every piece of `secrets` replaced."""

    __slots__ = ("_exact", "_grams")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        keys = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._exact = tuple(keys)
        grams: set[str] = set()
        for k in keys:
            for i in range(len(k) - GRAM + 1):
                g = k[i : i + GRAM]
                if not _LETTERS.fullmatch(g):
                    grams.add(g)
        self._grams = frozenset(grams)

    def scrub(self, text: str) -> str:
        for k in self._exact:
            if k in text:
                text = text.replace(k, REDACTED)
        text = KNOWN_SHAPES.sub(REDACTED, text)
        if self._grams:
            text = _WORD.sub(self._word, text)
        return text

    def _word(self, m: re.Match[str]) -> str:
        w = m.group()
        grams = self._grams
        if any(w[i : i + GRAM] in grams for i in range(len(w) - GRAM + 1)):
            return REDACTED
        return w


NO_SECRETS: Final = Scrubber()


def scrub_known(text: str) -> str:
    """Only the known key shapes (when the configured keys are not at hand)."""
    return KNOWN_SHAPES.sub(REDACTED, text)
