"""Benchmark the per-request accounting path: what the gateway does once an answer is in.

    python scripts/bench_accounting.py [--requests N] [--repeats R] [--against REV] [--profile]

For N synthetic requests on the shipped routes.yaml and catalog (every provider assumed keyed), times what
`server/endpoint.py` calls after the upstream answered: `charge` (cost, savings, the `x-faregate`
extras), `response_headers`, `record` (the one `RequestRecord`), `settle` (the budget, then the recorder:
scrubbing, the usage log's row and its journal line, Prometheus), and then the usage log's batch commit,
which runs in a thread while serving (its CPU counts all the same: it holds the GIL). Three shapes:
`plain` (a non-streamed chat answer, no key: the shipped set-up), `stream` (its row journaled
provisionally before the closing events, then recorded) and `budget` (a key with a budget: a ticket held
and settled).

Figures are CPU µs per request of this thread (`time.thread_time`), the best of R repeats: `answer`
(charge + headers: before the answer's bytes), `settle` (record + settle), `commit` (the batch commits)
and their total. `--against REV` exports `src/` of a git revision (e.g. `main`) and runs the same
measurement on it in a subprocess, in the same run, and prints this tree's figures as ratios of its.
Never asserts. `--profile` prints a cProfile of one repeat of `plain`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHAPES = ("plain", "stream", "budget")
PARTS = ("answer", "settle", "commit")


def measure(requests: int, repeats: int, profile: bool) -> dict[str, dict[str, float]]:
    """CPU µs per request of each part, per shape: the best of `repeats`."""
    from faregate.accounting.record import Attempt
    from faregate.canonical import ChatRequest, Message, TextPart, Usage
    from faregate.paths import catalog_dir, default_routes
    from faregate.pipeline.accounts import Accounts
    from faregate.pipeline.execute import Trace
    from faregate.pipeline.load import Sources, load
    from faregate.pipeline.runtime import Runtime
    from faregate.pipeline.settle import (
        Ended,
        Exchange,
        charge,
        provisional,
        record,
        response_headers,
        settle,
    )
    from faregate.routing.features import extract_features
    from faregate.routing.plan import build_plan

    loaded, issues, _ = load(Sources(default_routes(), catalog_dir(), os.environ, assume_keys=True))
    if loaded is None:
        raise SystemExit(f"the shipped routes.yaml does not load: {issues}")
    table = loaded.table
    tmp = Path(tempfile.mkdtemp(prefix="faregate-bench-accounting-"))
    accounts = Accounts(tmp / "store.db")
    rt = Runtime(Sources(default_routes(), catalog_dir(), os.environ), loaded, accounts=accounts)
    req = ChatRequest(model="auto", messages=(Message("user", (TextPart("Say something short"),)),))
    f = extract_features(req, lambda _: 12, {}, None)
    f.prompt_tokens  # noqa: B018  (counted, as a prompt_tokens rule would)
    plan = build_plan(table, req.model, f)
    ch = plan.entries[0].channel
    trace = Trace(attempts=(Attempt(ch.id, ch.provider, 200, "ok", 1.25),))
    usage = Usage(12, 48)
    secret, key = accounts.keys.create("bench", budget_usd=Decimal("1000"))
    del secret
    usage_log = accounts.usage
    ended = Ended(200, None, "stop")

    def one(n: int, shape: str, clock: Callable[[], float], spent: list[float]) -> None:
        ex = Exchange(
            id=f"{shape}-{n:08d}",
            endpoint="chat",
            created=time.time(),
            started=time.perf_counter(),
            key=key if shape == "budget" else None,
        )
        ticket = None
        if shape == "budget":
            ticket = accounts.limits.admit(
                key, time.monotonic(), prompt_tokens=12, worst_cost_usd=Decimal("0.01")
            )
            usage_log.hold(
                ex.id,
                key_id=key.id,
                reserved_usd=ticket.reserved_usd,
                created=ex.created,
                endpoint=ex.endpoint,
                alias="auto",
            )
        t0 = clock()
        charged = charge(rt, ex, ch, usage, plan, trace, ticket, baseline=table.baseline)
        response_headers(ex, ch, plan, None if shape == "stream" else charged.cost)
        t1 = clock()

        def row() -> Any:
            return record(
                ex,
                requested="auto",
                stream=shape == "stream",
                features=f,
                plan=plan,
                trace=trace,
                charged=charged,
                ended=ended,
                ttft_ms=1.0 if shape == "stream" else None,
            )

        if shape == "stream":
            provisional(rt, row())
        settle(rt, ticket, charged, row())
        t2 = clock()
        spent[0] += t1 - t0
        spent[1] += t2 - t1

    results: dict[str, dict[str, float]] = {}
    for shape in SHAPES:
        best: dict[str, float] = {}
        for r in range(repeats):
            spent = [0.0, 0.0, 0.0]
            clock = time.thread_time
            prof = cProfile.Profile() if profile and shape == "plain" and r == repeats - 1 else None
            if prof is not None:
                prof.enable()
            for n in range(requests):
                one(r * requests + n, shape, clock, spent)
                if (n + 1) % usage_log.batch_size == 0:  # what the writer thread does while serving
                    t = clock()
                    usage_log.flush()
                    spent[2] += clock() - t
            t = clock()
            usage_log.flush()
            spent[2] += clock() - t
            if prof is not None:
                prof.disable()
                pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
            figures = dict(zip(PARTS, (s / requests * 1e6 for s in spent), strict=True))
            figures["total"] = sum(figures.values())
            if not best or figures["total"] < best["total"]:
                best = figures
        results[shape] = best
    usage_log.close()
    return results


def export(rev: str) -> Path:
    """`src/` of `rev` with the files it ships (schemas, catalog, routes.yaml), in a temporary directory."""
    paths = ["src", "schemas", "catalog", "routes.yaml"]
    archive = subprocess.run(
        ["git", "archive", rev, *paths], cwd=REPO, check=True, capture_output=True
    ).stdout
    where = Path(tempfile.mkdtemp(prefix="faregate-bench-rev-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where / "src"


def run_at(src: Path, requests: int, repeats: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [
        sys.executable,
        __file__,
        "--role",
        "measure",
        "--requests",
        str(requests),
        "--repeats",
        str(repeats),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"measuring {src} failed:\n{done.stderr}")
    out = done.stdout
    result: dict[str, dict[str, float]] = json.loads(out)
    return result


def table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(rows)
    lines = ["| shape | tree | " + " | ".join(f"{p} µs/req" for p in (*PARTS, "total")) + " |"]
    lines.append("|---|---|" + "---:|" * (len(PARTS) + 1))
    for shape in SHAPES:
        for name in names:
            fig = rows[name][shape]
            cells = " | ".join(f"{fig[p]:.1f}" for p in (*PARTS, "total"))
            lines.append(f"| {shape} | {name} | {cells} |")
        if len(names) == 2:
            base, this = rows[names[0]][shape], rows[names[1]][shape]
            ratios = " | ".join(f"{this[p] / base[p]:.2f}x" if base[p] else "-" for p in (*PARTS, "total"))
            lines.append(f"| {shape} | ratio | {ratios} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000, help="synthetic requests per shape and repeat")
    ap.add_argument("--repeats", type=int, default=5, help="repeats; the best is reported")
    ap.add_argument("--against", default=None, help="a git revision to measure in the same run (e.g. main)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one repeat of `plain`")
    ap.add_argument("--role", choices=("measure",), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "measure":
        print(json.dumps(measure(args.requests, args.repeats, False)))
        return 0
    rows: dict[str, dict[str, dict[str, float]]] = {}
    if args.against:
        rows[args.against] = run_at(export(args.against), args.requests, args.repeats)
    rows["this tree"] = run_at(REPO / "src", args.requests, args.repeats) if args.against else {}
    if not args.against:
        rows["this tree"] = measure(args.requests, args.repeats, args.profile)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
