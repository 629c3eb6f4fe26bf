"""The provider simulator as a standalone process, for `scripts/bench_gateway.py`.

    python scripts/_bench_sim.py [--port P] [--config routes.yaml]

Serves every provider of the routes.yaml (default: the shipped one) and catalog, exactly as
`faregate serve --demo` does in-process, on 127.0.0.1. When it listens it prints one JSON line on
stdout: `{"origin", "base_urls": {provider: url}, "env": {KEY_VAR: stand-in key}}`, then serves
until SIGTERM/SIGINT. The simulator records every request it receives (for tests); here that log
is emptied every second so memory stays flat under load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path

from faregate.accounting.tokens import TokenCounter
from faregate.paths import catalog_dir, default_routes
from faregate.pipeline.runtime import Sources
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import run_simulator


async def main(port: int, config: Path) -> None:
    sources = Sources(config, catalog_dir(), {})
    sim, names = demo_simulator(sources, TokenCounter())
    runner, origin = await run_simulator(sim, "127.0.0.1", port)
    env, base_urls = demo_env(sources, sim, names, origin)
    print(json.dumps({"origin": origin, "base_urls": base_urls, "env": env}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            sim.reset_received()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the faregate provider simulator standalone.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--config", type=Path, default=None, help="routes.yaml (default: the shipped one)")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.config or default_routes()))
