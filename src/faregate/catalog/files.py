"""Read the shipped catalog snapshot: one YAML file per provider in `catalog/`, validated by its schema.

Parsing YAML with positions is most of the cost of a load (a start-up, every reload, each CLI command), so
a file's validated data is kept by the SHA-256 of its bytes (and of the schema): in this process for the
next load, and as JSON in the cache folder (`FAREGATE_CACHE_DIR`, default `$XDG_CACHE_HOME/faregate` or
`~/.cache/faregate`; `off` turns it off) for the next process. A changed file has another digest, so it is
read again: what a load returns never depends on the cache. A file with errors is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.config.build import money, opt_money
from faregate.config.load import ConfigIssue, parse_yaml
from faregate.config.validate import schema_issues
from faregate.paths import schema_path

CAPS = ("tools", "vision", "json", "streaming")
CACHE_ENV: Final = "FAREGATE_CACHE_DIR"
CACHE_FORMAT: Final = "catalog-1"  # bump when what is cached (the validated plain data) changes shape
MAX_MEMORY_ENTRIES: Final = 256
_memory: dict[str, dict[str, Any]] = {}  # digest -> the file's validated plain data (never mutated)


def load_catalog_dir(folder: Path) -> tuple[Catalog, list[ConfigIssue]]:
    """Every `*.yaml` in `folder`, in name order. A bad file is reported and skipped; the rest load."""
    providers: dict[str, ProviderInfo] = {}
    offerings: list[Offering] = []
    issues: list[ConfigIssue] = []
    for path in sorted(folder.glob("*.yaml")):
        data, errs = _validated(path)
        if data is None:
            issues += errs
            continue
        info, offs = parse_catalog_file(data)
        providers[info.name] = info
        offerings += offs
    return Catalog(MappingProxyType(providers), tuple(offerings)), issues


def _validated(path: Path) -> tuple[dict[str, Any] | None, list[ConfigIssue]]:
    """The file's data once it passed the schema and names its own provider, or its issues."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, [ConfigIssue(str(path), 1, 1, f"cannot read: {e.strerror or e}")]
    digest = hashlib.sha256(
        b"%s\0%s\0%s\0" % (CACHE_FORMAT.encode(), _schema_digest().encode(), path.stem.encode()) + raw
    ).hexdigest()
    data = _memory.get(digest) or _read_cached(digest)
    if data is not None:
        _remember(digest, data)
        return data, []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [ConfigIssue(str(path), 1, 1, f"cannot read: {e}")]
    doc, errs = parse_yaml(text, str(path))
    if doc is None:
        return None, errs
    data, errs = schema_issues(doc, "catalog")
    if errs:
        return None, errs
    if data["provider"] != path.stem:
        name = data["provider"]
        return None, [doc.issue(["provider"], f"provider '{name}' must match the file name '{path.stem}'")]
    _remember(digest, data)
    _write_cached(digest, data)
    return data, []


@cache
def _schema_digest() -> str:
    return hashlib.sha256(schema_path("catalog").read_bytes()).hexdigest()


def _remember(digest: str, data: dict[str, Any]) -> None:
    if len(_memory) >= MAX_MEMORY_ENTRIES:
        _memory.clear()
    _memory[digest] = data


def cache_dir() -> Path | None:
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured in ("", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "faregate"


def _read_cached(digest: str) -> dict[str, Any] | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        data = json.loads((folder / f"{digest}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none yet, unreadable or torn: parse the YAML
    return data if isinstance(data, dict) else None


def _write_cached(digest: str, data: dict[str, Any]) -> None:
    folder = cache_dir()
    if folder is None:
        return
    target = folder / f"{digest}.json"
    tmp = folder / f".{digest}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, target)  # whole or not at all, whoever reads it
    except OSError:
        pass  # a read-only home: every process parses, as before


def parse_catalog_file(data: dict[str, Any]) -> tuple[ProviderInfo, list[Offering]]:
    keys = data.get("api_key_env")
    source = data.get("source") or {}
    info = ProviderInfo(
        name=data["provider"],
        api=data["api"],
        base_url=data["base_url"],
        api_key_env=() if keys is None else ((keys,) if isinstance(keys, str) else tuple(keys)),
        data_collection=data["data_collection"],
        listing=data.get("listing"),
        free=bool(data.get("free", False)),
        source_url=source.get("url"),
        source_taken=None if source.get("taken") is None else str(source["taken"]),
        params=frozenset(data.get("params", ())),
    )
    offerings = [
        Offering(
            model_id=model_id,
            provider=info.name,
            upstream_id=o["id"],
            kind=o.get("kind", "chat"),
            price=Price(
                money(o["input"]),
                money(o.get("output", 0)),
                opt_money(o.get("cached_input")),
                opt_money(o.get("cache_write")),
            ),
            context=o["context"],
            max_output=o.get("max_output"),
            caps=frozenset(c for c in CAPS if o.get(c)),
            name=o.get("name"),
            retired="retired" in o,
            aliases=tuple(o.get("aliases", ())),
            retired_on=None if o.get("retired") is None else str(o["retired"]),
            retired_by="catalog" if "retired" in o else None,
            replacement=o.get("replacement"),
            api=o.get("api"),
            params=None if o.get("params") is None else frozenset(o["params"]),
        )
        for model_id, o in data["offerings"].items()
    ]
    return info, offerings
