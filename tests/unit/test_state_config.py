"""`state:` in routes.yaml, its env override, and the Redis URL's own parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from faregate.config.build import load_routes
from faregate.state.connect import parse_target
from faregate.state.open import state_url


def spec_state(tmp_path: Path, line: str) -> tuple[str | None, list[str]]:
    f = tmp_path / "routes.yaml"
    f.write_text(f"version: 1\n{line}\n")
    spec, _, issues = load_routes(f)
    return (spec.state if spec else None), [i.message for i in issues]


def test_state_is_read_from_routes_yaml_and_env_wins(tmp_path: Path) -> None:
    assert spec_state(tmp_path, "state: redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", [])
    assert state_url("redis://a:6379/0", {}) == "redis://a:6379/0"
    assert state_url("redis://a:6379/0", {"FAREGATE_STATE": "redis://b:6379/1"}) == "redis://b:6379/1"
    assert state_url("memory", {}) is None and state_url(None, {}) is None
    assert state_url("redis://a:6379/0", {"FAREGATE_STATE": "memory"}) is None


def test_a_state_that_is_not_redis_or_memory_is_an_error(tmp_path: Path) -> None:
    state, issues = spec_state(tmp_path, "state: postgres://x")
    assert state is None and issues


def test_prefix_is_faregates_and_the_password_is_never_shown() -> None:
    t = parse_target("redis://:secret@r.example:6380/2?prefix=prod:&ssl_cert_reqs=none")
    assert t.prefix == "prod:" and t.url == "redis://:secret@r.example:6380/2?ssl_cert_reqs=none"
    assert t.shown == "redis://r.example:6380/2"
    assert parse_target("redis://127.0.0.1:6379/0").prefix == "fg:"
    with pytest.raises(ValueError):
        parse_target("http://x")
