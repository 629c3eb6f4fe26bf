"""The prompt optimizer: fewer tokens, never below the similarity asked for, every kept word the user's."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.accounting.optimize import (
    collapse_whitespace,
    drop_filler_phrases,
    drop_filler_words,
    drop_repeats,
    optimize,
    similarity,
)
from faregate.accounting.tokens import TokenCounter

COUNTER = TokenCounter()
PROMPT = (
    "Hello!   Could you please   basically explain to me, if possible,   what a   decision table is?\n\n"
    "Could you please basically explain to me, if possible, what a decision table is?\n"
    "I would like you to keep it really very short. Thank you very much in advance."
)


def count(text: str) -> int:
    return COUNTER.count_text(text)


def words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"\w+", text)]


def test_similarity() -> None:
    assert similarity("a b c", "A B C") == pytest.approx(1.0)
    assert similarity("a b", "c d") == 0.0
    assert similarity("", "") == 1.0
    assert 0 < similarity("the cat sat", "the cat") < 1


def test_steps_one_by_one() -> None:
    assert collapse_whitespace("a   b \n\n\n\n c\t d ") == "a b\n\nc d"
    assert drop_repeats("Say hi. Say hi. Then go.\nSay hi.") == "Say hi. Then go."
    assert drop_filler_phrases("Could you please list the files? Thanks in advance.") == "List the files?"
    assert drop_filler_words("It is really very simple, just do it.") == "It is simple, do it."
    assert drop_filler_words("Thank you very much.") == "Thank you very much."  # "very much" stays whole


@pytest.mark.parametrize(
    ("threshold", "steps", "expected"),
    [
        (1.0, ("collapse_whitespace",), None),
        (0.95, ("collapse_whitespace", "drop_repeats"), None),
        (
            0.5,
            ("collapse_whitespace", "drop_repeats", "drop_filler_phrases", "drop_filler_words"),
            "Hello! Explain to me, what a decision table is?\n\nKeep it short.",
        ),
    ],
)
def test_the_threshold_decides_which_steps_are_kept(
    threshold: float, steps: tuple[str, ...], expected: str | None
) -> None:
    r = optimize(PROMPT, threshold, count)
    assert r.steps == steps
    assert r.similarity_score >= threshold
    assert r.original_tokens == count(PROMPT) and r.compressed_tokens == count(r.optimized_prompt)
    assert r.tokens_saved == r.original_tokens - r.compressed_tokens > 0
    if expected is not None:
        assert r.optimized_prompt == expected


def test_an_already_tight_prompt_is_left_alone() -> None:
    r = optimize("List three prime numbers.", 0.9, count)
    assert (r.optimized_prompt, r.tokens_saved, r.steps, r.similarity_score) == (
        "List three prime numbers.",
        0,
        (),
        1.0,
    )


texts = st.lists(
    st.sampled_from(
        [
            "please",
            "Could you",
            "really",
            "very",
            "just",
            "explain",
            "the",
            "table",
            "Thanks.",
            "Hello.",
            "data",
            ",",
            ".",
            "?",
            "\n",
            "  ",
            "\n\n",
            "basically",
            "if possible",
            "cost",
            "routing",
        ]
    ),
    max_size=40,
).map(" ".join) | st.text(max_size=200)


@settings(max_examples=300, deadline=None)
@given(texts, st.floats(0, 1))
def test_never_more_tokens_never_less_similar_than_asked(text: str, threshold: float) -> None:
    r = optimize(text, threshold, count)
    assert r.compressed_tokens <= r.original_tokens
    assert r.tokens_saved == r.original_tokens - r.compressed_tokens
    assert r.similarity_score >= threshold or r.optimized_prompt == text
    # nothing is invented: every word of the result is a word of the prompt
    assert set(words(r.optimized_prompt)) <= set(words(text))
    assert optimize(r.optimized_prompt, 1.0, count).compressed_tokens <= r.compressed_tokens
