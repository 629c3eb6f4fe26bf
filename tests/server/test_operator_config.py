"""Issue 10, a new user's own routes.yaml: offerings it declares under `models:` (own id, prices, context)
are routed as declared whatever the shipped catalog says about retirement; what the catalog says is a
warning (`check` exits 0, `--strict` 1); routes.yaml's own `retired:` takes an offering out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.cli import main
from faregate.paths import catalog_dir
from tests.conftest import Demo, edit_routes, start_demo

ROUTES = """\
version: 1
providers:
  together: {}
  groq: {}
models:
  anthropic/claude-3-5-haiku:
    offerings:
      together: {id: anthropic/claude-3-5-haiku, input: 0.7, output: 3.5, context: 200000, tools: true}
      groq: {id: claude-3-5-haiku, input: 0.8, output: 4.0, context: 200000, tools: true}
  google/gemini-2.0-flash:
    offerings:
      together: {id: google/gemini-2.0-flash, input: 0.09, output: 0.35, context: 1048576, vision: true}
      groq: {id: gemini-2.0-flash, input: 0.1, output: 0.4, context: 1048576, vision: true}
  meta-llama/llama-3.1-8b-instruct:
    offerings:
      together: {id: meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo, input: 0.04, output: 0.06, context: 131072}
      groq: {id: llama-3.1-8b-instant, input: 0.05, output: 0.08, context: 131072}
aliases:
  auto: default
routes:
  default:
    - name: vision
      when: {has_images: true}
      use: [google/gemini-2.0-flash]
    - name: tools
      when: {has_tools: true}
      use: [anthropic/claude-3-5-haiku]
    - name: everything-else
      use: [meta-llama/llama-3.1-8b-instruct]
"""
DECLARED = {
    (m, p)
    for m in ("anthropic/claude-3-5-haiku", "google/gemini-2.0-flash", "meta-llama/llama-3.1-8b-instruct")
    for p in ("together", "groq")
}
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    return path


@pytest.fixture
async def gateway(routes: Path, counter: TokenCounter) -> AsyncIterator[Demo]:
    d, stop = await start_demo(routes, counter)
    try:
        yield d
    finally:
        await stop()


async def chat(d: Demo, **extra: Any) -> tuple[int, dict[str, Any], str]:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Hello there"}], **extra}
    async with aiohttp.ClientSession() as http, http.post(f"{d.url}/v1/chat/completions", json=body) as r:
        return r.status, await r.json(), r.headers.get("X-Faregate-Provider", "")


def check(routes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["check", str(routes), "--store", str(tmp_path / "no-store.db"), *flags])
    return code, capsys.readouterr().out


def shipped_retired() -> set[tuple[str, str]]:
    catalog, _ = load_catalog_dir(catalog_dir())
    return {o.key for o in catalog.offerings if o.retired}


async def test_the_config_starts_and_routes_the_cheapest_declared_provider_first(gateway: Demo) -> None:
    for extra, model in (
        ({}, "meta-llama/llama-3.1-8b-instruct"),
        ({"tools": [TOOL]}, "anthropic/claude-3-5-haiku"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {"type": "image_url", "image_url": {"url": IMAGE}},
                        ],
                    }
                ]
            },
            "google/gemini-2.0-flash",
        ),
    ):
        status, body, provider = await chat(gateway, **extra)
        assert status == 200, body
        assert (provider, body["x-faregate"]["routing"]["model"]) == ("together", model)
        assert [a["outcome"] for a in body["x-faregate"]["routing"]["attempts"]] == ["ok"]
    plan = gateway.runtime.holder.current.table.routes["default"][2].channels
    assert [c.provider for c in plan] == ["together", "groq"]  # declared cheapest first, groq next


def test_check_prints_the_retirement_warnings_and_exits_0_and_strict_exits_1(
    routes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overridden = sorted(DECLARED & shipped_retired())
    assert overridden, "the shipped catalog marks some of these offerings retired"
    code, out = check(routes, tmp_path, capsys)
    assert code == 0, out
    lines = out.splitlines()
    warned = [line for line in lines if ": warning: " in line]
    assert len(warned) == len(overridden), out
    for model, provider in overridden:
        said = f"'{model}' at '{provider}' was retired"
        assert any(said in w and "routed as routes.yaml says (declared)" in w for w in warned), out
    assert all(w.startswith(f"{routes}:") for w in warned)
    assert ": ok: " in lines[-1] and f"({len(warned)} warning" in lines[-1]
    code, _ = check(routes, tmp_path, capsys, "--strict")
    assert code == 1


async def test_routes_yaml_retired_takes_an_offering_out(
    gateway: Demo, routes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def retire_together(doc: Any) -> None:
        doc["models"]["meta-llama/llama-3.1-8b-instruct"]["offerings"]["together"]["retired"] = "2026-12-01"

    edit_routes(routes, retire_together)
    assert await gateway.runtime.reload() == []
    status, _, provider = await chat(gateway)
    assert status == 200 and provider == "groq"
    assert (
        "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"
        not in gateway.runtime.holder.current.table.channels
    )
    code, out = check(routes, tmp_path, capsys)
    assert code == 0, out

    def retire_both(doc: Any) -> None:
        doc["models"]["meta-llama/llama-3.1-8b-instruct"]["offerings"]["groq"]["retired"] = True

    edit_routes(routes, retire_both)  # routes.yaml's own doing: the rule has nothing left, an error
    issues = await gateway.runtime.reload()
    assert [i.message for i in issues] == [
        "rule 'everything-else': no routable offering of meta-llama/llama-3.1-8b-instruct (retired in routes.yaml)"
    ]
    status, _, provider = await chat(gateway)
    assert (status, provider) == (200, "groq")  # the old table keeps serving
