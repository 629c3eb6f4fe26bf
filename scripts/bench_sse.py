"""SSE decoder linearity: one big event fed in 64 KiB chunks, for doubling sizes.

    PYTHONPATH=src python3 scripts/bench_sse.py [--sizes-mb 6.25,12.5,25,50] [--chunk 65536]

Prints seconds per size, bytes searched per byte fed, and the time ratio to the previous size: a
linear decoder doubles (ratio ~2), a quadratic one quadruples.
"""

from __future__ import annotations

import argparse
import time

from faregate.providers.sse import SseDecoder


def run(mb: float, chunk: int) -> tuple[float, float]:
    n = int(mb * 1024 * 1024)
    raw = b"data: " + b"x" * n + b"\n\n"
    decoder = SseDecoder(max_event_bytes=len(raw) * 2)
    events = 0
    t = time.perf_counter()
    for i in range(0, len(raw), chunk):
        events += len(decoder.feed(raw[i : i + chunk]))
    elapsed = time.perf_counter() - t
    assert events == 1
    return elapsed, decoder.scanned / len(raw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes-mb", default="6.25,12.5,25,50")
    ap.add_argument("--chunk", type=int, default=65536)
    args = ap.parse_args()
    prev = None
    print(f"{'MB':>6} {'seconds':>8} {'scans/byte':>10} {'ratio':>6}")
    for mb in (float(s) for s in args.sizes_mb.split(",")):
        secs, scans = run(mb, args.chunk)
        ratio = "" if prev is None else f"{secs / prev:.2f}"
        print(f"{mb:>6} {secs:>8.3f} {scans:>10.3f} {ratio:>6}")
        prev = secs


if __name__ == "__main__":
    main()
