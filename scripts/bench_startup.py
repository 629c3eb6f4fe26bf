"""Start-up time and idle memory of `faregate serve` (issue 16: start-up <= 1 s, idle RSS <= 100 MB).

    python scripts/bench_startup.py [--rounds N] [--json FILE]

For `faregate serve` on a copy of the shipped routes.yaml and catalog (no provider keys: every provider
inactive, as a newcomer starts it) and for `faregate serve --demo`, each in a fresh temporary directory
(its own store) and spawned `--rounds` times:
  * healthz_s: from spawning the process to the first 200 on GET /healthz (polled every 5 ms);
  * ready_s: to the first 200 on GET /readyz (the decision table built; a request sent earlier waits);
  * first_request_s: to the first answered chat completion (`--demo` only: the others have no channel);
  * idle_rss_mib: VmRSS 2 s after start-up, before any request; then after one chat request (`--demo`).
Medians over the rounds. The parsed-catalog cache (`FAREGATE_CACHE_DIR`) is one folder for the whole
run, as on a machine that has started faregate before: the very first start parses the YAML. Never asserts: it prints figures and the goals next to them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench_gateway import (
    compile_bytecode,
    free_port,
    rss_mib,
    wait_healthz,
)  # this folder's: the same probes as its start column

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"healthz_s": 1.0, "idle_rss_mib": 100.0}
READY_PATH = "/readyz"
CHAT = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).encode()


def first_200(port: int, path: str, spawned: float, proc: subprocess.Popen[bytes], log: Path) -> float:
    return wait_healthz(f"http://127.0.0.1:{port}{path}", spawned, proc, log, 60)


def chat(port: int) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", CHAT, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def one_run(demo: bool, cache: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fg-startup-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "routes.yaml", work / "routes.yaml")
        shutil.copytree(ROOT / "catalog", work / "catalog")
        port = free_port()
        cmd = [sys.executable, "-m", "faregate.cli", "serve", "--config", "routes.yaml", "--port", str(port)]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "HOME": tmp}
        env["FAREGATE_CACHE_DIR"] = str(cache)  # the parsed catalog, kept from one start to the next
        spawned = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, *(["--demo"] if demo else [])],
            cwd=work,
            env=env,
            stdout=(work / "faregate.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            log = work / "faregate.log"
            out = {"healthz_s": first_200(port, "/healthz", spawned, proc, log)}
            out["ready_s"] = first_200(port, READY_PATH, spawned, proc, log)
            time.sleep(2.0)
            out["idle_rss_mib"] = rss_mib(proc.pid) or float("nan")
            if demo:
                started = time.perf_counter()
                chat(port)
                out["first_request_s"] = time.perf_counter() - started
                out["rss_after_request_mib"] = rss_mib(proc.pid) or float("nan")
            return out
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="fg-startup-cache-") as cache:
        for name, demo in (("serve (shipped routes.yaml)", False), ("serve --demo", True)):
            runs = [one_run(demo, Path(cache)) for _ in range(args.rounds)]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    keys = ["healthz_s", "ready_s", "idle_rss_mib", "first_request_s", "rss_after_request_mib"]
    print("| target | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, figures in results.items():
        cells = [f"{figures[k]:.2f}" if k in figures else "" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"goals: /healthz <= {GOALS['healthz_s']} s, idle RSS <= {GOALS['idle_rss_mib']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
