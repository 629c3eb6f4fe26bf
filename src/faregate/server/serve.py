"""Run the gateway: bind, load, serve until SIGTERM/SIGINT, reload on SIGHUP, shut down gracefully.

The port opens first, then the decision table is built (off the event loop): `/healthz` answers at once
(`status: loading` until the table is in), `/readyz` says 503 until then, and any other request that
comes early waits for the table (`server/startup.py`), never a 5xx. `--demo` first starts the built-in
provider simulator on a loopback port and points every provider's base_url at it, with a stand-in key
per provider, so the shipped routes.yaml works with no real keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

import faregate.server.eventloop as eventloop
import faregate.server.heap as heap
import faregate.server.lifeline as lifeline
import faregate.server.shared_state as shared_state
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.merge import merge
from faregate.catalog.model import Catalog
from faregate.config.build import RoutesRead
from faregate.config.load import ConfigIssue
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.load import Loaded, SourcesRead, load, read_sources
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.middleware import is_loopback
from faregate.server.options import ServeOptions
from faregate.server.protocol_log import ProtocolLogger
from faregate.state.open import state_url
from faregate.values import frozen

if TYPE_CHECKING:
    from faregate.simulator import Simulator

log = logging.getLogger("faregate")
SHUTDOWN_TIMEOUT_S = 30.0  # for the handlers in flight
STOP_DEADLINE_S = SHUTDOWN_TIMEOUT_S + 10.0  # the whole stop, the usage log's last write included


@frozen
class StartError(Exception):
    issues: tuple[ConfigIssue, ...] = ()
    message: str = ""

    def __str__(self) -> str:
        return self.message or "\n".join(map(str, self.issues))


def demo_simulator(
    sources: Sources, counter: TokenCounter, *, read: SourcesRead | None = None
) -> tuple[Simulator, tuple[str, ...]]:
    """A simulator serving every provider of the table, with routes.yaml's offerings and prices over the
    shipped catalog's (as if every provider had a key); `read`: the sources as read already (a start reads
    them once, for this and its first table). Imported here: a gateway without `--demo` never loads it."""
    from faregate.simulator import SimModel, SimProvider, Simulator

    read = read or read_sources(replace(sources, store=None))
    if read.routes.spec is None:
        raise StartError(tuple(read.routes.issues))
    merged = merge(read.routes.spec, read.shipped)
    providers = []
    for name, info in merged.providers.items():
        models = tuple(
            SimModel(
                o.upstream_id,
                o.name or o.model_id,
                o.kind,
                o.context,
                o.price.input,
                o.price.output,
                responses_only=o.api == "openai-responses",
            )
            for o in merged.offerings
            if o.provider == name and o.price is not None and not o.retired
        )
        providers.append(SimProvider(name, info.api, info.listing or "openai", models))
    return Simulator(providers, counter.count_text), tuple(p.name for p in providers)


def demo_env(
    sources: Sources, sim: Simulator, names: tuple[str, ...], origin: str, *, shipped: Catalog | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Stand-in keys for every provider (the simulator checks they are sent) and simulator base URLs;
    `shipped`: the shipped catalog as read already."""
    catalog = shipped or load_catalog_dir(sources.catalog_dir)[0]
    env = {var: f"sim-key-{p.name}" for p in catalog.providers.values() for var in p.api_key_env}
    base_urls = {name: sim.base_url(origin, name) for name in names}
    return env, base_urls


