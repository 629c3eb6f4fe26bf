"""Benchmark faregate against the least a gateway of its design can cost: a bare aiohttp proxy (the floor).

    python scripts/bench_gateway.py [--mode fast|simulator|both] [--quick] [--rounds N] [--json FILE]
                                    [--profile FILE] [--accounting default|off|keys]
                                    [--workers N] [--state memory|redis] [--redis URL]

Two modes, each its own table (`--mode both`, the default, runs them one after the other):
  * fast (the figures that count): the upstream is `scripts/_bench_upstream.py`, a raw asyncio Protocol
    on uvloop that answers chat completions and SSE streams (with usage) from constant bytes. It serves
    far more requests per core than either gateway, so what is measured is the gateways, not it.
  * simulator: the upstream is faregate's Python provider simulator (`scripts/_bench_sim.py`), as
    `faregate serve --demo` uses it. It serves a few thousand requests/s, so both gateways hit its ceiling:
    these figures show the simulator, not the gateways, and are labelled so.
In each mode, as separate processes on 127.0.0.1:
  * the upstream (above), answered directly too: the base every added latency is measured from;
  * the floor: a bare aiohttp reverse proxy on uvloop defined in this file (`--role floor`), forwarding
    POST /v1/chat/completions to the upstream with one pooled ClientSession, streaming the answer back;
  * faregate (`python -m faregate.cli serve`) on a copy of the shipped routes.yaml (and catalog) whose
    providers point at the upstream; usage log, Prometheus and auth as shipped (`--accounting`);
  * the load generator (`--role loadgen`): a small keep-alive HTTP/1.1 client on raw asyncio streams.
The gateway under test is pinned to core 0; the upstream, the load generator and this script to core 1
(`taskset`, `os.sched_setaffinity`). Rounds rotate the order of the three paths so noise hits all alike:
  * closed loop at 32 connections: requests/s, and the gateway's CPU per request (utime+stime of its
    process from /proc over the window, divided by the requests answered) - the robust figure on a
    shared machine, since it counts only the gateway's own work;
  * closed loop at 1 connection: latency p50/p99; "added" (delta) = the path's minus the upstream's;
  * 16 concurrent streams (`stream: true`, closed loop): time to the first `data:` event, delta to the
    upstream's, and CPU per stream; then one stream at a time, the same delta without queueing (at 16
    streams on one busy core a first event mostly waits for the other streams' work, so that delta is
    about 15 x the CPU per stream above the floor's: the table says both);
  * start-up: from spawning the process to the first answered GET /healthz; idle RSS (VmRSS once started
    and warmed up, before any load) and peak RSS (VmHWM at the end).
Every ratio is faregate's figure over the floor's from the same run, next to the goals of issue 16.
Scale-out (issue 14): `--workers N` runs `serve --workers N` (then faregate is not pinned: its workers
share both cores with everything else, and its CPU is the supervisor's and every worker's); `--state
redis` puts the shared state in Redis (`--redis URL`, a fresh key prefix per run), which costs only for
keys with limits: compare `--accounting keys` with and without it.
Never asserts. `--json FILE` writes every figure; `--profile FILE` then samples faregate under load
with py-spy (`pip install py-spy`) and prints its hot spots. Bounded in time: `--quick` is about a
minute, the full run a few minutes; every child process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

REPO: Final = Path(__file__).resolve().parent.parent
SIM_SCRIPT: Final = REPO / "scripts" / "_bench_sim.py"
FAST_SCRIPT: Final = REPO / "scripts" / "_bench_upstream.py"
TARGETS: Final = ("upstream", "floor", "faregate")
GATEWAYS: Final = ("floor", "faregate")
MODES: Final = ("fast", "simulator")
LOAD_CONNS: Final = 32
STREAMS: Final = 16
GOALS: Final = {  # faregate against the floor, issue 16
    "throughput": 0.70,  # req/s at 32 connections, at least
    "cpu": 1.4,  # CPU per request, at most
    "added_p50": 1.2,  # at 1 connection, at most
    "added_p99": 1.5,
    "ttfe_ms": 0.5,  # delta TTFE p50 at 16 streams, at most this much above the floor's
    "cpu_stream": 1.5,  # CPU per stream, at most
    "idle_rss_mib": 100.0,  # absolute
    "start_s": 1.0,  # absolute
}
REQUEST_TIMEOUT_S: Final = 10.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PROVIDER: Final = "openai"  # the floor forwards to this provider's endpoint; faregate's pinned model too
UPSTREAM_MODEL: Final = "gpt-4o-mini"
MODEL: Final = "openai/gpt-4o-mini"
MESSAGES: Final = [{"role": "user", "content": "Say hello in five words."}]
FAST_KEY: Final = "bench-key"


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    warmup_s: float  # before each window
    window_s: float  # each measured window
    budget_s: float  # per mode: no new round starts after this
    quiet_budget_s: float  # per mode: at most this long in all, waiting for other processes to calm down
    accounting: str = "default"  # faregate's set-up: default (usage log, auth open), off (no store), keys
    workers: str = "1"  # serve --workers
    state: str = "memory"  # memory | redis (FAREGATE_STATE)
    redis: str = "redis://127.0.0.1:6379/0"


FULL: Final = Plan(rounds=3, warmup_s=0.5, window_s=3.0, budget_s=150, quiet_budget_s=20)
QUICK: Final = Plan(rounds=1, warmup_s=0.3, window_s=1.5, budget_s=40, quiet_budget_s=4)
TINY: Final = Plan(rounds=1, warmup_s=0.05, window_s=0.2, budget_s=10, quiet_budget_s=0)  # the smoke test


# ------------------------------------------------------------------------------------------------------
# The floor: a bare aiohttp reverse proxy on uvloop (one fixed upstream, one pooled ClientSession)

SESSION: Final = web.AppKey("session", aiohttp.ClientSession)
FORWARDED: Final = ("Content-Type", "Authorization")
RETURNED: Final = ("Content-Type", "Cache-Control")


def floor_app(upstream: str) -> web.Application:
    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as s:
            app[SESSION] = s
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k in FORWARDED if (v := request.headers.get(k)) is not None}
        try:
            async with request.app[SESSION].post(upstream, data=body, headers=headers) as up:
                response = web.StreamResponse(
                    status=up.status, headers={k: v for k in RETURNED if (v := up.headers.get(k)) is not None}
                )
                if up.content_length is not None:
                    response.content_length = up.content_length
                await response.prepare(request)
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as e:
            return web.json_response({"error": {"message": f"upstream: {e}"}}, status=502)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/chat/completions", forward)
    app.router.add_get("/healthz", healthz)
    return app


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (as `faregate serve` runs), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_floor(upstream: str, port: int) -> int:
    web.run_app(
        floor_app(upstream), host="127.0.0.1", port=port, access_log=None, print=None, loop=new_loop()
    )
    return 0


# ------------------------------------------------------------------------------------------------------
# The load generator: a keep-alive HTTP/1.1 client on asyncio streams, driven by JSON lines on stdin


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    request: bytes  # a whole HTTP/1.1 request, sent as is
    stream_request: bytes
    pid: int  # the process serving this path (CPU time is read from it)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Target:
        url = urlsplit(d["url"])
        host, port = url.hostname or "127.0.0.1", url.port or 80
        headers = {str(k): str(v) for k, v in d["headers"].items()}
        return cls(
            host,
            port,
            http_request(host, port, url.path, d["body"].encode(), headers),
            http_request(host, port, url.path, d["stream_body"].encode(), headers),
            int(d["pid"]),
        )


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def fetch(self, request: bytes, first_event: bool = False) -> tuple[int, float | None, bool]:
        """Send one request and read its whole answer: (status, perf_counter at the first `data:`, keep-alive)."""
        reader = self.reader
        self.writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        keep = b"\r\nconnection: close" not in lower
        first: float | None = None
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            body = await reader.readexactly(int(head[at + 17 : lower.index(b"\r\n", at + 2)]))
            if first_event and b"data:" in body:
                first = time.perf_counter()
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                chunk = await reader.readexactly(size + 2)
                if first_event and first is None and b"data:" in chunk:
                    first = time.perf_counter()
        else:
            body = await reader.read()
            keep = False
            if first_event and b"data:" in body:
                first = time.perf_counter()
        return status, first, keep


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads, live and ended) and of its live child processes (the
    workers of `serve --workers N`), in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    total = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after `comm`
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    except OSError:
        children = []
    for child in children:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += cpu_ticks(int(child))
    return total


def rss_mib(pid: int, field_name: str = "VmRSS") -> float | None:
    """VmRSS (now) or VmHWM (peak) of a process, from /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def core_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of each CPU, from /proc/stat."""
    out: dict[str, tuple[int, int]] = {}
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                nums = [int(v) for v in values[:8]]
                idle = nums[3] + nums[4]
                out[name] = (sum(nums) - idle, sum(nums))
    return out


def busy_share(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    shares = {}
    for name, (busy, total) in after.items():
        b0, t0 = before.get(name, (0, 0))
        shares[name] = (busy - b0) / (total - t0) if total > t0 else 0.0
    return shares


FETCH_ERRORS: Final = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    TimeoutError,
    ValueError,
)


@dataclass(slots=True)
class Tally:
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ttfe_ms: list[float] = field(default_factory=list)


async def closed_loop(
    target: Target, conns: int, warmup_s: float, duration_s: float, *, stream: bool, record: bool
) -> dict[str, Any]:
    """`conns` connections, each sending the next request as soon as the previous answer is read.
    With `record`, each answer's latency (send to last byte) and, streaming, its time to first event."""
    tally, stopping, recording = Tally(), asyncio.Event(), [False]
    request = target.stream_request if stream else target.request

    async def worker() -> None:
        conn: Conn | None = None
        while not stopping.is_set():
            try:
                if conn is None:
                    conn = await Conn.open(target.host, target.port)
                sent = time.perf_counter()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, first, keep = await conn.fetch(request, first_event=stream)
                done = time.perf_counter()
                if status == 200 and (first is not None or not stream):
                    tally.ok += 1
                    if record and recording[0]:
                        tally.latencies_ms.append(round((done - sent) * 1000, 4))
                        if first is not None:
                            tally.ttfe_ms.append(round((first - sent) * 1000, 4))
                else:
                    tally.errors += 1
                if not keep:
                    conn.close()
                    conn = None
            except FETCH_ERRORS:
                tally.errors += 1
                if conn is not None:
                    conn.close()
                    conn = None
                await asyncio.sleep(0.01)
        if conn is not None:
            conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(conns)]
    await asyncio.sleep(warmup_s)
    ok0, err0, t0, cpu0 = tally.ok, tally.errors, time.perf_counter(), cpu_ticks(target.pid)
    cores0, own0 = core_times(), time.process_time()
    recording[0] = True
    await asyncio.sleep(duration_s)
    recording[0] = False
    ok1, err1, t1, cpu1 = tally.ok, tally.errors, time.perf_counter(), cpu_ticks(target.pid)
    cores1, own1 = core_times(), time.process_time()
    stopping.set()
    await asyncio.gather(*tasks)
    seconds, cpu_s = t1 - t0, (cpu1 - cpu0) / CLK_TCK
    busy = sum(cores1[c][0] - cores0[c][0] for c in cores1 if c in cores0) / CLK_TCK
    return {
        "requests": ok1 - ok0,
        "errors": err1 - err0,
        "seconds": seconds,
        "rps": (ok1 - ok0) / seconds,
        "cpu_s": cpu_s,
        "busy": busy_share(cores0, cores1),
        # CPU that went to neither the serving process nor this load generator, in cores: noise (the
        # upstream's share is in it for the gateways, a constant across them)
        "other_cores": max(0.0, busy - cpu_s - (own1 - own0)) / seconds,
        "latencies_ms": tally.latencies_ms,
        "ttfe_ms": tally.ttfe_ms,
    }


