"""Benchmark faregate against the provider simulator and a minimal aiohttp reverse proxy (the floor).

    python scripts/bench_gateway.py [--quick] [--rounds N] [--json FILE] [--profile FILE]

Starts, as separate processes on 127.0.0.1:
  * the provider simulator (`scripts/_bench_sim.py`), serving every provider of the shipped catalog;
  * the floor: a minimal aiohttp reverse proxy defined in this file (`--role floor`), forwarding
    POST /v1/chat/completions to the simulator's openai endpoint with one pooled ClientSession and
    streaming the answer back chunk by chunk — the least any gateway of this design can cost;
  * faregate (`python -m faregate.cli serve`) on a temporary copy of the shipped routes.yaml whose
    providers' `base_url` point at the same simulator, with stand-in keys in its environment;
  * the load generator (`--role loadgen`): asyncio, a small keep-alive HTTP/1.1 client on raw streams
    (much cheaper per request than an aiohttp client, so the load side disturbs less).
The floor and faregate are pinned to core 0, the simulator, the load generator and this script to
core 1 (`taskset`). Every measurement is taken for the three paths in turn (simulator direct, floor,
faregate), in rounds with a rotating order, so noise hits all three alike:
  * closed-loop throughput (requests/s) at 1, 32 and 128 connections, fixed duration each;
  * latency at a fixed open-loop rate below saturation (half the floor's 1-connection throughput,
    lower if faregate saturates sooner); "added" latency is a path's percentile minus the
    simulator-direct percentile at the same rate;
  * streaming time to first event (`stream: true`; time from sending until the first `data:` line);
  * CPU time per request of the serving process (/proc/<pid>/stat utime+stime over the closed-loop
    windows, divided by the requests answered in them: under load, i.e. at 32 and 128 connections,
    and at 1 connection) and its peak RSS (/proc/<pid>/status VmHWM).
Prints one table with faregate/floor ratios next to the goals of issue 3 (throughput at least 70% of
the floor's, added latency at 1 connection at most 1.5x the floor's, time to first event within 1 ms
of the floor's). Never asserts; `--json FILE` also writes every figure; `--profile FILE` then samples
faregate under load with py-spy (if installed: `pip install py-spy`) and prints its hot spots.
Other processes on the machine skew such figures: before each measurement the script waits (briefly)
for the machine to be idle, and it reports how much CPU other processes took while it measured.
Bounded in time: the full run takes 3.5 to 5 minutes, `--quick` under a minute; every child process
is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

REPO: Final = Path(__file__).resolve().parent.parent
SIM_SCRIPT: Final = REPO / "scripts" / "_bench_sim.py"
TARGETS: Final = ("simulator", "floor", "faregate")
CONCURRENCY: Final = (1, 32, 128)
GOAL_THROUGHPUT: Final = 0.70  # faregate/floor, at least
GOAL_ADDED_LATENCY: Final = 1.5  # faregate/floor added latency p50 near 1 connection, at most
GOAL_TTFE_MS: Final = 1.0  # faregate minus floor, at most
OPEN_LOOP_LOAD: Final = 0.5  # open-loop rate as a share of the slowest path's capacity
REQUEST_TIMEOUT_S: Final = 10.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PROVIDER: Final = "openai"  # the floor forwards to this provider's endpoint; faregate's pinned model too
UPSTREAM_MODEL: Final = "gpt-4o-mini"
MODEL: Final = "openai/gpt-4o-mini"
MESSAGES: Final = [{"role": "user", "content": "Say hello in five words."}]


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    warmup_s: float  # before each closed-loop window
    closed_s: float  # each closed-loop window
    open_s: float  # each open-loop run (its first `open_warmup_s` is not recorded)
    open_warmup_s: float
    ttfe_n: int  # streaming requests per round and path
    calibrate_s: float
    budget_s: float  # no new round starts after this (the run stops by itself)
    quiet_budget_s: float  # at most this long in all, waiting for other processes to calm down
    accounting: str = "default"  # faregate's set-up: default (usage log, auth open), off (no store), keys


FULL: Final = Plan(
    rounds=4,
    warmup_s=0.5,
    closed_s=3.0,
    open_s=4.0,
    open_warmup_s=0.3,
    ttfe_n=150,
    calibrate_s=2.0,
    budget_s=270,
    quiet_budget_s=45,
)
QUICK: Final = Plan(
    rounds=1,
    warmup_s=0.3,
    closed_s=1.5,
    open_s=2.0,
    open_warmup_s=0.2,
    ttfe_n=40,
    calibrate_s=1.0,
    budget_s=45,
    quiet_budget_s=8,
)


# ------------------------------------------------------------------------------------------------------
# /proc readers (Linux)


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after `comm`


def peak_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
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


# ------------------------------------------------------------------------------------------------------
# The floor: a minimal aiohttp reverse proxy (one fixed upstream, one pooled ClientSession)

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

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/chat/completions", forward)
    return app


def run_floor(upstream: str, port: int) -> int:
    web.run_app(floor_app(upstream), host="127.0.0.1", port=port, access_log=None, print=None)
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
    sim_pid: int

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
            int(d["sim_pid"]),
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


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    target: int  # CPU ticks of the process serving the path
    sim: int  # CPU ticks of the simulator
    own: float  # CPU seconds of this load generator
    cores: dict[str, tuple[int, int]]

    @classmethod
    def take(cls, target: Target) -> Snapshot:
        return cls(
            time.perf_counter(),
            cpu_ticks(target.pid),
            cpu_ticks(target.sim_pid),
            time.process_time(),
            core_times(),
        )


def cpu_window(target: Target, a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """CPU of the serving process between two snapshots, how busy each core was, and how much CPU went
    to processes outside the benchmark (in cores: 0.1 is a tenth of one core), a noise indicator."""
    seconds = b.at - a.at
    served = (b.target - a.target) / CLK_TCK
    sim = (b.sim - a.sim) / CLK_TCK if target.sim_pid != target.pid else 0.0
    busy = sum(b.cores[c][0] - a.cores[c][0] for c in b.cores if c in a.cores) / CLK_TCK
    foreign = max(0.0, busy - served - sim - (b.own - a.own)) / seconds
    return {
        "seconds": seconds,
        "cpu_s": served,
        "busy": busy_share(a.cores, b.cores),
        "foreign_cores": foreign,
    }


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


async def closed_loop(target: Target, conns: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """`conns` connections each sending the next request as soon as the previous answer is read."""
    tally, stopping = Tally(), asyncio.Event()

    async def worker() -> None:
        conn: Conn | None = None
        while not stopping.is_set():
            try:
                if conn is None:
                    conn = await Conn.open(target.host, target.port)
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, _, keep = await conn.fetch(target.request)
                if status == 200:
                    tally.ok += 1
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
    ok0, err0, before = tally.ok, tally.errors, Snapshot.take(target)
    await asyncio.sleep(duration_s)
    ok1, err1, after = tally.ok, tally.errors, Snapshot.take(target)
    stopping.set()
    await asyncio.gather(*tasks)
    usage = cpu_window(target, before, after)
    return {"requests": ok1 - ok0, "errors": err1 - err0, "rps": (ok1 - ok0) / usage["seconds"], **usage}


async def open_loop(target: Target, rate: float, duration_s: float, warmup_s: float) -> dict[str, Any]:
    """Requests sent at a fixed rate whatever the answers do (new connections if all are busy);
    latency from sending to the end of the answer, recorded after `warmup_s`."""
    idle = [await Conn.open(target.host, target.port) for _ in range(4)]
    opened, latencies, tally = len(idle), [], Tally()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    record_from, end = start + warmup_s, start + duration_s
    pending: set[asyncio.Task[None]] = set()
    max_lag = 0.0

    async def one(record: bool) -> None:
        nonlocal opened
        try:
            if idle:
                conn = idle.pop()
            else:
                conn = await Conn.open(target.host, target.port)
                opened += 1
            sent = time.perf_counter()
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, _, keep = await conn.fetch(target.request)
            elapsed = time.perf_counter() - sent
        except FETCH_ERRORS:
            tally.errors += 1
            return
        if keep:
            idle.append(conn)
        else:
            conn.close()
        if status != 200:
            tally.errors += 1
        elif record:
            tally.ok += 1
            latencies.append(elapsed * 1000)

    i = 0
    while (due := start + i / rate) < end:
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        task = asyncio.create_task(one(due >= record_from))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    await asyncio.gather(*pending)
    for conn in idle:
        conn.close()
    return {
        "latencies_ms": [round(x, 4) for x in latencies],
        "errors": tally.errors,
        "connections": opened,
        "max_lag_ms": max_lag * 1000,
    }


async def first_events(target: Target, n: int) -> dict[str, Any]:
    """`n` streaming requests one after another on one connection: time to the first `data:` line."""
    conn, ttfe, errors = await Conn.open(target.host, target.port), [], 0
    for i in range(n + 5):  # the first 5 warm up
        try:
            sent = time.perf_counter()
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, first, keep = await conn.fetch(target.stream_request, first_event=True)
        except FETCH_ERRORS:
            errors += 1
            conn.close()
            conn = await Conn.open(target.host, target.port)
            continue
        if status != 200 or first is None:
            errors += 1
        elif i >= 5:
            ttfe.append(round((first - sent) * 1000, 4))
        if not keep:
            conn.close()
            conn = await Conn.open(target.host, target.port)
    conn.close()
    return {"ttfe_ms": ttfe, "errors": errors}


async def load_command(cmd: dict[str, Any]) -> dict[str, Any]:
    target = Target.from_json(cmd["target"])
    if cmd["op"] == "closed":
        return await closed_loop(target, int(cmd["conns"]), float(cmd["warmup_s"]), float(cmd["duration_s"]))
    before = Snapshot.take(target)
    if cmd["op"] == "open":
        result = await open_loop(target, float(cmd["rate"]), float(cmd["duration_s"]), float(cmd["warmup_s"]))
    elif cmd["op"] == "ttfe":
        result = await first_events(target, int(cmd["n"]))
    else:
        raise ValueError(f"unknown op {cmd['op']!r}")
    return {**result, "foreign_cores": cpu_window(target, before, Snapshot.take(target))["foreign_cores"]}


def run_loadgen() -> int:
    for line in sys.stdin:
        try:
            result = asyncio.run(load_command(json.loads(line)))
        except Exception as e:  # report, keep serving commands
            result = {"failed": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)
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
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    why = (
        f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout_s:.0f} s"
    )
    raise RuntimeError(f"{url}: {why}: {last}\n{tail}")


def faregate_routes(tmp: Path, base_urls: dict[str, str]) -> Path:
    """The shipped routes.yaml with every simulated provider's base_url pointed at the simulator."""
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
    """Before each measurement, wait (within a budget for the whole run) until the machine is idle:
    other processes' load is noise that would hit one path and not the others."""

    IDLE_SHARE: Final = 0.08  # both cores together, between measurements (our processes are idle then)

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.waited_s = budget_s, 0.0

    def wait(self) -> None:
        while True:
            before = core_times()
            time.sleep(0.2)
            shares = busy_share(before, core_times())
            if statistics.fmean(shares.values()) <= self.IDLE_SHARE or self.waited_s >= self.budget_s:
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
    rps: dict[int, list[float]] = field(default_factory=lambda: {c: [] for c in CONCURRENCY})
    busy_128: list[dict[str, float]] = field(default_factory=list)
    cpu_s: dict[int, float] = field(default_factory=lambda: dict.fromkeys(CONCURRENCY, 0.0))
    requests: dict[int, int] = field(default_factory=lambda: dict.fromkeys(CONCURRENCY, 0))
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    open_connections: int = 0
    open_max_lag_ms: float = 0.0
    ttfe_ms: list[float] = field(default_factory=list)
    peak_rss_mib: float | None = None
    foreign_cores: list[float] = field(default_factory=list)  # other processes' CPU, per measurement


