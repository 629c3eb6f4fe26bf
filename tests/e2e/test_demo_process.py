"""The README's promise, as a newcomer meets it: `faregate serve --demo` in a folder with nothing in it and no
provider keys, then the official `openai` SDK for auto, an explicit model and a stream; SIGHUP reloads,
SIGTERM shuts down cleanly."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.processes import GatewayProcess, clean_env

pytestmark = pytest.mark.e2e

START_LIMIT_S = 30.0
STOP_LIMIT_S = 10.0


@dataclass
class Gateway:
    process: GatewayProcess
    url: str

    def healthz(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                body: dict[str, Any] = json.load(resp)
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def wait_for(self, condition: Any, what: str, limit_s: float = START_LIMIT_S) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            assert self.process.proc.poll() is None, f"the gateway exited:\n{self.process.output}"
            health = self.healthz()
            if health is not None and condition(health):
                return health
            time.sleep(0.05)
        raise AssertionError(f"{what} within {limit_s} s:\n{self.process.output}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    """A newcomer's start: an empty folder, no provider keys, no faregate settings (the test run's catalog
    cache folder, never the user's ~/.cache). Stopped at teardown by `reap_gateways` if still running."""
    port = free_port()
    gw = Gateway(
        GatewayProcess(tmp_path, clean_env(), ["--demo", "--port", str(port)]), f"http://127.0.0.1:{port}"
    )
    gw.wait_for(lambda h: h["status"] == "ok", "the demo gateway did not answer /healthz")
    return gw


def test_the_demo_serves_the_openai_sdk_then_reloads_and_stops(gateway: Gateway) -> None:
    health = gateway.healthz()
    assert health == {"status": "ok", "generation": 0, "simulated": True}
    sdk = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key="unused-with-auth-open", max_retries=0, timeout=20
    )
    hello: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello!"}]

    auto = sdk.chat.completions.with_raw_response.create(model="auto", messages=hello)
    completion = auto.parse()
    assert (completion.choices[0].message.content or "").startswith("[simulated ")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert (completion.usage.model_extra or {})["cost"] > 0
    assert (completion.model_extra or {})["x-faregate"]["routing"]["rule"] == "everything-else"
    assert auto.headers["X-Faregate-Cost"]

    explicit = sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=hello)
    assert explicit.model == "openai/gpt-4o-mini"
    assert (explicit.model_extra or {})["x-faregate"]["routing"]["provider"] == "openai"

    chunks = list(
        sdk.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=hello,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("[simulated ")
    last = chunks[-1]
    assert last.usage is not None and (last.usage.model_extra or {})["cost"] > 0
    assert (last.model_extra or {})["x-faregate"]["routing"]["model"] == "openai/gpt-4o-mini"

    gateway.process.proc.send_signal(signal.SIGHUP)
    gateway.wait_for(lambda h: h["generation"] == 1, "SIGHUP did not reload the table")
    again = sdk.chat.completions.create(model="auto", messages=hello)
    assert again.choices[0].message.content

    gateway.process.proc.send_signal(signal.SIGTERM)
    assert gateway.process.proc.wait(STOP_LIMIT_S) == 0, gateway.process.output
    log = gateway.process.output
    assert "Traceback" not in log, log