async def load_command(cmd: dict[str, Any]) -> dict[str, Any]:
    return await closed_loop(
        Target.from_json(cmd["target"]),
        int(cmd["conns"]),
        float(cmd["warmup_s"]),
        float(cmd["duration_s"]),
        stream=bool(cmd["stream"]),
        record=bool(cmd["record"]),
    )


def run_loadgen() -> int:
    loop = new_loop()
    try:
        for line in sys.stdin:
            try:
                result = loop.run_until_complete(load_command(json.loads(line)))
            except Exception as e:  # report, keep serving commands
                result = {"failed": f"{type(e).__name__}: {e}"}
            print(json.dumps(result), flush=True)
    finally:
        loop.close()
    return 0


# ------------------------------------------------------------------------------------------------------
# Orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(core: int | None, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if core is not None else list(argv)


def read_line(stream: Any, timeout_s: float, what: str) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    if not ready:
        raise RuntimeError(f"{what}: no answer within {timeout_s:.0f} s")
    line: bytes = stream.readline()
    if not line:
        raise RuntimeError(f"{what}: process ended")
    return line.decode()


@dataclass
class Processes:
    """Every child this run started, stopped (by pid) at the end."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, **kw)
        self.children.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def wait_healthz(
    url: str, spawned: float, proc: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> float:
    """Seconds from `spawned` (a perf_counter) to the first 200 on GET `url`, polled every 5 ms."""
    split = urlsplit(url)
    request = f"GET {split.path} HTTP/1.1\r\nHost: {split.netloc}\r\nConnection: close\r\n\r\n".encode()
    deadline = spawned + timeout_s
    while time.perf_counter() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((split.hostname, split.port), timeout=2) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - spawned
        except OSError:
            pass
        time.sleep(0.005)
    why = f"exited with {proc.returncode}" if proc.poll() is not None else f"no 200 within {timeout_s:.0f} s"
    raise RuntimeError(f"{url}: {why}\n{tail(log)}")


def wait_ready(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, proc: subprocess.Popen[bytes], log: Path
) -> dict[str, str]:
    """Until `url` answers the request with 200 (returns its headers); fails at once (with the log's
    end) if `proc` exits."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline and proc.poll() is None:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return dict(response.headers.items())
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:300]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    why = (
        f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout_s:.0f} s"
    )
    raise RuntimeError(f"{url}: {why}: {last}\n{tail(log)}")