def note(text: str, out: TextIO = sys.stderr) -> None:
    print(text, file=out, flush=True)


def rotate(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def orchestrate(
    plan: Plan, json_path: Path | None, profile: Path | None = None, profile_conns: int = CONCURRENCY[-1]
) -> int:
    cores = os.cpu_count() or 1
    core0, core1 = (0, 1) if cores >= 2 and shutil.which("taskset") else (None, None)
    if core1 is not None:
        os.sched_setaffinity(0, {core1})
    else:
        note("warning: fewer than 2 CPUs or no taskset: nothing is pinned")
    started = time.monotonic()
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="faregate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            return measure(plan, json_path, (profile, profile_conns), procs, tmp, core0, core1, started)
        except RuntimeError as e:
            note(f"bench_gateway: {e}")
            return 1
        finally:
            procs.stop_all()


def measure(
    plan: Plan,
    json_path: Path | None,
    profiling: tuple[Path | None, int],
    procs: Processes,
    tmp: Path,
    core0: int | None,
    core1: int | None,
    started: float,
) -> int:
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREGATE_")}
    sim_log, floor_log, fg_log, load_log = (tmp / f"{n}.log" for n in ("sim", "floor", "faregate", "loadgen"))

    note("starting the simulator, the floor proxy and faregate ...")
    sim_port, floor_port, fg_port = free_port(), free_port(), free_port()
    sim = procs.start(
        "simulator",
        pinned(core1, [py, str(SIM_SCRIPT), "--port", str(sim_port)]),
        stdout=subprocess.PIPE,
        stderr=sim_log.open("wb"),
        env=env,
    )
    info = json.loads(read_line(sim.stdout, 60, "simulator"))
    base_urls: dict[str, str] = info["base_urls"]
    keys: dict[str, str] = info["env"]
    upstream = f"{base_urls[PROVIDER]}/chat/completions"
    floor = procs.start(
        "floor",
        pinned(core0, [py, __file__, "--role", "floor", "--upstream", upstream, "--port", str(floor_port)]),
        stdout=floor_log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    routes = faregate_routes(tmp, base_urls)
    serve = [py, "-m", "faregate.cli", "serve", "--config", str(routes), "--port", str(fg_port)]
    fg_env = {**env, **keys}
    auth = {"Authorization": f"Bearer {keys.get('OPENAI_API_KEY', 'sim-key')}"}
    fg_auth = auth
    if plan.accounting == "off":
        serve.append("--no-store")
    elif plan.accounting == "keys":  # every request authenticated by a key with limits, usage logged
        store = tmp / "faregate.db"
        made = subprocess.run(
            [
                py,
                "-m",
                "faregate.cli",
                "keys",
                "create",
                "--label",
                "bench",
                "--budget",
                "1000000",
                "--rpm",
                "100000000",
                "--tpm",
                "100000000000",
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        fg_auth = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
        serve += ["--store", str(store)]
        fg_env["FAREGATE_AUTH"] = "keys"
    fg = procs.start(
        "faregate",
        pinned(core0, serve),
        stdout=fg_log.open("wb"),
        stderr=subprocess.STDOUT,
        env=fg_env,
        cwd=tmp,
    )
    urls = {
        "simulator": upstream,
        "floor": f"http://127.0.0.1:{floor_port}/v1/chat/completions",
        "faregate": f"http://127.0.0.1:{fg_port}/v1/chat/completions",
    }
    procs_by_name = {"simulator": sim, "floor": floor, "faregate": fg}
    pids = {name: proc.pid for name, proc in procs_by_name.items()}
    logs = {"simulator": sim_log, "floor": floor_log, "faregate": fg_log}
    targets: dict[str, dict[str, Any]] = {}
    only = False  # faregate picks the pinned model's offerings cheapest first: openai's, as the floor
    for name in TARGETS:
        is_fg = name == "faregate"
        body = chat_body(faregate=is_fg, stream=False)
        headers = fg_auth if is_fg else auth
        answered = wait_ready(urls[name], body.encode(), headers, 60, procs_by_name[name], logs[name])
        if is_fg and answered.get("X-Faregate-Provider", PROVIDER) != PROVIDER:
            only = True  # the catalog changed: pin the provider too (OpenRouter's `provider.only`)
            body = chat_body(faregate=True, stream=False, only=True)
            wait_ready(urls[name], body.encode(), headers, 60, procs_by_name[name], logs[name])
        stream_body = chat_body(faregate=is_fg, stream=True, only=only)
        targets[name] = {
            "url": urls[name],
            "headers": headers,
            "body": body,
            "stream_body": stream_body,
            "pid": pids[name],
            "sim_pid": sim.pid,
        }
    load = LoadGen(
        procs.start(
            "loadgen",
            pinned(core1, [py, __file__, "--role", "loadgen"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=load_log.open("wb"),
            env=env,
        )
    )
    note(f"ready after {time.monotonic() - started:.1f} s")
    figures = {name: PathFigures() for name in TARGETS}
    quiet = Quiet(plan.quiet_budget_s)

    def closed(name: str, conns: int, duration_s: float) -> dict[str, Any]:
        cmd = {
            "op": "closed",
            "target": targets[name],
            "conns": conns,
            "warmup_s": plan.warmup_s,
            "duration_s": duration_s,
        }
        return run(name, cmd, plan.warmup_s + duration_s)

    def run(name: str, cmd: dict[str, Any], expect_s: float) -> dict[str, Any]:
        quiet.wait()
        result = load.run(cmd, expect_s)
        if name in figures:
            figures[name].foreign_cores.append(result["foreign_cores"])
        return result

    # Calibrate the open-loop rate: below the floor's 1-connection capacity and faregate's saturation.
    floor_1 = closed("floor", 1, plan.calibrate_s)["rps"]
    fg_32 = closed("faregate", 32, plan.calibrate_s)["rps"]
    rate = round(OPEN_LOOP_LOAD * min(floor_1, fg_32), 1)
    note(
        f"open-loop rate {rate:.0f} req/s ({OPEN_LOOP_LOAD:.0%} of min(floor@1 {floor_1:.0f}, faregate@32 {fg_32:.0f}))"
    )

    rounds_done = 0
    for r in range(plan.rounds):
        if r and time.monotonic() - started > plan.budget_s:
            note(f"time budget reached: stopping after {r} rounds")
            break
        order = rotate(TARGETS, r)
        for conns in CONCURRENCY:
            for name in order:
                res = closed(name, conns, plan.closed_s)
                f = figures[name]
                f.rps[conns].append(res["rps"])
                f.cpu_s[conns] += res["cpu_s"]
                f.requests[conns] += res["requests"]
                f.errors += res["errors"]
                if conns == CONCURRENCY[-1]:
                    f.busy_128.append(res["busy"])
                note(
                    f"round {r + 1}/{plan.rounds} closed@{conns:<3} {name:<9} {res['rps']:8.0f} req/s  errors {res['errors']}"
                )
        for name in order:
            cmd = {
                "op": "open",
                "target": targets[name],
                "rate": rate,
                "duration_s": plan.open_s,
                "warmup_s": plan.open_warmup_s,
            }
            res = run(name, cmd, plan.open_s)
            f = figures[name]
            f.latencies_ms += res["latencies_ms"]
            f.errors += res["errors"]
            f.open_connections = max(f.open_connections, res["connections"])
            f.open_max_lag_ms = max(f.open_max_lag_ms, res["max_lag_ms"])
            note(
                f"round {r + 1}/{plan.rounds} open@{rate:.0f}/s {name:<9} p50 {percentile(res['latencies_ms'], 50):.3f} ms"
            )
        for name in order:
            res = run(name, {"op": "ttfe", "target": targets[name], "n": plan.ttfe_n}, plan.ttfe_n * 0.1)
            figures[name].ttfe_ms += res["ttfe_ms"]
            figures[name].errors += res["errors"]
            note(
                f"round {r + 1}/{plan.rounds} ttfe      {name:<9} p50 {percentile(res['ttfe_ms'], 50):.3f} ms"
            )
        rounds_done += 1
    for name in TARGETS:
        figures[name].peak_rss_mib = peak_rss_mib(pids[name])

    report = summarize(figures, rate, rounds_done, plan, pinned_cores=core0 is not None)
    report["quiet_wait_s"] = round(quiet.waited_s, 1)
    report["requests"] = {name: json.loads(targets[name]["body"]) for name in TARGETS}
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print_table(report)
    if json_path is not None:
        report["raw"] = {name: asdict(f) for name, f in figures.items()}
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        note(f"figures written to {json_path}")
    profile, profile_conns = profiling
    if profile is not None:
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            note("--profile needs py-spy (pip install py-spy): skipped")
            return 0
        seconds = max(5, round(plan.closed_s * 3))
        note(f"profiling faregate under closed@{profile_conns} for {seconds} s with py-spy ...")
        spy_args = ["--duration", str(seconds), "--format", "raw", "--output", str(profile)]
        spy = procs.start(
            "py-spy",
            pinned(
                core1,
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(fg.pid),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--gil",
                    *spy_args,
                ],
            ),
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "py-spy.log").open("wb"),
        )
        time.sleep(1.0)  # py-spy attaches
        sampled = closed("faregate", profile_conns, seconds)
        note(f"faregate served {sampled['rps']:.0f} req/s while sampled")
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.terminate()
        if profile.exists():
            print_profile(profile)
        else:
            note(f"py-spy wrote nothing: {(tmp / 'py-spy.log').read_text(errors='replace')[-500:]}")
    return 0


def print_profile(path: Path, top: int = 15, out: TextIO = sys.stdout) -> None:
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


ENTRY_FRAMES: Final = ("(faregate/cli.py)", "(faregate/cli_commands.py)", "(faregate/server/serve.py)")


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


LOADED: Final = tuple(c for c in CONCURRENCY if c > 1)


def cpu_ms(f: PathFigures, at: Sequence[int]) -> float:
    requests = sum(f.requests[c] for c in at)
    return sum(f.cpu_s[c] for c in at) * 1000 / requests if requests else float("nan")


def summarize(
    figures: dict[str, PathFigures], rate: float, rounds: int, plan: Plan, *, pinned_cores: bool
) -> dict[str, Any]:
    sim = figures["simulator"]
    base50, base99 = percentile(sim.latencies_ms, 50), percentile(sim.latencies_ms, 99)
    paths: dict[str, dict[str, Any]] = {}
    for name, f in figures.items():
        p50, p99 = percentile(f.latencies_ms, 50), percentile(f.latencies_ms, 99)
        busy = {
            core: statistics.fmean(b.get(core, 0.0) for b in f.busy_128) if f.busy_128 else float("nan")
            for core in ("cpu0", "cpu1")
        }
        paths[name] = {
            "rps": {str(c): statistics.median(v) if v else float("nan") for c, v in f.rps.items()},
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "added_p50_ms": p50 - base50,
            "added_p99_ms": p99 - base99,
            "ttfe_p50_ms": percentile(f.ttfe_ms, 50),
            # under load (32 and 128 connections): what bounds throughput; at 1 connection for reference
            "cpu_ms_per_request": cpu_ms(f, LOADED),
            "cpu_ms_per_request_at": {str(c): cpu_ms(f, (c,)) for c in CONCURRENCY},
            "peak_rss_mib": f.peak_rss_mib,
            "errors": f.errors,
            "busy_at_128": busy,
            "foreign_cores_mean": statistics.fmean(f.foreign_cores) if f.foreign_cores else 0.0,
            "foreign_cores_max": max(f.foreign_cores, default=0.0),
            "open_loop_connections": f.open_connections,
            "open_loop_max_lag_ms": f.open_max_lag_ms,
        }
    fg, fl = paths["faregate"], paths["floor"]
    throughput = {str(c): fg["rps"][str(c)] / fl["rps"][str(c)] for c in CONCURRENCY}
    added_ratio = fg["added_p50_ms"] / fl["added_p50_ms"] if fl["added_p50_ms"] > 0 else float("inf")
    ttfe_diff = fg["ttfe_p50_ms"] - fl["ttfe_p50_ms"]
    return {
        "plan": asdict(plan),
        "rounds": rounds,
        "pinned": pinned_cores,
        "open_loop_rate": rate,
        "paths": paths,
        "faregate_vs_floor": {
            "throughput_ratio": throughput,
            "added_p50_ratio": added_ratio,
            "added_p99_ratio": fg["added_p99_ms"] / fl["added_p99_ms"]
            if fl["added_p99_ms"] > 0
            else float("inf"),
            "ttfe_diff_ms": ttfe_diff,
            # what one core could serve if the process were the only bottleneck: 1 / CPU per request
            "cpu_capacity_ratio": fl["cpu_ms_per_request"] / fg["cpu_ms_per_request"],
        },
        "goals": {
            **{f"throughput@{c}": throughput[str(c)] >= GOAL_THROUGHPUT for c in CONCURRENCY},
            "added_latency": added_ratio <= GOAL_ADDED_LATENCY,
            "ttfe": ttfe_diff <= GOAL_TTFE_MS,
        },
    }


def print_table(report: dict[str, Any], out: TextIO = sys.stdout) -> None:
    def emit(text: str = "") -> None:
        print(text, file=out)

    def num(x: float | None, digits: int = 2) -> str:
        return "-" if x is None or x != x else f"{x:.{digits}f}"

    paths = report["paths"]
    plan = report["plan"]
    emit()
    emit(
        f"faregate gateway bench: {report['rounds']} round(s), {plan['closed_s']:.1f} s per closed-loop window, "
        f"open loop at {report['open_loop_rate']:.0f} req/s, "
        + ("floor and faregate on core 0, simulator and load on core 1" if report["pinned"] else "not pinned")
    )
    fg_request = report.get("requests", {}).get("faregate", {})
    emit(
        f"request: a short chat, max_tokens 16; faregate gets model {fg_request.get('model')}"
        + (f", provider {fg_request['provider']}" if "provider" in fg_request else "")
        + f"; floor and simulator get {UPSTREAM_MODEL} at the simulator's {PROVIDER} endpoint"
    )
    header = (
        f"{'path':<10}{'req/s@1':>9}{'@32':>8}{'@128':>8}{'added p50':>11}{'added p99':>11}"
        f"{'TTFE p50':>10}{'CPU ms/req':>12}{'@1':>7}{'peak RSS':>10}{'errors':>8}"
    )
    emit(header)
    emit(f"{'':<10}{'':>25}{'ms':>11}{'ms':>11}{'ms':>10}{'under load':>12}{'':>7}{'MiB':>10}")
    emit("-" * len(header))
    for name in TARGETS:
        p = paths[name]
        added50 = f"({num(p['latency_p50_ms'], 3)})" if name == "simulator" else num(p["added_p50_ms"], 3)
        added99 = f"({num(p['latency_p99_ms'], 3)})" if name == "simulator" else num(p["added_p99_ms"], 3)
        emit(
            f"{name:<10}{num(p['rps']['1'], 0):>9}{num(p['rps']['32'], 0):>8}{num(p['rps']['128'], 0):>8}"
            f"{added50:>11}{added99:>11}{num(p['ttfe_p50_ms'], 3):>10}{num(p['cpu_ms_per_request'], 3):>12}"
            f"{num(p['cpu_ms_per_request_at']['1'], 3):>7}{num(p['peak_rss_mib'], 1):>10}{p['errors']:>8}"
        )
    emit("(simulator row: its own latency at the open-loop rate, the base the others are measured from)")
    emit()
    vs, goals = report["faregate_vs_floor"], report["goals"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    emit(f"{'faregate vs floor':<28}{'measured':>12}   {'goal':<12}")
    for c in CONCURRENCY:
        emit(
            f"{f'throughput @{c}':<28}{vs['throughput_ratio'][str(c)]:>11.0%}    {f'>= {GOAL_THROUGHPUT:.0%}':<12}"
            f"{verdict(goals[f'throughput@{c}'])}"
        )
    emit(
        f"{'added latency p50 (1 conn)':<28}{vs['added_p50_ratio']:>11.2f}x   {f'<= {GOAL_ADDED_LATENCY}x':<12}"
        f"{verdict(goals['added_latency'])}   (p99: {vs['added_p99_ratio']:.2f}x)"
    )
    emit(
        f"{'TTFE difference':<28}{vs['ttfe_diff_ms']:>+9.3f} ms   {f'<= +{GOAL_TTFE_MS:g} ms':<12}"
        f"{verdict(goals['ttfe'])}"
    )
    emit()
    busy = " ".join(
        f"{name} {paths[name]['busy_at_128']['cpu0']:.0%}/{paths[name]['busy_at_128']['cpu1']:.0%}"
        for name in TARGETS
    )
    emit(f"core0/core1 busy during @128: {busy}")
    capacity = " ".join(
        f"{name} {1000 / paths[name]['cpu_ms_per_request']:.0f}" for name in ("floor", "faregate")
    )
    emit(
        f"one-core capacity from CPU per request (req/s): {capacity}; "
        f"faregate/floor {vs['cpu_capacity_ratio']:.0%} (load-side independent view of throughput)"
    )
    if any(paths[name]["busy_at_128"]["cpu1"] > 0.90 for name in ("floor", "faregate")):
        emit(
            "  note: core 1 (simulator + load) above 90% at @128: the proxies' @128 figures are bounded by the load side"
        )
    lag = max(paths[name]["open_loop_max_lag_ms"] for name in TARGETS)
    conns = {name: paths[name]["open_loop_connections"] for name in TARGETS}
    emit(f"open loop: worst scheduling lag {lag:.1f} ms, connections used {conns}")
    foreign = " ".join(
        f"{name} {paths[name]['foreign_cores_mean']:.0%} (max {paths[name]['foreign_cores_max']:.0%})"
        for name in TARGETS
    )
    emit(
        f"other processes' CPU during the measurements, in % of one core: {foreign}; "
        f"waited {report.get('quiet_wait_s', 0):.0f} s for quiet"
    )
    if max(paths[name]["foreign_cores_mean"] for name in TARGETS) > 0.05:
        emit(
            "  note: the machine was not quiet: the figures are noisier than usual, run again when it is idle"
        )
    emit(f"elapsed {report.get('elapsed_s', 0):.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short round (about 35 s) instead of four")
    parser.add_argument("--rounds", type=int, default=None, help="number of rounds (default 4, --quick 1)")
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
        "--profile-conns", type=int, default=CONCURRENCY[-1], metavar="N", help="connections while profiling"
    )
    parser.add_argument(
        "--accounting",
        choices=("default", "off", "keys"),
        default="default",
        help="faregate as shipped (usage log, auth open), without a store (--no-store), or with auth: keys and"
        " a key with limits on every request",
    )
    parser.add_argument("--role", choices=("floor", "loadgen"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "floor":
        return run_floor(args.upstream, args.port)
    if args.role == "loadgen":
        return run_loadgen()
    plan = replace(QUICK if args.quick else FULL, accounting=args.accounting)
    if args.rounds is not None:
        plan = Plan(
            **{
                **asdict(plan),
                "rounds": max(1, args.rounds),
                "budget_s": plan.budget_s * args.rounds / plan.rounds,
            }
        )
    return orchestrate(plan, args.json, args.profile, args.profile_conns)


if __name__ == "__main__":
    sys.exit(main())
