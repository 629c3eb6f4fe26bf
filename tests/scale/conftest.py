"""Redis and PostgreSQL for the scale-out tests: the project's machines run both on 127.0.0.1.

Unreachable on a developer's laptop: the tests skip, saying why. Unreachable in CI (`CI=true`): they fail,
so CI always runs them. Every test gets its own key prefix (Redis) or schema (PostgreSQL).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

REDIS = os.environ.get("FAREGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("FAREGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need(name: str, host: str, port: int) -> None:
    if reachable(host, port):
        return
    why = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}: CI must run the scale-out tests")
    pytest.skip(f"{why} (start it to run the scale-out tests)")


@pytest.fixture
def redis_url() -> str:
    """A Redis URL with a fresh key prefix."""
    need("Redis", "127.0.0.1", 6379)
    return f"{REDIS}?prefix=fgtest-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards): the store's tables are
    made there as they would be in a database of their own."""
    need("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = f"fgtest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
