"""Shared fixtures: the provider simulator and a gateway in front of it, both on 127.0.0.1.

`demo` builds what `faregate serve --demo` builds, in-process: a copy of the shipped routes.yaml in a
temp folder (tests may edit it to test reloads), the simulator serving every provider, and the gateway.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

# Values are frozen at run time too in tests (faregate/values.py; FAREGATE_STRICT_VALUES=0 runs them as served)
# and in every gateway they start: set before faregate is imported.
os.environ.setdefault("FAREGATE_STRICT_VALUES", "1")

from aiohttp import web
from aiohttp.test_utils import TestServer
from ruamel.yaml import YAML

from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.model import Catalog
from faregate.config.load import ConfigIssue
from faregate.paths import catalog_dir, default_routes
from faregate.pipeline import load as load_module
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server import serve as serve_module
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import Simulator, run_simulator
from tests.processes import GatewayProcess

# The parsed-catalog cache of this test run: a folder of its own, never the user's ~/.cache.
os.environ.setdefault("FAREGATE_CACHE_DIR", tempfile.mkdtemp(prefix="faregate-test-cache-"))


@pytest.fixture(autouse=True)
def reap_gateways() -> Iterator[None]:
    """Every `faregate serve` a test started (tests/processes.py) is killed with its process group at
    teardown, passed or failed: no gateway or worker is left serving a port after its test."""
    try:
        yield
    finally:
        GatewayProcess.reap_all()


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    return TokenCounter()


@pytest.fixture(scope="session", autouse=True)
def catalog_parsed_once() -> Iterator[None]:
    """Parsing the catalog's YAML is most of a demo's start-up: the server's loads parse each state of a
    catalog folder once per session (a changed file is parsed again). `Catalog` is immutable, so sharing
    it is safe; tests of the catalog loader itself call it directly and are not affected."""
    cache: dict[tuple[object, ...], tuple[Catalog, list[ConfigIssue]]] = {}

    def load(folder: Path) -> tuple[Catalog, list[ConfigIssue]]:
        key = (folder.resolve(), *((p.name, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.yaml"))))
        if key not in cache:
            cache[key] = load_catalog_dir(folder)
        catalog, issues = cache[key]
        return catalog, list(issues)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(serve_module, "load_catalog_dir", load)
        mp.setattr(load_module, "load_catalog_dir", load)
        yield


@dataclass
class Demo:
    sim: Simulator
    sim_origin: str
    runtime: Runtime
    server: TestServer
    routes_path: Path

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def base_url(self) -> str:
        """For the openai SDK: the gateway's /v1."""
        return f"{self.url}/v1"


DemoFactory = Callable[..., Awaitable[Demo]]  # the `make_demo` fixture


@pytest.fixture
def routes_copy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "routes.yaml"
    shutil.copy(default_routes(), path)
    yield path


def edit_routes(path: Path, edit: Callable[[Any], object]) -> None:
    """Round-trip edit of a routes.yaml (comments and layout kept): `edit` mutates the loaded document."""
    yaml = YAML()
    doc = yaml.load(path.read_text())
    edit(doc)
    with path.open("w") as out:
        yaml.dump(doc, out)


def set_server(path: Path, **values: float) -> None:
    """Set `server.*` values (e.g. `read_timeout_s=0.5`) in a routes.yaml copy."""
    edit_routes(path, lambda doc: doc["server"].update(values))


async def start_demo(
    routes_path: Path,
    counter: TokenCounter,
    *,
    options: ServeOptions | None = None,
    cooldown_s: float | None = None,
    without_keys: Iterable[str] = (),
    base_urls: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Demo, Callable[[], Awaitable[None]]]:
    """`without_keys`: provider key env vars left unset, so those providers are inactive; `base_urls`:
    providers pointed somewhere other than the simulator (e.g. a port nobody listens on); `env`: key
    env vars to set instead of the simulator's stand-ins."""
    sources = Sources(routes_path, catalog_dir(), {})
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, sim_urls = demo_env(sources, sim, names, origin)
    unset = set(without_keys)
    keys = {var: value for var, value in {**keys, **(env or {})}.items() if var not in unset}
    sources = replace(sources, env=keys, base_urls={**sim_urls, **(base_urls or {})})
    runtime, issues = Runtime.from_sources(sources, counter=counter, simulated=True)
    assert runtime is not None, issues
    if cooldown_s is not None:
        runtime.health.cooldown_s = cooldown_s
    app: web.Application = create_app(runtime, options or ServeOptions(watch_interval_s=0.2))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()

    async def stop() -> None:
        await server.close()
        await sim_runner.cleanup()

    return Demo(sim, origin, runtime, server, routes_path), stop


@pytest.fixture
async def demo(routes_copy: Path, counter: TokenCounter) -> AsyncIterator[Demo]:
    d, stop = await start_demo(routes_copy, counter)
    try:
        yield d
    finally:
        await stop()


@pytest.fixture
async def make_demo(routes_copy: Path, counter: TokenCounter) -> AsyncIterator[DemoFactory]:
    """`await make_demo(cooldown_s=0.3, ...)`: a demo with `start_demo`'s options, stopped after the test.
    Edit `routes_copy` first to start from a different routes.yaml (e.g. `set_server(routes_copy, ...)`)."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(**options: Any) -> Demo:
        d, stop = await start_demo(routes_copy, counter, **options)
        stops.append(stop)
        return d

    try:
        yield make
    finally:
        for stop in reversed(stops):
            await stop()
