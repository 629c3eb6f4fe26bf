"""Several `faregate serve --demo` processes sharing one state (Redis) and one store, on their own ports."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

import faregate
from tests.processes import GatewayProcess, clean_env
from tests.server.accounting_fixtures import ADMIN_KEY


class Fleet:
    def __init__(self, root: Path, store: str, state: str | None, *, extra_args: Sequence[str] = ()) -> None:
        env = clean_env(FAREGATE_AUTH="keys", FAREGATE_ADMIN_KEY=ADMIN_KEY, FAREGATE_LOG_LEVEL="INFO")
        # The processes run this checkout's faregate (a relative PYTHONPATH would not survive their cwd).
        env["PYTHONPATH"] = str(Path(faregate.__file__).resolve().parents[1])
        if state:
            env["FAREGATE_STATE"] = state
        self.root, self.store, self.env, self.extra_args = root, store, env, tuple(extra_args)
        self.members: list[GatewayProcess] = []

    def add(self, name: str) -> GatewayProcess:
        cwd = self.root / name
        cwd.mkdir(parents=True, exist_ok=True)
        gw = GatewayProcess.demo(cwd, Path(self.store), self.env, extra_args=self.extra_args)
        self.members.append(gw)
        return gw

    async def start(self, n: int) -> list[str]:
        for i in range(n):
            self.add(f"gw{i}")
        return list(await asyncio.gather(*(m.ready(60) for m in self.members)))

    async def stop(self) -> None:
        """SIGTERM and wait: each writes what its usage log holds before exiting."""
        for m in self.members:
            if m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            await asyncio.to_thread(m.proc.wait, 60)

    def kill(self) -> None:
        for m in self.members:
            m.stop()


async def post(
    http: aiohttp.ClientSession, url: str, secret: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, str], Any]:
    async with http.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}", **headers}
    ) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def get(http: aiohttp.ClientSession, url: str, secret: str, path: str) -> Any:
    async with http.get(url + path, headers={"Authorization": f"Bearer {secret}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()
