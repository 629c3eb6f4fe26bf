"""Soak faregate: N requests (default 100,000) through `faregate serve` with the fast upstream of
`scripts/bench_gateway.py` (`scripts/_bench_upstream.py`: a raw asyncio responder), and a table of the
gateway's RSS and the latency percentiles of every 10,000 requests.

    python scripts/soak.py [-n 100000] [--every 10000] [--conns 16] [--stream-every 10] [--accounting default|off|keys]

faregate runs as shipped (the usage log on a store in a temporary directory, Prometheus, auth open; or
`--accounting keys`: every request with a key that has a budget and limits), pinned to core 0 with the
upstream and the load on core 1 when there are two cores. Every `--stream-every`-th request streams. Each
row: requests so far, the window's req/s, latency p50/p90/p99/max in ms (one request's whole answer),
errors (any status but 200, or a broken connection), the gateway's VmRSS and VmHWM (peak) in MB, and its
usage rows committed so far. Figures, never assertions; every child process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import (
    REPO,
    REQUEST_TIMEOUT_S,
    Conn,
    Plan,
    Processes,
    chat_body,
    faregate_command,
    faregate_routes,
    free_port,
    http_request,
    new_loop,
    note,
    percentile,
    pinned,
    rss_mib,
    start_upstream,
    wait_healthz,
    wait_ready,
)


@dataclass
class Window:
    started: float = field(default_factory=time.perf_counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Row:
    requests: int
    rps: float
    p50: float
    p90: float
    p99: float
    worst: float
    errors: int
    rss_mb: float
    peak_mb: float
    rows: int | None


def usage_rows(store: Path) -> int | None:
    if not store.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("select count(*) from usage").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None


async def soak(
    host: str,
    port: int,
    bodies: tuple[bytes, bytes],
    *,
    total: int,
    every: int,
    conns: int,
    stream_every: int,
    pid: int,
    store: Path,
    rows_out: list[Row],
) -> None:
    plain, stream = bodies
    issued = done = 0
    window = Window()

    def close_window() -> None:
        nonlocal window
        secs = time.perf_counter() - window.started
        lat = window.latencies_ms
        row = Row(
            done,
            len(lat) / secs if secs > 0 else 0.0,
            percentile(lat, 50),
            percentile(lat, 90),
            percentile(lat, 99),
            max(lat) if lat else float("nan"),
            window.errors,
            rss_mib(pid) or 0.0,
            rss_mib(pid, "VmHWM") or 0.0,
            usage_rows(store),
        )
        rows_out.append(row)
        note(
            f"{row.requests:>9,} requests  {row.rps:8,.0f} req/s  p50 {row.p50:6.2f}  p99 {row.p99:6.2f} ms"
            f"  RSS {row.rss_mb:5.1f} MB  errors {row.errors}"
        )
        window = Window()

    async def worker() -> None:
        nonlocal issued, done
        conn = await Conn.open(host, port)
        try:
            while issued < total:
                i = issued
                issued += 1
                request = stream if stream_every and i % stream_every == stream_every - 1 else plain
                t = time.perf_counter()
                try:
                    status, _, keep = await asyncio.wait_for(conn.fetch(request), REQUEST_TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    status, keep = 0, False
                window.latencies_ms.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    window.errors += 1
                done += 1
                if done % every == 0 or done == total:
                    close_window()
                if not keep:
                    conn.close()
                    conn = await Conn.open(host, port)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(conns)))


def print_table(rows: Sequence[Row], idle: tuple[float, float], header: str) -> None:
    print(f"\n## {header}\n")
    print("| requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | RSS MB | peak MB | usage rows |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| 0 (idle) | | | | | | | {idle[0]:.1f} | {idle[1]:.1f} | |")
    for r in rows:
        committed = "" if r.rows is None else f"{r.rows:,}"
        print(
            f"| {r.requests:,} | {r.rps:,.0f} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} | {r.worst:.1f} |"
            f" {r.errors} | {r.rss_mb:.1f} | {r.peak_mb:.1f} | {committed} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--requests", type=int, default=100_000)
    p.add_argument("--every", type=int, default=10_000, help="one table row per this many requests")
    p.add_argument("--conns", type=int, default=16, help="concurrent keep-alive connections")
    p.add_argument("--stream-every", type=int, default=10, help="every k-th request streams (0: none)")
    p.add_argument("--accounting", choices=("default", "off", "keys"), default="default")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    core0, core1 = (0, 1) if cores >= 2 and shutil.which("taskset") else (None, None)
    if core1 is not None:
        os.sched_setaffinity(0, {core1})
    plan = Plan(rounds=1, warmup_s=0, window_s=0, budget_s=0, quiet_budget_s=0, accounting=args.accounting)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREGATE_")}
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(REPO / "src"), env.get("PYTHONPATH")) if x)
    procs = Processes()
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faregate-soak-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            _, _, base_urls, keys = start_upstream("fast", procs, tmp, core1, env)
            port = free_port()
            fg_env = {**env, **keys}
            serve, fg_auth = faregate_command(plan, faregate_routes(tmp, base_urls), port, tmp, env, fg_env)
            log = tmp / "faregate.log"
            spawned = time.perf_counter()
            proc = procs.start(
                "faregate",
                pinned(core0, serve),
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env=fg_env,
                cwd=tmp,
            )
            origin = f"http://127.0.0.1:{port}"
            start_s = wait_healthz(f"{origin}/healthz", spawned, proc, log, 60)
            headers: dict[str, Any] = dict(fg_auth or {})
            plain_json, stream_json = (
                chat_body(faregate=True, stream=False),
                chat_body(faregate=True, stream=True),
            )
            wait_ready(f"{origin}/v1/chat/completions", plain_json.encode(), headers, 60, proc, log)
            idle = (rss_mib(proc.pid) or 0.0, rss_mib(proc.pid, "VmHWM") or 0.0)
            path = "/v1/chat/completions"
            bodies = (
                http_request("127.0.0.1", port, path, plain_json.encode(), headers),
                http_request("127.0.0.1", port, path, stream_json.encode(), headers),
            )
            store = tmp / "faregate.db"
            note(
                f"faregate up in {start_s:.2f} s (idle RSS {idle[0]:.1f} MB); {args.requests:,} requests ..."
            )
            loop = new_loop()
            try:
                loop.run_until_complete(
                    soak(
                        "127.0.0.1",
                        port,
                        bodies,
                        total=args.requests,
                        every=args.every,
                        conns=args.conns,
                        stream_every=args.stream_every,
                        pid=proc.pid,
                        store=store,
                        rows_out=rows,
                    )
                )
            finally:
                loop.close()
            header = (
                f"soak: {args.requests:,} requests, {args.conns} connections, every {args.stream_every}th streamed,"
                f" accounting {args.accounting}; faregate start-up {start_s:.2f} s"
            )
            print_table(rows, idle, header)
        except RuntimeError as e:
            note(f"soak: {e}")
            return 1
        finally:
            procs.stop_all()
    note(f"elapsed {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
