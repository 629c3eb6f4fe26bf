"""A demo gateway with a store (keys, limits, usage log) and `auth: keys`, for the accounting tests.

`start_keyed_demo` builds what `start_demo` (tests/conftest.py) builds, plus an `Accounts` on a SQLite
file, so the usage log's batch writer runs in the app's cleanup context as it does under `faregate serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from aiohttp.test_utils import TestServer

import faregate
from faregate.accounting.keys import ApiKey
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.model import MILLION
from faregate.paths import catalog_dir
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import run_simulator
from tests.conftest import Demo

ADMIN_KEY = "fg_admin_0123456789abcdef0123456789abcdef"
PINNED = "openai/gpt-6-luna"  # one channel (openai), $0.10 in / $0.50 out per 1M tokens


@dataclass
class KeyedDemo:
    demo: Demo
    accounts: Accounts
    store: Path
    admin_key: str = ADMIN_KEY

    @property
    def url(self) -> str:
        return self.demo.url

    def create_key(self, label: str = "test", **limits: Any) -> tuple[str, ApiKey]:
        return self.accounts.keys.create(label, **limits)

    async def post(
        self,
        session: aiohttp.ClientSession,
        secret: str | None,
        body: dict[str, Any],
        *,
        path: str = "/v1/chat/completions",
        header: str = "bearer",
    ) -> tuple[int, dict[str, str], Any]:
        resp = await session.post(self.url + path, json=body, headers=auth_headers(secret, header))
        async with resp:
            text = await resp.text()
            is_json = resp.content_type == "application/json"
            return resp.status, dict(resp.headers), json.loads(text) if is_json else text

    async def get(
        self, session: aiohttp.ClientSession, secret: str | None, path: str
    ) -> tuple[int, dict[str, str], Any]:
        async with session.get(self.url + path, headers=auth_headers(secret)) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


def auth_headers(secret: str | None, header: str = "bearer") -> dict[str, str]:
    if secret is None:
        return {}
    return {"Authorization": f"Bearer {secret}"} if header == "bearer" else {"X-API-Key": secret}


def chat_body(
    text: str = "Hello there", *, model: str = PINNED, max_tokens: int | None = 16
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


async def start_keyed_demo(
    routes_path: Path,
    counter: TokenCounter,
    store: Path,
    *,
    auth: str = "keys",
    admin_key: str | None = ADMIN_KEY,
) -> tuple[KeyedDemo, Callable[[], Awaitable[None]]]:
    sources = Sources(routes_path, catalog_dir(), {})
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, base_urls = demo_env(sources, sim, names, origin)
    sources = replace(sources, env=keys, base_urls=base_urls)
    accounts = Accounts(store)
    runtime, issues = Runtime.from_sources(sources, counter=counter, simulated=True, accounts=accounts)
    assert runtime is not None, issues
    options = ServeOptions(auth=auth, admin_key=admin_key, watch_interval_s=0)
    server = TestServer(create_app(runtime, options), host="127.0.0.1")
    await server.start_server()

    async def stop() -> None:
        await server.close()  # runs the cleanup contexts: the usage log writes what is pending
        await sim_runner.cleanup()

    return KeyedDemo(Demo(sim, origin, runtime, server, routes_path), accounts, store), stop


def worst_cost(kd: KeyedDemo, model: str, prompt_tokens: int, max_tokens: int) -> Decimal:
    """The budget reservation for a request pinned to `model`: its dearest channel's price at `max_tokens`
    (recomputed here from the price table, not with the gateway's own helper)."""
    table = kd.demo.runtime.holder.current.table
    prices = [c.price for c in table.channels.values() if c.model_id == model and c.api_key]
    return max((p.input * prompt_tokens + p.output * max_tokens) / MILLION for p in prices)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without provider keys or FAREGATE_* settings (but the test run's own
    catalog cache folder, never the user's ~/.cache), plus `extra`. The faregate
    this process imported comes first on PYTHONPATH (a relative `PYTHONPATH=src` would not survive the
    subprocess's own working directory, and the installed copy would run instead)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FAREGATE_") and not k.endswith(("_API_KEY", "_AUTH_TOKEN"))
    }
    env["FAREGATE_CACHE_DIR"] = os.environ["FAREGATE_CACHE_DIR"]
    here = str(Path(faregate.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return {**env, **extra}


class GatewayProcess:
    """`faregate serve --demo --port 0` as a subprocess, its stdout and stderr going to files in `cwd`.

    It leads a process group of its own, which its workers (`--workers N`) join: `stop` kills the group,
    so no worker outlives a test, even one whose supervisor was killed first; `reap_all` stops every one
    started (a fixture's teardown, whatever the test did)."""

    started: ClassVar[list[GatewayProcess]] = []

    def __init__(
        self, cwd: Path, store: Path, env: dict[str, str], *, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.stdout_path, self.stderr_path = cwd / "stdout.txt", cwd / "stderr.txt"
        argv = [sys.executable, "-m", "faregate.cli", "serve", "--demo", "--port", "0", "--store", str(store)]
        argv += extra_args
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )
        GatewayProcess.started.append(self)
        self.url = ""

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    async def ready(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://[\d.]+:\d+)", self.stdout_path.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"faregate exited with {self.proc.returncode}:\n{self.output}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"faregate did not start within {timeout_s} s:\n{self.output}")

    def sim_origin(self) -> str:
        found = re.search(r"simulator on (http://[\d.]+:\d+)", self.output)
        assert found, self.output
        return found.group(1)

    def stop(self) -> None:
        """SIGKILL to the whole group: the process and whatever workers are left of it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    @classmethod
    def reap_all(cls) -> None:
        while cls.started:
            cls.started.pop().stop()
