"""`scripts/bench_gateway.py` runs end to end (tiny windows) and reports every figure of its table.

No figure is asserted on: only that the run completes, every path answered, and the report has its shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_the_fast_upstream_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench_gateway.py"),
            "--mode",
            "fast",
            "--tiny",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (report,) = json.loads(out.read_text())["modes"]
    assert report["mode"] == "fast"
    assert set(report["paths"]) == {"upstream", "floor", "faregate"}
    for name, path in report["paths"].items():
        assert path["rps"] > 0, name
        assert path["errors"] == 0, name
        assert path["idle_rss_mib"] > 0, name
    assert report["paths"]["faregate"]["start_s"] > 0
    assert set(report["faregate_vs_floor"]) == set(report["goals_met"])
    assert "bare aiohttp proxy on uvloop (the floor)" in done.stdout
