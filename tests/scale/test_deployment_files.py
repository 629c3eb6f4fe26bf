"""docker-compose.yml brings up what docs/deployment.md describes: gateways on one Redis and one
PostgreSQL behind a load balancer (checked as a file: this machine runs no Docker)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def test_compose_wires_the_gateways_to_redis_and_postgres() -> None:
    doc = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"redis", "postgres", "gateway", "lb"} <= set(services)
    gw = services["gateway"]
    env = gw["environment"]
    assert env["FAREGATE_STATE"].startswith("redis://redis:")
    assert env["FAREGATE_STORE"].startswith("postgresql://") and "@postgres:5432/" in env["FAREGATE_STORE"]
    assert "--workers" in gw["command"] and gw["deploy"]["replicas"] >= 2
    assert set(gw["depends_on"]) == {"redis", "postgres"}
    assert (ROOT / "Dockerfile").is_file() and (ROOT / "deploy" / "nginx.conf").is_file()
    assert "docker-compose.yml" in (ROOT / "docs" / "deployment.md").read_text()
