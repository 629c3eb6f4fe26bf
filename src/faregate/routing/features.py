"""Request features that rules match on, and the evaluation of a rule's `when` against them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from faregate.canonical import ChatRequest, WireApi
from faregate.config.model import When
from faregate.values import frozen

EMPTY: Mapping[str, str] = MappingProxyType({})
NO_PARAMETERS: tuple[str, ...] = ()


def request_parameters(req: ChatRequest) -> tuple[str, ...]:
    """The parameters `req` sets (what `provider.require_parameters` weighs): chat-completions names for its
    canonical fields (OpenRouter's `supported_parameters` vocabulary), the client's own names for the
    fields of its format (`extra`). A text `response_format` and thinking turned off ask for nothing."""
    r = req.reasoning
    canonical = (
        ("max_tokens", req.max_tokens is not None),
        ("temperature", req.temperature is not None),
        ("top_p", req.top_p is not None),
        ("stop", bool(req.stop)),
        ("user", req.user is not None),
        ("top_k", req.top_k is not None),
        ("tools", bool(req.tools)),
        ("tool_choice", req.tool_choice is not None),
        ("response_format", req.json_mode),
        ("reasoning", r is not None and r.effort != "none"),
    )
    return tuple(name for name, used in canonical if used) + tuple(req.extra)


class Features:
    """What rules match on. `prompt_tokens` is exact when given; with `count` it is counted on first
    read, and `bound` (an upper bound known without counting, e.g. from the body's size) settles the
    comparisons it can, so a request nothing needs the count of is never tokenized."""

    __slots__ = (
        "_bound",
        "_count",
        "_parameters",
        "_params",
        "_text",
        "_tokens",
        "_user_text",
        "documents",
        "has_images",
        "has_tools",
        "headers",
        "hosted_tools",
        "json_mode",
        "key_group",
        "provider_files",
        "source_api",
        "stream",
    )

    def __init__(
        self,
        has_images: bool = False,
        has_tools: bool = False,
        json_mode: bool = False,
        stream: bool = False,
        prompt_tokens: int = 0,
        user_text: str = "",
        headers: Mapping[str, str] = EMPTY,  # names lower-cased (or a case-insensitive mapping)
        key_group: str | None = None,
        *,
        count: Callable[[], int] | None = None,
        bound: int | None = None,
        text: Callable[[], str] | None = None,
        hosted_tools: bool = False,
        documents: bool = False,
        provider_files: bool = False,
        parameters: Callable[[], tuple[str, ...]] | None = None,
        source_api: WireApi = "openai",
    ) -> None:
        self.has_images, self.has_tools, self.json_mode, self.stream = (
            has_images,
            has_tools,
            json_mode,
            stream,
        )
        self.headers, self.key_group = headers, key_group
        self.hosted_tools = hosted_tools  # tools the provider runs: only a Responses channel carries them
        self.documents = documents  # inline PDFs
        self.provider_files = provider_files  # files by id or URL: only a Responses channel takes them
        self._text = text
        self._user_text: str | None = None if text is not None else user_text
        self._count = count
        self._tokens: int | None = None if count is not None else prompt_tokens
        self._bound = bound if count is not None else None
        self._params = parameters
        self._parameters: tuple[str, ...] | None = None if parameters is not None else NO_PARAMETERS
        self.source_api = source_api  # the client's format: the names its own fields go by

    @property
    def parameters(self) -> tuple[str, ...]:
        """The request's parameters (`request_parameters`), listed on first read: only
        `provider.require_parameters` asks."""
        names = self._parameters
        if names is None:
            assert self._params is not None
            names = self._parameters = self._params()
        return names

    @property
    def prompt_tokens(self) -> int:
        """The prompt's tokens, counted now if they were not yet."""
        tokens = self._tokens
        if tokens is None:
            assert self._count is not None
            tokens = self._tokens = self._count()
        return tokens

    @property
    def user_text(self) -> str:
        """The user's text (what `prompt_matches` searches), joined on first read."""
        text = self._user_text
        if text is None:
            assert self._text is not None
            text = self._user_text = self._text()
        return text

    @property
    def counted(self) -> bool:
        """Is the count known (given, or counted because something needed it)?"""
        return self._tokens is not None

    @property
    def ceiling(self) -> int:
        """A cheap upper bound of `prompt_tokens`: the bound if there is one, else the count."""
        return self._bound if self._bound is not None and self._tokens is None else self.prompt_tokens

    def tokens_gt(self, n: int) -> bool:
        return self.ceiling > n and self.prompt_tokens > n

    def tokens_lt(self, n: int) -> bool:
        return self.ceiling < n or self.prompt_tokens < n

    def fits(self, limit: int) -> bool:
        """prompt_tokens <= limit, counting only when the bound cannot tell."""
        return self.ceiling <= limit or self.prompt_tokens <= limit

    def as_json(self) -> dict[str, object]:
        """What traces and explain show (never the user text or headers). `prompt_tokens` is null when
        nothing needed the count (the upstream's own count is in the record's usage)."""
        return {
            "prompt_tokens": self._tokens,
            "has_images": self.has_images,
            "has_tools": self.has_tools,
            "json_mode": self.json_mode,
            "stream": self.stream,
            "key_group": self.key_group,
        }

    def __repr__(self) -> str:
        return f"Features({self.as_json()!r})"


def extract_features(
    req: ChatRequest,
    count_tokens: Callable[[ChatRequest], int],
    headers: Mapping[str, str] = EMPTY,
    key_group: str | None = None,
    *,
    bound: int | None = None,
    lazy: bool = False,
) -> Features:
    """`count_tokens` comes from accounting (tiktoken); headers may be any case-insensitive mapping.
    `lazy`: count only when something reads the count (`bound` settles what it can without counting)."""
    c = req.census()
    if lazy:
        return Features(
            c.images > 0,
            bool(req.tools),
            req.json_mode,
            req.stream,
            headers=headers,
            key_group=key_group,
            count=lambda: count_tokens(req),
            bound=bound,
            text=lambda: req.user_text,
            hosted_tools=bool(req.hosted_tools),
            documents=c.documents,
            provider_files=c.provider_files,
            parameters=lambda: request_parameters(req),
            source_api=req.source_api,
        )
    return Features(
        has_images=c.images > 0,
        has_tools=bool(req.tools),
        json_mode=req.json_mode,
        stream=req.stream,
        prompt_tokens=count_tokens(req),
        user_text=req.user_text,
        headers=headers,
        key_group=key_group,
        hosted_tools=bool(req.hosted_tools),
        documents=c.documents,
        provider_files=c.provider_files,
        parameters=lambda: request_parameters(req),
        source_api=req.source_api,
    )


def matches(w: When, f: Features) -> bool:
    """The hot path: does every condition of `w` hold? Cheapest checks first."""
    return (
        (w.has_images is None or w.has_images == f.has_images)
        and (w.has_tools is None or w.has_tools == f.has_tools)
        and (w.json_mode is None or w.json_mode == f.json_mode)
        and (w.stream is None or w.stream == f.stream)
        and (w.prompt_tokens_gt is None or f.tokens_gt(w.prompt_tokens_gt))
        and (w.prompt_tokens_lt is None or f.tokens_lt(w.prompt_tokens_lt))
        and (w.key_group is None or f.key_group in w.key_group)
        and (not w.header or all(f.headers.get(k) == v for k, v in w.header.items()))
        and (w.prompt_matches is None or w.prompt_matches.search(f.user_text) is not None)
    )


@frozen
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
