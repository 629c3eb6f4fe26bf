"""The CPU an upstream call costs the gateway: faregate's own client (`faregate.upstream`) against aiohttp's
ClientSession set up as faregate's was, in one run, against `scripts/_bench_upstream.py`.

    python scripts/bench_client.py [--requests N] [--concurrency C] [--rounds R]

The upstream runs in its own process (pinned to the other core when there are two), so the figure is the
client's work only: this process's CPU time (`time.process_time`) over N chat completions (a JSON body
read to its end) and N SSE streams (read piece by piece to their end), divided by N. Rounds alternate the
two clients so that noise on a shared machine hits both alike; the medians are printed with the ratio.
Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from faregate.upstream.client import UpstreamClient  # noqa: E402

BODY: Final = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}).encode()
STREAM_BODY: Final = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
).encode()
HEADERS: Final = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}

Call = Callable[[bytes], Awaitable[int]]


def aiohttp_call(session: aiohttp.ClientSession, url: str) -> Call:
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=60)

    async def call(body: bytes) -> int:
        async with session.request("POST", url, headers=HEADERS, data=body, timeout=timeout) as resp:
            n = 0
            while chunk := await resp.content.readany():
                n += len(chunk)
            return n

    return call


def own_call(client: UpstreamClient, url: str) -> Call:
    async def call(body: bytes) -> int:
        async with await client.request(
            "POST", url, HEADERS, body, connect_timeout_s=5, read_timeout_s=60
        ) as resp:
            n = 0
            while chunk := await resp.readany():
                n += len(chunk)
            return n

    return call


async def cpu_per_call_us(call: Call, body: bytes, requests: int, concurrency: int) -> float:
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            assert await call(body) > 0

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm up: connections, caches
    queue = iter(range(requests))
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / requests * 1e6


async def run(url: str, requests: int, concurrency: int, rounds: int) -> None:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True, trust_env=False
    ) as session:
        own = UpstreamClient()
        try:
            calls = {
                "aiohttp ClientSession": aiohttp_call(session, url),
                "faregate.upstream": own_call(own, url),
            }
            figures: dict[tuple[str, str], list[float]] = {}
            for r in range(rounds):
                order = list(calls.items()) if r % 2 == 0 else list(calls.items())[::-1]
                for name, call in order:
                    for kind, body in (("request", BODY), ("stream", STREAM_BODY)):
                        us = await cpu_per_call_us(call, body, requests, concurrency)
                        figures.setdefault((name, kind), []).append(us)
        finally:
            await own.close()
    print(f"\n{requests} calls per round, {concurrency} at a time, {rounds} rounds (medians)\n")
    print("| client | CPU µs/request | CPU µs/stream |\n|---|---:|---:|")
    med = {key: statistics.median(v) for key, v in figures.items()}
    for name in calls:
        print(f"| {name} | {med[(name, 'request')]:.1f} | {med[(name, 'stream')]:.1f} |")
    a, o = "aiohttp ClientSession", "faregate.upstream"
    print(
        f"\nfaregate.upstream / aiohttp: {med[(o, 'request')] / med[(a, 'request')]:.2f}x per request, "
        f"{med[(o, 'stream')] / med[(a, 'stream')]:.2f}x per stream"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    pin = ["taskset", "-c", str(cores[-1])] if len(cores) > 1 else []
    upstream = subprocess.Popen(
        [*pin, sys.executable, str(REPO / "scripts" / "_bench_upstream.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert upstream.stdout is not None
        url = json.loads(upstream.stdout.readline())["origin"] + "/v1/chat/completions"
        if len(cores) > 1:
            os.sched_setaffinity(0, {cores[0]})
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(url, args.requests, args.concurrency, args.rounds))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(run(url, args.requests, args.concurrency, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait(5)


if __name__ == "__main__":
    main()
