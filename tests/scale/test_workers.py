"""`faregate serve --workers 2`: limits hold across workers on shared state, a killed worker is replaced,
SIGHUP reloads every worker, SIGTERM under load loses no usage row, workers do not outlive a supervisor
killed outright (serving or still starting), and N > 1 with in-process state and keys with limits is
refused."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import faregate
from faregate.accounting.keys import KeyStore
from faregate.db import open_db
from tests.processes import GatewayProcess, clean_env
from tests.scale.fleet import Fleet, get, post
from tests.server.accounting_fixtures import ADMIN_KEY, chat_body

pytestmark = pytest.mark.e2e
WORKERS = 2


async def all_ready(fleet: Fleet, n: int = WORKERS, timeout_s: float = 60) -> str:
    """The shared URL, once every worker says it serves."""
    gw = fleet.members[0]
    deadline = time.monotonic() + timeout_s
    while True:
        out = gw.stdout_path.read_text(errors="replace")
        found = re.findall(r"worker (\d+) serving on (http://[\d.]+:\d+)", out)
        if len({w for w, _ in found}) >= n:
            return str(found[0][1])
        if gw.proc.poll() is not None:
            raise AssertionError(f"exited with {gw.proc.returncode}:\n{gw.output}")
        assert time.monotonic() < deadline, gw.output
        await asyncio.sleep(0.1)


def gone(pid: int) -> bool:
    """Exited (a zombie that nobody has reaped yet counts: it serves nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def wait_gone(pids: list[int], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(gone(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not gone(p)]}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def supervised(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Fleet, str]]:
    store = tmp_path / "store.db"
    KeyStore(open_db(store))
    fleet = Fleet(tmp_path, str(store), redis_url, extra_args=("--workers", str(WORKERS)))
    fleet.add("sup")
    try:
        yield fleet, await all_ready(fleet)
    finally:
        fleet.kill()  # the supervisor, with SIGKILL: its orphaned workers stop themselves within a second


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection for every request, so the kernel spreads them over the workers.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


async def roster(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    workers: dict[str, Any] = (await get(http, url, ADMIN_KEY, "/admin/routes"))["workers"]
    return workers


async def test_limits_hold_across_workers(supervised: tuple[Fleet, str], http: aiohttp.ClientSession) -> None:
    fleet, url = supervised
    seen = {(await roster(http, url))["this"] for _ in range(24)}
    assert seen == set(range(WORKERS))  # both workers answer on the one port
    keys = KeyStore(open_db(fleet.store))
    budget = Decimal("0.00005")
    secret, budgeted = keys.create("budget", budget_usd=budget)
    body = chat_body("Tell me a story about a lighthouse keeper", max_tokens=32)
    statuses = [s for s, _, _ in await asyncio.gather(*(post(http, url, secret, body) for _ in range(50)))]
    assert set(statuses) <= {200, 402} and 0 < statuses.count(200) < 50
    rpm_secret, _ = keys.create("rpm", rpm=5)
    rpm_statuses = [(await post(http, url, rpm_secret, chat_body(max_tokens=8)))[0] for _ in range(12)]
    assert rpm_statuses.count(200) == 5 and rpm_statuses.count(429) == 7
    await fleet.stop()
    assert fleet.members[0].proc.returncode == 0, fleet.members[0].output
    with sqlite3.connect(fleet.store) as db:
        costs = [
            Decimal(r[0]) for r in db.execute("select cost_usd from usage where key_id = ?", [budgeted.id])
        ]
    assert len(costs) == 50 and sum(costs, Decimal(0)) <= budget


async def test_a_killed_worker_is_replaced(
    supervised: tuple[Fleet, str], http: aiohttp.ClientSession
) -> None:
    _, url = supervised
    before = await roster(http, url)
    victim = before["workers"][1]
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = {w["id"]: w for w in (await roster(http, url))["workers"]}
        w = now[victim["id"]]
        if w["pid"] != victim["pid"] and w["alive"] and w["restarts"] == 1:
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.2)
    while {(await roster(http, url))["this"] for _ in range(16)} != set(range(WORKERS)):
        assert time.monotonic() < deadline  # the replacement serves too
        await asyncio.sleep(0.2)


async def test_sighup_reloads_every_worker(
    supervised: tuple[Fleet, str], http: aiohttp.ClientSession
) -> None:
    fleet, url = supervised
    fleet.members[0].proc.send_signal(signal.SIGHUP)
    reloaded: set[int] = set()
    deadline = time.monotonic() + 60
    while reloaded != set(range(WORKERS)):
        routes = await get(http, url, ADMIN_KEY, "/admin/routes")
        if routes["generation"] >= 1:
            reloaded.add(routes["workers"]["this"])
        assert time.monotonic() < deadline, reloaded
        await asyncio.sleep(0.05)


async def test_sigterm_under_load_loses_no_usage_row(
    supervised: tuple[Fleet, str], http: aiohttp.ClientSession
) -> None:
    fleet, url = supervised
    secret, _ = KeyStore(open_db(fleet.store)).create("load")
    answered: list[str] = []
    limit = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with limit:
            try:
                async with http.post(
                    url + "/v1/chat/completions",
                    json=chat_body(f"request {i}", max_tokens=16),
                    headers={"Authorization": f"Bearer {secret}"},
                ) as resp:
                    await resp.read()
                    answered.append(resp.headers["X-Faregate-Request-Id"])
            except (aiohttp.ClientError, TimeoutError):
                return
            if len(answered) == 40:
                fleet.members[0].proc.send_signal(signal.SIGTERM)

    await asyncio.gather(*(one(i) for i in range(150)))
    code = await asyncio.to_thread(fleet.members[0].proc.wait, 60)
    assert code == 0, fleet.members[0].output
    with sqlite3.connect(fleet.store) as db:
        logged = {r[0] for r in db.execute("select id from usage")}
    assert len(answered) >= 40
    assert set(answered) <= logged


async def test_workers_stop_when_the_supervisor_is_killed(
    supervised: tuple[Fleet, str], http: aiohttp.ClientSession
) -> None:
    fleet, url = supervised
    secret, _ = KeyStore(open_db(fleet.store)).create("orphans")
    answered = []
    for i in range(12):
        status, headers, _ = await post(http, url, secret, chat_body(f"request {i}", max_tokens=8))
        assert status == 200
        answered.append(headers["X-Faregate-Request-Id"])
    pids = [w["pid"] for w in (await roster(http, url))["workers"]]
    sup = fleet.members[0].proc
    sup.kill()  # SIGKILL: nothing is forwarded to the workers
    sup.wait(10)
    await wait_gone(pids)
    with sqlite3.connect(fleet.store) as db:
        logged = {r[0] for r in db.execute("select id from usage")}
    assert set(answered) <= logged  # each stopped gracefully: its usage log written


async def test_workers_still_starting_when_the_supervisor_dies_stop_too(
    tmp_path: Path, redis_url: str
) -> None:
    # A worker that read its parent only once it served would take init for its supervisor, and stay.
    store = tmp_path / "store.db"
    KeyStore(open_db(store))
    fleet = Fleet(tmp_path, str(store), redis_url, extra_args=("--workers", str(WORKERS)))
    sup = fleet.add("sup").proc
    deadline = time.monotonic() + 60
    while len(pids := children(sup.pid)) < WORKERS:
        assert sup.poll() is None and time.monotonic() < deadline, fleet.members[0].output
        await asyncio.sleep(0.01)
    sup.kill()
    sup.wait(10)
    await wait_gone(pids)


def test_more_than_one_worker_with_in_process_state_and_limited_keys_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    KeyStore(open_db(store)).create("capped", rpm=10)
    env = clean_env(FAREGATE_AUTH="keys", PYTHONPATH=str(Path(faregate.__file__).resolve().parents[1]))
    argv = [sys.executable, "-m", "faregate.cli", "serve", "--demo", "--port", "0", "--store", str(store)]
    proc = subprocess.run([*argv, "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "in-process state" in proc.stderr and "state: redis://" in proc.stderr, proc.stderr


async def test_the_supervisor_removes_its_roster_folder_and_those_dead_supervisors_left(
    tmp_path: Path,
) -> None:
    """At exit the supervisor's roster folder goes; one a supervisor killed outright left goes at the next
    start (its owner's pid is dead), a live supervisor's stays. TMPDIR keeps this test's folders apart."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    exited = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await exited.wait()  # a pid no process has now
    left = tmp / f"faregate-workers-{exited.pid}-x1y2"
    left.mkdir()
    (left / "workers.json").write_text('{"workers": []}')
    live = tmp / f"faregate-workers-{os.getpid()}-z3w4"  # this test's pid: alive
    live.mkdir()
    args = ["--demo", "--no-store", "--port", "0", "--workers", str(WORKERS)]
    gw = GatewayProcess(tmp_path, clean_env(TMPDIR=str(tmp)), args)
    await gw.ready(60)
    assert not left.exists() and live.exists()
    [own] = [f for f in tmp.glob("faregate-workers-*") if f != live]
    assert own.name.startswith(f"faregate-workers-{gw.proc.pid}-") and (own / "workers.json").exists()
    gw.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(gw.proc.wait, 60) == 0, gw.output
    assert not own.exists() and live.exists()