async def serve(
    config: Path,
    catalog_dir: Path,
    options: ServeOptions,
    env: Mapping[str, str],
    *,
    demo: bool = False,
    store: Path | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    routes: RoutesRead | None = None,
) -> None:
    """`routes`: `config` as the caller has read it already (else it is read with the catalog)."""
    if options.auth == "open" and not is_loopback(options.host):
        raise StartError(
            message=f"auth: open is allowed only on a loopback address, not {options.host}: use auth: keys"
        )
    counter = TokenCounter()  # each encoding loads on the first count that needs it, not at start-up
    sources = Sources(config, catalog_dir, dict(env), store=store)
    accounts = Accounts(store) if store is not None else None
    # The table is built once the port is open (`_load_table`); until then the runtime is pending.
    runtime = Runtime(sources, None, counter=counter, simulated=demo, accounts=accounts)
    shared_state.attach(runtime, state_url(options.state, env))
    app = create_app(runtime, replace(options, simulated=demo))
    # handler_cancellation: a client that hangs up cancels its handler, and with it the upstream call.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        access_log=None,
        handler_cancellation=True,
        logger=ProtocolLogger(),  # a client's malformed request: one line, no traceback
    )
    await runner.setup()
    # A worker of `serve --workers N` shares its port with the others (SO_REUSEPORT).
    reuse_port = options.worker.supervised or None
    site = web.TCPSite(runner, options.host, options.port, reuse_address=True, reuse_port=reuse_port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (options.host, options.port)
    log.info("listening on http://%s:%s: building the decision table", bound[0], bound[1])

    def announce() -> None:
        """Once the table serves: what scripts and people wait for."""
        log.info("faregate serving on http://%s:%s (%s)", bound[0], bound[1], "demo" if demo else config)
        print(
            f"faregate: {f'worker {options.worker.id} ' if options.worker.supervised else ''}serving on"
            f" http://{bound[0]}:{bound[1]}" + (" (demo: simulated providers)" if demo else ""),
            flush=True,
        )

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    stopper = lifeline.Stopper(stop, STOP_DEADLINE_S)
    if lifeline.install(loop, stopper):
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(runtime.reload()))
    supervisor = options.worker.supervisor
    orphan_watch = (
        asyncio.create_task(lifeline.watch_supervisor(supervisor, stopper))
        if supervisor is not None
        else None
    )
    if ready is not None:
        ready.set()
    sim_runners: list[web.AppRunner] = []
    failed: list[StartError] = []
    loading = asyncio.create_task(
        _load_table(runtime, sources, demo, sim_runners, failed, stop, announce, routes)
    )
    try:
        await stop.wait()
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        loading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loading
        log.info("shutting down: finishing requests in flight")
        await runner.cleanup()  # stops accepting, waits for handlers, then runs cleanup contexts
        for sim_runner in sim_runners:
            await sim_runner.cleanup()
        lifeline.uninstall(loop, signal.SIGHUP)
    if failed:
        raise failed[0]


async def _load_table(
    runtime: Runtime,
    sources: Sources,
    demo: bool,
    sim_runners: list[web.AppRunner],
    failed: list[StartError],
    stop: asyncio.Event,
    announce: Callable[[], None],
    routes: RoutesRead | None,
) -> None:
    """Build the first decision table (and, for the demo, the simulator it points at) off the event loop,
    then install it: the requests that came meanwhile go on. A table that cannot be built stops the server
    (`serve` raises the error once it has shut down). `routes`: routes.yaml as the command read it."""
    loaded: Loaded | None = None
    try:
        read = await asyncio.to_thread(read_sources, sources, routes)  # once, for the simulator and the table
        if demo:
            sim, names = await asyncio.to_thread(demo_simulator, sources, runtime.counter, read=read)
            from faregate.simulator import run_simulator

            sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
            sim_runners.append(sim_runner)
            keys, base_urls = demo_env(sources, sim, names, origin, shipped=read.shipped)
            sources = replace(sources, env={**sources.env, **keys}, base_urls=base_urls)
            log.info("demo: provider simulator on %s (every answer is simulated)", origin)
        loaded, issues, _ = await asyncio.to_thread(load, sources, read=read)
        if loaded is None:
            raise StartError(tuple(issues))
    except StartError as e:
        failed.append(e)
    except Exception as e:  # the demo's simulator could not bind, a catalog folder vanished, ...
        log.exception("cannot build the decision table")
        failed.append(StartError(message=str(e)))
    if failed or loaded is None:
        runtime.failed_to_start(str(failed[0]) if failed else "no table")
        stop.set()
        return
    runtime.install(loaded, sources)
    log.debug("froze %d start-up objects out of the collector's reach", heap.freeze_startup())
    for provider, why in loaded.table.inactive.items():
        log.warning("provider %s inactive: %s", provider, why)
    runtime.log_warnings()
    announce()


def run(
    config: Path,
    catalog_dir: Path,
    options: ServeOptions,
    env: Mapping[str, str],
    *,
    demo: bool,
    store: Path | None,
    routes: RoutesRead | None = None,
) -> int:
    if not lifeline.tie_to_supervisor(options.worker.supervisor):
        print(f"faregate: worker {options.worker.id}: the supervisor is gone; not starting", file=sys.stderr)
        return 1
    factory = eventloop.uvloop_factory()
    log.info("event loop: %s", eventloop.loop_name(factory))
    try:
        eventloop.run(
            serve(config, catalog_dir, options, env, demo=demo, store=store, routes=routes), factory
        )
    except StartError as e:
        print(f"faregate: cannot start:\n{e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"faregate: cannot start: {e}", file=sys.stderr)
        return 1
    return 0
