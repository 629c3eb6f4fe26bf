"""The shipped catalog: every catalog/*.yaml validates against schemas/catalog.schema.json and holds
the offerings that routes.yaml and the docs rely on."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = ROOT / "catalog"
SCHEMA_PATH = ROOT / "schemas" / "catalog.schema.json"

PROVIDERS = (
    "openai",
    "anthropic",
    "google",
    "xai",
    "groq",
    "deepseek",
    "mistral",
    "together",
    "openrouter",
    "ollama",
)

# Models the shipped routes.yaml names: each must be offered somewhere.
ROUTED_MODELS = (
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-3-5-haiku",
    "google/gemini-2.0-flash",
    "meta-llama/llama-3.1-8b-instruct",
    "meta-llama/llama-3.3-70b-instruct",
    "deepseek/deepseek-chat",
    "mistralai/mistral-small",
    "openai/text-embedding-3-small",
)

# (provider, model) -> upstream id that other parts of the project (routes, docs, tests) rely on.
PINNED_UPSTREAM_IDS = {
    ("openai", "openai/gpt-4o-mini"): "gpt-4o-mini",
    ("anthropic", "anthropic/claude-3-5-haiku"): "claude-3-5-haiku-20241022",
    ("google", "google/gemini-2.0-flash"): "gemini-2.0-flash",
    ("groq", "meta-llama/llama-3.1-8b-instruct"): "llama-3.1-8b-instant",
    ("together", "meta-llama/llama-3.1-8b-instruct"): "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
}

REQUIRED_BY_PROVIDER = {
    "openai": (
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
        "openai/gpt-4.1-nano",
        "openai/o4-mini",
        "openai/text-embedding-3-small",
        "openai/text-embedding-3-large",
    ),
    "google": ("google/gemini-2.0-flash", "google/gemini-2.5-flash", "google/gemini-2.5-pro"),
    "mistral": ("mistralai/mistral-small",),
}

EMBEDDINGS = (
    ("openai", "openai/text-embedding-3-small"),
    ("openai", "openai/text-embedding-3-large"),
    ("mistral", "mistralai/mistral-embed"),
)

PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


@cache
def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    return data


def catalog_paths() -> list[Path]:
    return sorted(CATALOG_DIR.glob("*.yaml"))


def catalog() -> dict[str, dict[str, Any]]:
    return {path.stem: load(path) for path in catalog_paths()}


def offerings() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for provider, doc in catalog().items():
        for model_id, offering in doc["offerings"].items():
            yield provider, model_id, offering


def errors(doc: object) -> list[str]:
    return [error.message for error in validator().iter_errors(doc)]


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _walk_objects(node: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _walk_objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk_objects(value, f"{path}/{index}")


def test_schema_closes_every_object_and_describes_every_property():
    for path, node in _walk_objects(schema(), "#"):
        assert node.get("additionalProperties") is False, f"{path} allows unknown properties"
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{path}/properties/{name} has no description"


def test_every_provider_has_a_file():
    assert sorted(path.stem for path in catalog_paths()) == sorted(PROVIDERS)


@pytest.mark.parametrize("path", catalog_paths(), ids=lambda p: p.name)
def test_file_validates_against_schema(path: Path):
    assert errors(load(path)) == []


@pytest.mark.parametrize("path", catalog_paths(), ids=lambda p: p.name)
def test_file_name_is_the_provider(path: Path):
    assert load(path)["provider"] == path.stem


@pytest.mark.parametrize("path", catalog_paths(), ids=lambda p: p.name)
def test_file_opens_with_a_comment_naming_its_source(path: Path):
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# ")
    doc = load(path)
    taken = dt.date.fromisoformat(doc["source"]["taken"])
    assert taken <= dt.date.today()
    header = path.read_text(encoding="utf-8").split("\nprovider:")[0]
    assert doc["source"]["taken"] in header
    assert doc["source"]["url"] in header


@pytest.mark.parametrize("path", catalog_paths(), ids=lambda p: p.name)
def test_no_duplicate_upstream_ids(path: Path):
    counts = Counter(offering["id"] for offering in load(path)["offerings"].values())
    assert [upstream_id for upstream_id, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("model_id", ROUTED_MODELS)
def test_routed_model_is_offered(model_id: str):
    assert any(model == model_id for _, model, _ in offerings())


def test_routed_open_models_have_several_offerings():
    providers = Counter(model for _, model, _ in offerings())
    for model_id in ("meta-llama/llama-3.1-8b-instruct", "meta-llama/llama-3.3-70b-instruct"):
        assert providers[model_id] >= 3, model_id


@pytest.mark.parametrize(("provider", "model_id"), sorted(PINNED_UPSTREAM_IDS))
def test_pinned_upstream_ids(provider: str, model_id: str):
    offering = catalog()[provider]["offerings"][model_id]
    assert offering["id"] == PINNED_UPSTREAM_IDS[(provider, model_id)]


@pytest.mark.parametrize("provider", sorted(REQUIRED_BY_PROVIDER))
def test_provider_offers_required_models(provider: str):
    offered = catalog()[provider]["offerings"]
    assert [m for m in REQUIRED_BY_PROVIDER[provider] if m not in offered] == []


@pytest.mark.parametrize(("provider", "model_id"), EMBEDDINGS)
def test_embeddings_have_kind_embedding(provider: str, model_id: str):
    offering = catalog()[provider]["offerings"][model_id]
    assert offering["kind"] == "embedding"
    assert offering["output"] == 0


def test_embedding_named_models_are_embeddings():
    for provider, model_id, offering in offerings():
        if "embed" in model_id:
            assert offering.get("kind") == "embedding", (provider, model_id)


def test_ollama_is_free_and_keyless():
    ollama = catalog()["ollama"]
    assert ollama["free"] is True
    assert "api_key_env" not in ollama
    assert ollama["base_url"] == "http://localhost:11434/v1"
    assert ollama["listing"] == "ollama"
    for offering in ollama["offerings"].values():
        assert all(offering.get(field, 0) == 0 for field in PRICE_FIELDS), offering["id"]


def test_paid_providers_have_keys_and_charge():
    for provider, doc in catalog().items():
        if doc.get("free"):
            continue
        assert doc["api_key_env"].endswith("_API_KEY"), provider
        assert all(o["input"] > 0 for o in doc["offerings"].values()), provider


def test_provider_settings():
    docs = catalog()
    assert docs["google"]["api"] == "gemini"
    assert docs["google"]["base_url"] == "https://generativelanguage.googleapis.com/v1beta"
    assert docs["google"]["api_key_env"] == "GEMINI_API_KEY"
    assert docs["anthropic"]["api"] == "anthropic"
    assert docs["anthropic"]["base_url"] == "https://api.anthropic.com"
    assert docs["openrouter"]["listing"] == "openrouter"
    assert docs["together"]["listing"] == "together"
    policy = {provider: doc["data_collection"] for provider, doc in docs.items()}
    assert policy == {provider: "allow" if provider == "deepseek" else "deny" for provider in PROVIDERS}


def test_prices_are_sane():
    for provider, model_id, offering in offerings():
        where = (provider, model_id)
        if "cached_input" in offering:
            assert offering["cached_input"] <= offering["input"], where
        if "max_output" in offering:
            assert offering["max_output"] <= offering["context"], where


# --- the schema rejects broken documents -------------------------------------------------------

VALID_DOC: dict[str, Any] = {
    "provider": "example",
    "api": "openai",
    "base_url": "https://api.example.com/v1",
    "api_key_env": "EXAMPLE_API_KEY",
    "data_collection": "deny",
    "listing": "openai",
    "source": {"url": "https://example.com/pricing", "taken": "2026-11-20"},
    "offerings": {
        "example/chat-1": {"id": "chat-1", "input": 0.15, "output": 0.6, "context": 128000, "tools": True},
        "example/embed-1": {
            "id": "embed-1",
            "kind": "embedding",
            "input": 0.02,
            "output": 0,
            "context": 8191,
        },
    },
}


def broken(**changes: Any) -> dict[str, Any]:
    """VALID_DOC with dotted paths set (value) or removed (None)."""
    doc = copy.deepcopy(VALID_DOC)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return doc


def test_valid_document_is_accepted():
    assert errors(VALID_DOC) == []


def _offering(**fields: Any) -> dict[str, Any]:
    return {"id": "x", "input": 1, "output": 2, "context": 1000} | fields


def only(model_id: str, offering: dict[str, Any]) -> dict[str, Any]:
    """VALID_DOC with its offerings replaced by this one."""
    return broken(offerings={model_id: offering})


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            only("example/chat-1", {"id": "c", "output": 1, "context": 9}),
            id="missing-input",
        ),
        pytest.param(
            only("example/chat-1", {"id": "c", "input": 1, "context": 9}),
            id="chat-missing-output",
        ),
        pytest.param(
            only("example/chat-1", {"input": 1, "output": 1, "context": 9}),
            id="missing-id",
        ),
        pytest.param(
            only("example/chat-1", {"id": "c", "input": 1, "output": 1}),
            id="missing-context",
        ),
        pytest.param(only("example/chat-1", _offering(price=3)), id="unknown-offering-field"),
        pytest.param(broken(homepage="https://example.com"), id="unknown-top-level-field"),
        pytest.param(
            broken(**{"source": {"url": "https://example.com", "taken": "2026-11-20", "by": "me"}}),
            id="unknown-source-field",
        ),
        pytest.param(only("gpt-4o-mini", _offering()), id="model-id-without-author"),
        pytest.param(only("OpenAI/gpt-4o", _offering()), id="model-id-uppercase-author"),
        pytest.param(only("openai/gpt 4o", _offering()), id="model-id-with-space"),
        pytest.param(only("example/chat-1", _offering(input=-0.1)), id="negative-input"),
        pytest.param(
            only("example/chat-1", _offering(cached_input=-1)),
            id="negative-cached-input",
        ),
        pytest.param(only("example/chat-1", _offering(input="0.15")), id="price-as-string"),
        pytest.param(only("example/chat-1", _offering(context=0)), id="zero-context"),
        pytest.param(only("example/chat-1", _offering(tools="yes")), id="capability-not-bool"),
        pytest.param(only("example/chat-1", _offering(kind="image")), id="unknown-kind"),
        pytest.param(
            only("example/e", _offering(kind="embedding", output=1)),
            id="embedding-with-output-price",
        ),
        pytest.param(broken(offerings={}), id="no-offerings"),
        pytest.param(broken(provider="Open AI"), id="bad-provider-name"),
        pytest.param(broken(api="cohere"), id="unknown-api"),
        pytest.param(broken(listing="huggingface"), id="unknown-listing"),
        pytest.param(broken(data_collection="maybe"), id="bad-data-collection"),
        pytest.param(broken(base_url="api.example.com/v1"), id="base-url-without-scheme"),
        pytest.param(broken(api_key_env="example-key"), id="bad-env-var-name"),
        pytest.param(broken(api_key_env=[]), id="empty-env-var-list"),
        pytest.param(broken(**{"source.taken": dt.date(2026, 11, 20)}), id="taken-unquoted-date"),
        pytest.param(broken(**{"source.taken": "20-11-2026"}), id="taken-wrong-format"),
        pytest.param(broken(source=None), id="missing-source"),
        pytest.param(broken(free=True), id="free-provider-with-prices"),
    ],
)
def test_schema_rejects(doc: dict[str, Any]):
    assert errors(doc) != []


def test_several_key_variables_are_accepted():
    assert errors(broken(api_key_env=["EXAMPLE_API_KEY", "EXAMPLE_API_KEY_2"])) == []


def test_free_provider_with_zero_prices_is_accepted():
    doc = broken(free=True, api_key_env=None)
    for offering in doc["offerings"].values():
        offering["input"] = 0
        offering["output"] = 0
    assert errors(doc) == []


# --- retirement marks ----------------------------------------------------------------------------------

# Where each provider documents its own shut-downs: a `retired:` mark must cite one of these hosts (a third
# party's deprecation date, LiteLLM's for one, is not a shut-down).
OWN_DOCS = {
    "openai": ("developers.openai.com", "platform.openai.com"),
    "anthropic": ("platform.claude.com", "docs.claude.com", "docs.anthropic.com"),
    "google": ("ai.google.dev", "firebase.google.com", "cloud.google.com"),
    "groq": ("console.groq.com",),
    "deepseek": ("api-docs.deepseek.com",),
    "together": ("docs.together.ai",),
    "mistral": ("docs.mistral.ai",),
    "xai": ("docs.x.ai",),
    "openrouter": ("openrouter.ai",),
    "ollama": ("ollama.com",),
}
RETIRED_LINE = re.compile(r"^\s+retired:\s*(?P<value>[^#]*?)\s*(?:#\s*(?P<comment>.*))?$")
SOURCE_URL = re.compile(r"https://(?P<host>[a-z0-9.-]+)/\S*")


def retired_lines(path: Path) -> Iterator[tuple[int, re.Match[str]]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = RETIRED_LINE.match(line)
        if found:
            yield number, found


def test_every_retirement_mark_cites_the_providers_own_documentation():
    marks = 0
    for path in catalog_paths():
        hosts = OWN_DOCS.get(path.stem)
        assert hosts, f"{path.name}: add the provider's documentation hosts to OWN_DOCS"
        # `faregate catalog export` cites the listing endpoint a synced retirement was seen missing from
        hosts = (*hosts, urlparse(str(catalog()[path.stem].get("base_url") or "")).hostname or "")
        for number, found in retired_lines(path):
            marks += 1
            where = f"{path.name}:{number}"
            comment = found.group("comment") or ""
            url = SOURCE_URL.search(comment)
            assert url, f"{where}: a retired mark needs its source in a comment: # source: https://..."
            assert url.group("host") in hosts, (
                f"{where}: {url.group('host')} is not {path.stem}'s own documentation ({', '.join(hosts)})"
            )
    assert marks == sum(1 for _, _, o in offerings() if o.get("retired")), "every mark was checked"


def test_comments_that_say_shut_down_come_with_a_mark():
    """A comment saying a model was shut down, retired or decommissioned describes the offerings right below
    it: the first of them must carry a mark, unless the comment says "not retired" (and why)."""
    said = re.compile(r"\b(shut down|retired|decommissioned)\b", re.IGNORECASE)
    for path in catalog_paths():
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("  #"):
                i += 1
                continue
            first = i
            while i < len(lines) and lines[i].startswith("  #"):
                i += 1
            block = " ".join(x.strip("# ") for x in lines[first:i])
            if not said.search(block) or "not retired" in block.lower():
                continue
            if i >= len(lines) or not re.match(r"^  [a-z0-9]", lines[i]):
                continue  # not a comment that introduces an offering
            end = i + 1
            while end < len(lines) and lines[end].startswith("    "):
                end += 1
            assert any(RETIRED_LINE.match(x) for x in lines[i:end]), (
                f"{path.name}:{first + 1}: the comment says the model was shut down, but {lines[i].strip()}"
                " has no retired mark"
            )


def test_every_replacement_names_a_live_catalog_model():
    """A retired offering's `replacement` is what a 404 `model_retired` tells the client to use instead:
    it must be a model the catalog offers and has not retired itself."""
    live = {model_id for _, model_id, o in offerings() if not o.get("retired")}
    named = [(model_id, o["replacement"]) for _, model_id, o in offerings() if o.get("replacement")]
    assert named, "the shipped catalog names replacements"
    for model_id, successor in named:
        assert successor in live, f"{model_id}: replacement {successor!r} is not a live catalog model"


# -- the parsed-catalog cache (catalog/files.py) ----------------------------------------------------------


@pytest.fixture
def catalog_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped catalog folder, a cache folder of its own and an empty in-process cache."""
    import faregate.catalog.files as files

    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, folder)
    monkeypatch.setenv("FAREGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "_memory", {})
    return folder


def test_a_load_is_the_same_from_the_yaml_from_memory_and_from_the_cache_folder(
    catalog_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faregate.catalog.files as files

    folder = catalog_copy
    parsed = files.load_catalog_dir(folder)
    assert parsed[1] == [] and len(list((tmp_path / "cache").glob("*.json"))) == len(PROVIDERS)

    def no_yaml(*args: Any, **kw: Any) -> Any:
        raise AssertionError("parsed the YAML again")

    monkeypatch.setattr(files, "parse_yaml", no_yaml)
    assert files.load_catalog_dir(folder) == parsed  # from memory
    monkeypatch.setattr(files, "_memory", {})
    assert files.load_catalog_dir(folder) == parsed  # from the cache folder: another process


def test_a_changed_or_broken_file_is_read_again_and_a_torn_cache_entry_ignored(
    catalog_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faregate.catalog.files as files

    folder = catalog_copy
    catalog, _ = files.load_catalog_dir(folder)
    price = next(o for o in catalog.offerings if o.provider == "together").price
    assert price is not None
    text = (folder / "together.yaml").read_text()
    (folder / "together.yaml").write_text(text.replace("input: 0.18", "input: 0.19", 1))
    changed, issues = files.load_catalog_dir(folder)
    after = next(o for o in changed.offerings if o.provider == "together").price
    assert issues == [] and after is not None and str(after.input) == "0.19"
    (folder / "together.yaml").write_text(text.replace("api: openai", "api: nope", 1))
    broken, issues = files.load_catalog_dir(folder)
    assert "together" not in broken.providers and issues and issues[0].file.endswith("together.yaml")
    (folder / "together.yaml").write_text(text)
    for entry in (tmp_path / "cache").glob("*.json"):
        entry.write_text('{"provider": ')  # torn
    monkeypatch.setattr(files, "_memory", {})
    assert files.load_catalog_dir(folder)[0] == catalog