def faregate_routes(tmp: Path, base_urls: dict[str, str]) -> Path:
    """The shipped routes.yaml with the upstream's providers' base_url pointed at it."""
    from ruamel.yaml import YAML

    from faregate.paths import default_routes

    yaml = YAML()
    doc = yaml.load(default_routes().read_text())
    for name, provider in doc["providers"].items():
        if name in base_urls:
            provider["base_url"] = base_urls[name]
    path = tmp / "routes.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def chat_body(*, faregate: bool, stream: bool, only: bool = False) -> str:
    body: dict[str, Any] = {
        "model": MODEL if faregate else UPSTREAM_MODEL,
        "messages": MESSAGES,
        "max_tokens": 16,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    if faregate and only:
        body["provider"] = {"only": [PROVIDER]}
    return json.dumps(body, separators=(",", ":"))


class LoadGen:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def run(self, cmd: dict[str, Any], expect_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(read_line(self.proc.stdout, expect_s + 60, "load generator"))
        if "failed" in result:
            raise RuntimeError(f"load generator: {result['failed']}")
        return result


class Quiet:
    """Before each measurement, wait (within a budget for the whole mode) until the machine is idle:
    other processes' load is noise that would hit one path and not the others."""

    IDLE_SHARE: Final = 0.08  # both cores together, between measurements (our processes are idle then)

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.waited_s = budget_s, 0.0

    def wait(self) -> None:
        while self.waited_s < self.budget_s:
            before = core_times()
            time.sleep(0.2)
            shares = busy_share(before, core_times())
            if statistics.fmean(shares.values()) <= self.IDLE_SHARE:
                return
            time.sleep(0.3)
            self.waited_s += 0.5


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class PathFigures:
    rps: list[float] = field(default_factory=list)  # closed loop at LOAD_CONNS, one per round
    cpu_s: float = 0.0  # over those windows
    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # closed loop at 1 connection
    ttfe_ms: list[float] = field(default_factory=list)  # STREAMS concurrent streams
    ttfe1_ms: list[float] = field(default_factory=list)  # one stream at a time (no queueing)
    stream_cpu_s: float = 0.0
    streams: int = 0
    errors: int = 0
    start_s: float | None = None
    idle_rss_mib: float | None = None
    peak_rss_mib: float | None = None
    other_cores: list[float] = field(default_factory=list)  # CPU outside this path, per measurement


def note(text: str, out: TextIO = sys.stderr) -> None:
    print(text, file=out, flush=True)


def rotate(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


@dataclass
class Setup:
    """What one mode runs: its processes and the three paths' request targets."""

    targets: dict[str, dict[str, Any]]
    procs: dict[str, subprocess.Popen[bytes]]
    figures: dict[str, PathFigures]
    load: LoadGen
    upstream_label: str


def start_upstream(
    mode: str, procs: Processes, tmp: Path, core1: int | None, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str, dict[str, str], dict[str, str]]:
    """The mode's upstream: (process, its chat URL, base_urls for faregate, provider keys for faregate)."""
    py = sys.executable
    if mode == "fast":
        proc = procs.start(
            "upstream",
            pinned(core1, [py, str(FAST_SCRIPT)]),
            stdout=subprocess.PIPE,
            stderr=(tmp / "upstream.log").open("wb"),
            env=env,
        )
        origin = json.loads(read_line(proc.stdout, 30, "fast upstream"))["origin"]
        return proc, f"{origin}/v1/chat/completions", {PROVIDER: f"{origin}/v1"}, {"OPENAI_API_KEY": FAST_KEY}
    proc = procs.start(
        "upstream",
        pinned(core1, [py, str(SIM_SCRIPT)]),
        stdout=subprocess.PIPE,
        stderr=(tmp / "upstream.log").open("wb"),
        env=env,
    )
    info = json.loads(read_line(proc.stdout, 60, "simulator"))
    base_urls: dict[str, str] = info["base_urls"]
    return proc, f"{base_urls[PROVIDER]}/chat/completions", base_urls, info["env"]


def faregate_command(
    plan: Plan, routes: Path, port: int, tmp: Path, env: dict[str, str], fg_env: dict[str, str]
) -> tuple[list[str], dict[str, str] | None]:
    """`faregate serve` for the plan's accounting set-up, and the Authorization header (keys: a key's)."""
    py = sys.executable
    serve = [py, "-m", "faregate.cli", "serve", "--config", str(routes), "--port", str(port)]
    if plan.workers != "1":
        serve += ["--workers", plan.workers]
    if plan.state == "redis":
        fg_env["FAREGATE_STATE"] = f"{plan.redis}?prefix=bench-{os.getpid()}-{port}:"
    if plan.accounting == "off":
        return [*serve, "--no-store"], None
    if plan.accounting != "keys":
        return serve, None
    store = tmp / "faregate.db"  # every request authenticated by a key with limits, usage logged
    made = subprocess.run(
        [
            *(py, "-m", "faregate.cli", "keys", "create", "--label", "bench", "--budget", "1000000"),
            *("--rpm", "100000000", "--tpm", "100000000000", "--store", str(store)),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    fg_env["FAREGATE_AUTH"] = "keys"
    return [*serve, "--store", str(store)], {
        "Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"
    }


def compile_bytecode() -> None:
    """This checkout's bytecode, as an installed faregate has it (pip compiles a wheel's modules when it
    installs them). Without it a machine that sets PYTHONDONTWRITEBYTECODE (as this one does) compiles
    every module from source at every start, a few tenths of a second that no deployment pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], check=True)


def set_up(mode: str, plan: Plan, procs: Processes, tmp: Path, core0: int | None, core1: int | None) -> Setup:
    py = sys.executable
    compile_bytecode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREGATE_")}
    env["FAREGATE_CACHE_DIR"] = str(tmp / "catalog-cache")  # this run's own: never the user's ~/.cache
    # this checkout's faregate, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    up, upstream, base_urls, keys = start_upstream(mode, procs, tmp, core1, env)
    auth = {"Authorization": f"Bearer {keys.get('OPENAI_API_KEY', FAST_KEY)}"}
    figures = {name: PathFigures() for name in TARGETS}
    urls = {"upstream": upstream}
    logs = {"upstream": tmp / "upstream.log"}
    running = {"upstream": up}

    floor_port = free_port()
    logs["floor"] = tmp / "floor.log"
    spawned = time.perf_counter()
    running["floor"] = procs.start(
        "floor",
        pinned(core0, [py, __file__, "--role", "floor", "--upstream", upstream, "--port", str(floor_port)]),
        stdout=logs["floor"].open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    origin = f"http://127.0.0.1:{floor_port}"
    figures["floor"].start_s = wait_healthz(f"{origin}/healthz", spawned, running["floor"], logs["floor"], 60)
    urls["floor"] = f"{origin}/v1/chat/completions"

    fg_port = free_port()
    fg_env = {**env, **keys}
    serve, fg_auth = faregate_command(plan, faregate_routes(tmp, base_urls), fg_port, tmp, env, fg_env)
    logs["faregate"] = tmp / "faregate.log"
    spawned = time.perf_counter()
    running["faregate"] = procs.start(
        "faregate",
        pinned(core0 if plan.workers == "1" else None, serve),
        stdout=logs["faregate"].open("wb"),
        stderr=subprocess.STDOUT,
        env=fg_env,
        cwd=tmp,
    )
    origin = f"http://127.0.0.1:{fg_port}"
    figures["faregate"].start_s = wait_healthz(
        f"{origin}/healthz", spawned, running["faregate"], logs["faregate"], 60
    )
    urls["faregate"] = f"{origin}/v1/chat/completions"

    targets: dict[str, dict[str, Any]] = {}
    only = False  # faregate picks the pinned model's offerings cheapest first: openai's, as the floor
    for name in TARGETS:
        is_fg = name == "faregate"
        body = chat_body(faregate=is_fg, stream=False)
        headers = (fg_auth or auth) if is_fg else auth
        answered = wait_ready(urls[name], body.encode(), headers, 60, running[name], logs[name])
        if is_fg and answered.get("X-Faregate-Provider", PROVIDER) != PROVIDER:
            only = True  # the catalog changed: pin the provider too (OpenRouter's `provider.only`)
            body = chat_body(faregate=True, stream=False, only=True)
            wait_ready(urls[name], body.encode(), headers, 60, running[name], logs[name])
        targets[name] = {
            "url": urls[name],
            "headers": headers,
            "body": body,
            "stream_body": chat_body(faregate=is_fg, stream=True, only=only),
            "pid": running[name].pid,
        }
    load = LoadGen(
        procs.start(
            "loadgen",
            pinned(core1, [py, __file__, "--role", "loadgen"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp / "loadgen.log").open("wb"),
            env=env,
        )
    )
    label = (
        "fast upstream (raw asyncio Protocol)" if mode == "fast" else "provider simulator (Python, aiohttp)"
    )
    return Setup(targets, running, figures, load, label)


def measure(mode: str, plan: Plan, setup: Setup) -> dict[str, Any]:
    """Rounds of the three measurements over the three paths, in a rotating order; the report."""
    started = time.monotonic()
    figures, targets, load = setup.figures, setup.targets, setup.load
    quiet = Quiet(plan.quiet_budget_s)
    time.sleep(min(2.0, plan.window_s))  # let start-up work done after the port opened settle
    for name in TARGETS:
        figures[name].idle_rss_mib = rss_mib(setup.procs[name].pid)

    def run(name: str, conns: int, *, stream: bool, record: bool) -> dict[str, Any]:
        quiet.wait()
        cmd = {
            "target": targets[name],
            "conns": conns,
            "warmup_s": plan.warmup_s,
            "duration_s": plan.window_s,
            "stream": stream,
            "record": record,
        }
        result = load.run(cmd, plan.warmup_s + plan.window_s)
        figures[name].other_cores.append(result["other_cores"])
        figures[name].errors += result["errors"]
        return result

    rounds_done = 0
    for r in range(plan.rounds):
        if r and time.monotonic() - started > plan.budget_s:
            note(f"[{mode}] time budget reached: stopping after {r} rounds")
            break
        order = rotate(TARGETS, r)
        for name in order:
            res = run(name, LOAD_CONNS, stream=False, record=False)
            f = figures[name]
            f.rps.append(res["rps"])
            f.cpu_s += res["cpu_s"]
            f.requests += res["requests"]
            us = res["cpu_s"] * 1e6 / res["requests"] if res["requests"] else float("nan")
            note(
                f"[{mode}] round {r + 1} @{LOAD_CONNS:<3} {name:<9} {res['rps']:8.0f} req/s  {us:6.0f} us/req"
            )
        for name in order:
            res = run(name, 1, stream=False, record=True)
            figures[name].latencies_ms += res["latencies_ms"]
            note(f"[{mode}] round {r + 1} @1   {name:<9} p50 {percentile(res['latencies_ms'], 50):.3f} ms")
        for name in order:
            res = run(name, STREAMS, stream=True, record=True)
            f = figures[name]
            f.ttfe_ms += res["ttfe_ms"]
            f.stream_cpu_s += res["cpu_s"]
            f.streams += res["requests"]
            note(
                f"[{mode}] round {r + 1} {STREAMS} streams {name:<9} TTFE p50 {percentile(res['ttfe_ms'], 50):.3f} ms"
            )
        for name in order:
            res = run(name, 1, stream=True, record=True)
            figures[name].ttfe1_ms += res["ttfe_ms"]
            note(
                f"[{mode}] round {r + 1} 1 stream   {name:<9} TTFE p50 {percentile(res['ttfe_ms'], 50):.3f} ms"
            )
        rounds_done += 1
    for name in TARGETS:
        figures[name].peak_rss_mib = rss_mib(setup.procs[name].pid, "VmHWM")
    report = summarize(figures, rounds_done, plan)
    report |= {"mode": mode, "upstream": setup.upstream_label, "quiet_wait_s": round(quiet.waited_s, 1)}
    report["requests"] = {name: json.loads(targets[name]["body"]) for name in TARGETS}
    report["raw"] = {name: asdict(f) for name, f in figures.items()}
    return report


def summarize(figures: dict[str, PathFigures], rounds: int, plan: Plan) -> dict[str, Any]:
    def med(values: Sequence[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def per(cpu_s: float, n: int) -> float:
        return cpu_s * 1e6 / n if n else float("nan")

    base = figures["upstream"]
    b50, b99 = percentile(base.latencies_ms, 50), percentile(base.latencies_ms, 99)
    bttfe, bttfe1 = percentile(base.ttfe_ms, 50), percentile(base.ttfe1_ms, 50)
    paths: dict[str, dict[str, Any]] = {}
    for name, f in figures.items():
        p50, p99, ttfe = (
            percentile(f.latencies_ms, 50),
            percentile(f.latencies_ms, 99),
            percentile(f.ttfe_ms, 50),
        )
        paths[name] = {
            "rps": med(f.rps),
            "cpu_us_per_request": per(f.cpu_s, f.requests),
            "p50_ms": p50,
            "p99_ms": p99,
            "added_p50_ms": p50 - b50,
            "added_p99_ms": p99 - b99,
            "ttfe_p50_ms": ttfe,
            "added_ttfe_p50_ms": ttfe - bttfe,
            "ttfe1_p50_ms": percentile(f.ttfe1_ms, 50),
            "added_ttfe1_p50_ms": percentile(f.ttfe1_ms, 50) - bttfe1,
            "cpu_us_per_stream": per(f.stream_cpu_s, f.streams),
            "start_s": f.start_s,
            "idle_rss_mib": f.idle_rss_mib,
            "peak_rss_mib": f.peak_rss_mib,
            "errors": f.errors,
            "other_cores_mean": statistics.fmean(f.other_cores) if f.other_cores else 0.0,
        }
    fg, fl = paths["faregate"], paths["floor"]

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("inf")

    vs = {
        "throughput": ratio(fg["rps"], fl["rps"]),
        "cpu": ratio(fg["cpu_us_per_request"], fl["cpu_us_per_request"]),
        "added_p50": ratio(fg["added_p50_ms"], fl["added_p50_ms"]),
        "added_p99": ratio(fg["added_p99_ms"], fl["added_p99_ms"]),
        "ttfe_ms": fg["added_ttfe_p50_ms"] - fl["added_ttfe_p50_ms"],
        "cpu_stream": ratio(fg["cpu_us_per_stream"], fl["cpu_us_per_stream"]),
        "idle_rss_mib": fg["idle_rss_mib"] if fg["idle_rss_mib"] is not None else float("nan"),
        "start_s": fg["start_s"] if fg["start_s"] is not None else float("nan"),
    }
    met = {k: (vs[k] >= goal if k == "throughput" else vs[k] <= goal) for k, goal in GOALS.items()}
    return {"plan": asdict(plan), "rounds": rounds, "paths": paths, "faregate_vs_floor": vs, "goals_met": met}


def print_table(report: dict[str, Any], out: TextIO = sys.stdout) -> None:
    def emit(text: str = "") -> None:
        print(text, file=out)

    def num(x: float | None, digits: int = 0) -> str:
        return "-" if x is None or x != x else f"{x:,.{digits}f}"

    paths, vs, met = report["paths"], report["faregate_vs_floor"], report["goals_met"]
    title = (
        "the figures that count" if report["mode"] == "fast" else "bounded by the simulator, not the gateways"
    )
    emit()
    emit(
        f"## behind the {report['upstream']}: {title} "
        f"({report['rounds']} round(s) of {report['plan']['window_s']:.1f} s windows)"
    )
    emit()
    emit(
        f"| target | req/s at {LOAD_CONNS} conns | CPU µs/req | Δp50 / Δp99 ms at 1 conn "
        f"| ΔTTFE p50 ms, {STREAMS} streams / 1 stream | CPU µs/stream | idle RSS MB | start s | errors |"
    )
    emit("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name in TARGETS:
        p = paths[name]
        if name == "upstream":
            lat = f"({num(p['p50_ms'], 3)} / {num(p['p99_ms'], 3)})"
            ttfe = f"({num(p['ttfe_p50_ms'], 3)} / {num(p['ttfe1_p50_ms'], 3)})"
        else:
            lat = f"{num(p['added_p50_ms'], 2)} / {num(p['added_p99_ms'], 2)}"
            ttfe = f"{num(p['added_ttfe_p50_ms'], 2)} / {num(p['added_ttfe1_p50_ms'], 2)}"
        label = {"upstream": "the upstream alone", "floor": "bare aiohttp proxy on uvloop (the floor)"}.get(
            name, name
        )
        emit(
            f"| {label} | {num(p['rps'])} | {num(p['cpu_us_per_request'])} | {lat} | {ttfe} "
            f"| {num(p['cpu_us_per_stream'])} | {num(p['idle_rss_mib'])} | {num(p['start_s'], 2)} | {p['errors']} |"
        )
    emit("(upstream row: its own latency and TTFE, in brackets: the base the deltas are measured from)")
    emit()
    shown = {
        "throughput": (f"{vs['throughput']:.0%}", f">= {GOALS['throughput']:.0%}"),
        "cpu": (f"{vs['cpu']:.2f}x", f"<= {GOALS['cpu']}x"),
        "added_p50": (f"{vs['added_p50']:.2f}x", f"<= {GOALS['added_p50']}x"),
        "added_p99": (f"{vs['added_p99']:.2f}x", f"<= {GOALS['added_p99']}x"),
        "ttfe_ms": (f"{vs['ttfe_ms']:+.2f} ms", f"<= +{GOALS['ttfe_ms']} ms"),
        "cpu_stream": (f"{vs['cpu_stream']:.2f}x", f"<= {GOALS['cpu_stream']}x"),
        "idle_rss_mib": (f"{vs['idle_rss_mib']:.0f} MB", f"<= {GOALS['idle_rss_mib']:.0f} MB"),
        "start_s": (f"{vs['start_s']:.2f} s", f"<= {GOALS['start_s']} s"),
    }
    names = {
        "throughput": f"throughput at {LOAD_CONNS} conns",
        "cpu": "CPU per request",
        "added_p50": "added p50 at 1 conn",
        "added_p99": "added p99 at 1 conn",
        "ttfe_ms": f"ΔTTFE p50, {STREAMS} streams",
        "cpu_stream": "CPU per stream",
        "idle_rss_mib": "idle RSS (absolute)",
        "start_s": "start-up (absolute)",
    }
    emit(f"{'faregate vs the floor':<28}{'measured':>12}   {'goal':<12}")
    for key, (measured, goal) in shown.items():
        emit(f"{names[key]:<28}{measured:>12}   {goal:<12}{'met' if met[key] else 'MISSED'}")
    fg, fl = paths["faregate"], paths["floor"]
    queued = (STREAMS - 1) * (fg["cpu_us_per_stream"] - fl["cpu_us_per_stream"]) / 1000
    emit(
        f"ΔTTFE at {STREAMS} streams is mostly queueing on the gateway's one core (each first event waits for"
        f" the other streams' work): {STREAMS - 1} x the CPU per stream above the floor's = {queued:+.2f} ms;"
        f" one stream at a time, faregate's first event is"
        f" {fg['added_ttfe1_p50_ms'] - fl['added_ttfe1_p50_ms']:+.2f} ms after the floor's"
    )
    other = " ".join(f"{n} {paths[n]['other_cores_mean']:.0%}" for n in TARGETS)
    emit(
        f"CPU outside the measured process and the load generator, in % of one core (the upstream's share "
        f"included): {other}; waited {report.get('quiet_wait_s', 0):.0f} s for quiet"
    )
    if report["mode"] == "fast" and paths["upstream"]["rps"] < 2 * max(paths[n]["rps"] for n in GATEWAYS):
        emit("  note: the upstream served less than twice the gateways' rate: it may have bounded them")


def profile_faregate(
    setup: Setup, plan: Plan, path: Path, conns: int, procs: Processes, tmp: Path, core1: int | None
) -> None:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        note("--profile needs py-spy (pip install py-spy): skipped")
        return
    seconds = max(5, round(plan.window_s * 3))
    note(f"profiling faregate under {conns} connections for {seconds} s with py-spy ...")
    spy = procs.start(
        "py-spy",
        pinned(
            core1,
            [
                *(py_spy, "record", "--pid", str(setup.procs["faregate"].pid), "--rate", "250"),
                *("--nonblocking", "--gil", "--duration", str(seconds), "--format", "raw"),
                *("--output", str(path)),
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "py-spy.log").open("wb"),
    )
    time.sleep(1.0)  # py-spy attaches
    cmd = {
        "target": setup.targets["faregate"],
        "conns": conns,
        "warmup_s": 0.2,
        "duration_s": seconds,
        "stream": False,
        "record": False,
    }
    sampled = setup.load.run(cmd, seconds)
    note(f"faregate served {sampled['rps']:.0f} req/s while sampled")
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.terminate()
    if path.exists():
        print_profile(path)
    else:
        note(f"py-spy wrote nothing: {tail(tmp / 'py-spy.log')[-500:]}")


def print_profile(path: Path, top: int = 20, out: TextIO = sys.stdout) -> None:
    """Hot spots from py-spy's raw (collapsed stacks) output: self time by function, and time by the
    innermost faregate function of each sample (its own code and the libraries it calls, aiohttp apart)."""
    own: collections.Counter[str] = collections.Counter()
    by_faregate: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [short_frame(f) for f in stack.split(";") if f.strip()]
        if not frames or not count.isdigit():
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        inner = [i for i, f in enumerate(frames) if "faregate/" in f and not f.endswith(ENTRY_FRAMES)]
        if not inner:
            by_faregate["(aiohttp / asyncio, outside faregate code)"] += n
        elif any("aiohttp/" in f for f in frames[inner[-1] + 1 :]):
            by_faregate[f"{frames[inner[-1]]} -> aiohttp"] += n
        else:
            by_faregate[frames[inner[-1]]] += n
    print(f"\nprofile of faregate under load ({total} samples, {path}): self time", file=out)
    for frame, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {frame}", file=out)
    print("by innermost faregate function (with the non-aiohttp code it calls)", file=out)
    for frame, n in by_faregate.most_common(top):
        print(f"  {n / total:6.1%}  {frame}", file=out)


ENTRY_FRAMES: Final = ("(faregate/cli/main.py)", "(faregate/cli/commands.py)", "(faregate/server/serve.py)")


def short_frame(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py)`."""
    name, _, where = frame.strip().partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            if marker == "/lib/python3":
                where = where.split("/", 1)[-1]
            break
    return f"{name} ({where})"


def orchestrate(
    modes: Sequence[str], plan: Plan, json_path: Path | None, profile: Path | None, profile_conns: int
) -> int:
    cores = os.cpu_count() or 1
    core0, core1 = (0, 1) if cores >= 2 and shutil.which("taskset") else (None, None)
    if core1 is not None:
        os.sched_setaffinity(0, {core1})
    else:
        note("warning: fewer than 2 CPUs or no taskset: nothing is pinned")
    started = time.monotonic()
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="faregate-bench-") as tmp_name:
        for mode in modes:
            tmp = Path(tmp_name) / mode
            tmp.mkdir()
            procs = Processes()
            try:
                note(f"[{mode}] starting the upstream, the floor and faregate ...")
                setup = set_up(mode, plan, procs, tmp, core0, core1)
                note(f"[{mode}] ready after {time.monotonic() - started:.1f} s")
                report = measure(mode, plan, setup)
                report["pinned"] = core0 is not None
                report["setup"] = {
                    "accounting": plan.accounting,
                    "workers": plan.workers,
                    "state": plan.state,
                }
                note(
                    f"[{mode}] faregate: accounting {plan.accounting}, workers {plan.workers}, state {plan.state}"
                )
                reports.append(report)
                print_table(report)
                if profile is not None and mode == modes[0]:
                    profile_faregate(setup, plan, profile, profile_conns, procs, tmp, core1)
            except RuntimeError as e:
                note(f"bench_gateway [{mode}]: {e}")
                return 1
            finally:
                procs.stop_all()
    note(f"elapsed {time.monotonic() - started:.0f} s")
    if json_path is not None:
        json_path.write_text(json.dumps({"modes": reports}, indent=2) + "\n")
        note(f"figures written to {json_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--mode",
        choices=(*MODES, "both"),
        default="both",
        help="fast: behind the fast upstream (the figures that count); simulator: behind the provider"
        " simulator (bounded by it); both (default): one after the other",
    )
    parser.add_argument("--quick", action="store_true", help="one short round per mode")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the smoke test
    parser.add_argument("--rounds", type=int, default=None, help="number of rounds (default 3, --quick 1)")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write every figure here"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="then profile faregate under load with py-spy (raw stacks to FILE) and print its hot spots",
    )
    parser.add_argument(
        "--profile-conns", type=int, default=LOAD_CONNS, metavar="N", help="connections while profiling"
    )
    parser.add_argument(
        "--accounting",
        choices=("default", "off", "keys"),
        default="default",
        help="faregate as shipped (usage log, auth open), without a store (--no-store), or with auth: keys and"
        " a key with limits on every request",
    )
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N|auto",
        help="faregate serve --workers (default 1; more: not pinned)",
    )
    parser.add_argument(
        "--state",
        choices=("memory", "redis"),
        default="memory",
        help="faregate's shared state (default memory)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis for --state redis")
    parser.add_argument("--role", choices=("floor", "loadgen"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "floor":
        return run_floor(args.upstream, args.port)
    if args.role == "loadgen":
        return run_loadgen()
    base = TINY if args.tiny else QUICK if args.quick else FULL
    plan = Plan(
        **{
            **asdict(base),
            "accounting": args.accounting,
            "workers": args.workers,
            "state": args.state,
            "redis": args.redis,
        }
    )
    if args.rounds is not None:
        rounds = max(1, args.rounds)
        plan = Plan(**{**asdict(plan), "rounds": rounds, "budget_s": plan.budget_s * rounds / plan.rounds})
    modes = MODES if args.mode == "both" else (args.mode,)
    return orchestrate(modes, plan, args.json, args.profile, args.profile_conns)


if __name__ == "__main__":
    sys.exit(main())
