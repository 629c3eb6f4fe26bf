"""The fault matrix: a misbehaving upstream of our own (tests/server/fake_upstream.py) as the first channel
of the plan, the simulator as the second, streaming and not.

Each fault ends in a fallback (when nothing reached the client yet) or in the documented error within
its configured bound; `/healthz` keeps answering within 50 ms; nothing is logged as a traceback; the
usage row says what happened; a channel that broke a stream is cooling down afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from faregate.accounting.record import RequestRecord
from faregate.catalog.files import load_catalog_dir
from faregate.paths import catalog_dir
from tests.conftest import Demo, DemoFactory, set_server
from tests.server.fake_upstream import FakeUpstream

FIRST = (
    "openrouter"  # the `auto` route's everything-else rule tries it first; any other channel is the fallback
)
BOUNDS: dict[str, float] = {
    "read_timeout_s": 3,  # the gap between reads: a 1 byte/s drip never trips it
    "first_byte_timeout_s": 1,
    "total_timeout_s": 1.5,
    "stream_idle_timeout_s": 1,
    "stream_total_timeout_s": 3,
    "request_timeout_s": 8,
    "max_response_bytes": 1 << 20,
    "max_event_bytes": 1 << 20,
}
BOUND_S = 6.0  # generous: every case's own limit is at most 3 s
HEALTHZ_MS = 50.0  # the longest the gateway's event loop may be held by work (CPU ms): /healthz's bound
HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    f = await FakeUpstream().start()
    yield f
    await f.stop()


@pytest.fixture
async def gw(routes_copy: Any, make_demo: DemoFactory, fake: FakeUpstream) -> Demo:
    set_server(routes_copy, **BOUNDS)
    demo = await make_demo(base_urls={FIRST: fake.base_url})
    demo.runtime.counter.warm()  # the first count loads an encoding (once per process): not a fault's cost
    return demo


class HealthProbe:
    """While a case runs: asks `/healthz` every 10 ms from a thread of its own (every answer must be 200),
    and watches the event loop the gateway runs on for work that holds it.

    What is asserted is `blocked_ms`: the most CPU time the loop's thread spent between two ticks of a
    10 ms timer, i.e. the longest the loop was kept from answering by work (a 50 MB event parsed in one
    step, a quadratic decoder, a tokenizer on a huge text). It is CPU time of that thread
    (`time.thread_time`), so a loaded machine that deschedules the process, or another thread holding the
    GIL, does not count: `worst_ms`, the slowest `/healthz` round trip by the clock, does include those
    (a cold first run on a busy machine once saw it past 50 ms with the gateway idle), so it is reported,
    not asserted. A wait that uses no CPU (blocking I/O on the loop) is not what this measures."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.url, self.worst_ms, self.samples, self.blocked_ms = url, 0.0, 0, 0.0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthProbe:
        self._ticker = asyncio.create_task(self._tick())
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 5)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        assert self.samples > 0 and not self.failures, self.failures

    async def _tick(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(0.01)
            now = time.thread_time()
            self.blocked_ms = max(self.blocked_ms, (now - last) * 1000)
            last = now

    def _run(self) -> None:
        u = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=5)
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failures.append(f"/healthz answered {resp.status}")
                self.worst_ms = max(self.worst_ms, (time.perf_counter() - t) * 1000)
                self.samples += 1
                self._stop.wait(0.01)
        except OSError as e:
            self.failures.append(f"/healthz: {e!r}")
        finally:
            conn.close()


async def chat(session: aiohttp.ClientSession, gw: Demo, stream: bool) -> tuple[int, str, str, float]:
    """(status, request id, body text, seconds) of one `auto` chat request."""
    t = time.perf_counter()
    async with session.post(gw.url + "/v1/chat/completions", json={**HELLO, "stream": stream}) as r:
        text = (await r.read()).decode()
        return r.status, r.headers["X-Faregate-Request-Id"], text, time.perf_counter() - t


async def row(gw: Demo, rid: str) -> RequestRecord:
    for _ in range(100):
        rec = gw.runtime.recorder.get(rid)
        if rec is not None:
            return rec
        await asyncio.sleep(0.01)
    raise AssertionError(f"no usage row for {rid}")


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


FALLBACK = [
    ("status:500", False, "status"),
    ("status:503", True, "status"),
    ("status:429", False, "status"),
    ("hang_headers", False, "timeout"),
    ("hang_headers", True, "timeout"),
    ("stall_headers", False, "timeout"),
    ("stall_headers", True, "timeout"),
    ("drip", False, "timeout"),
    ("reset_mid_body", False, "protocol"),
    ("close_mid_stream", False, "protocol"),
    ("malformed", False, "protocol"),
    ("big_body", False, "protocol"),
    ("big_event", True, "protocol"),
]


@pytest.mark.parametrize(
    ("mode", "stream", "outcome"), FALLBACK, ids=[f"{m}-{'sse' if s else 'json'}" for m, s, _ in FALLBACK]
)
async def test_a_fault_before_the_answer_falls_back_in_bounded_time(
    gw: Demo, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, mode: str, stream: bool, outcome: str
) -> None:
    fake.mode = mode
    async with aiohttp.ClientSession() as s, HealthProbe(s, gw.url) as probe:
        status, rid, text, secs = await chat(s, gw, stream)
    assert status == 200, text
    assert secs < BOUND_S
    assert probe.blocked_ms < HEALTHZ_MS, f"the event loop was held {probe.blocked_ms:.0f} ms"
    rec = await row(gw, rid)
    assert rec.status == 200 and rec.provider != FIRST
    assert [(a.provider, a.outcome) for a in rec.attempts] == [(FIRST, outcome), (rec.provider, "ok")]
    assert gw.runtime.health.cooling(rec.plan[0], time.monotonic())
    if stream:
        assert "[DONE]" in text
    no_tracebacks(caplog)


BROKEN = ["drip", "reset_mid_body", "close_mid_stream", "malformed", "big_body"]


@pytest.mark.parametrize("mode", BROKEN)
async def test_a_stream_that_breaks_after_it_started_is_a_channel_failure(
    gw: Demo, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """The first event reached the client, so no fallback: the stream ends with an error event, the row
    says 502 and why, the attempt is not `ok`, and the channel cools down (the next request skips it)."""
    fake.mode = mode
    async with aiohttp.ClientSession() as s, HealthProbe(s, gw.url) as probe:
        status, rid, text, secs = await chat(s, gw, True)
        assert status == 200 and '"hel"' in text and '"error"' in text, text
        assert secs < BOUND_S
        rec = await row(gw, rid)
        assert rec.status == 502 and rec.error, rec
        assert len(rec.attempts) == 1 and rec.attempts[0].outcome.startswith("dropped"), rec.attempts
        assert gw.runtime.health.cooling(rec.plan[0], time.monotonic())
        status, rid, text, _ = await chat(s, gw, True)
    assert status == 200 and "[DONE]" in text
    assert probe.blocked_ms < HEALTHZ_MS, f"the event loop was held {probe.blocked_ms:.0f} ms"
    nxt = await row(gw, rid)
    assert len(nxt.attempts) == 1 and nxt.attempts[0].provider != FIRST
    no_tracebacks(caplog)


async def test_retry_after_sets_the_cooldown(gw: Demo, fake: FakeUpstream) -> None:
    fake.mode, fake.retry_after = "status:429", "120"
    async with aiohttp.ClientSession() as s:
        status, rid, _, _ = await chat(s, gw, False)
    assert status == 200
    rec = await row(gw, rid)
    left = gw.runtime.health.cooldown_left_s(rec.plan[0], time.monotonic())
    assert 100 < left <= 120  # the upstream's 120 s, not the 30 s default


async def test_retry_after_is_capped(gw: Demo, fake: FakeUpstream) -> None:
    fake.mode, fake.retry_after = "status:503", "86400"
    async with aiohttp.ClientSession() as s:
        await chat(s, gw, False)
    cid = next(c for c in gw.runtime.holder.current.table.channels.values() if c.provider == FIRST).id
    assert gw.runtime.health.cooldown_left_s(cid, time.monotonic()) <= 300


async def test_every_channel_timing_out_is_a_504_within_the_request_deadline(
    routes_copy: Any, make_demo: DemoFactory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Both channels drip: each attempt ends at its total deadline, then the documented 504."""
    set_server(routes_copy, **{**BOUNDS, "request_timeout_s": 2.5})
    everyone = {name: fake.base_url for name in load_catalog_dir(catalog_dir())[0].providers}
    gw = await make_demo(base_urls=everyone)
    fake.mode = "drip"
    async with aiohttp.ClientSession() as s:
        status, rid, text, secs = await chat(s, gw, False)
    assert status == 504, text
    assert "the request deadline passed" in text
    assert secs < BOUND_S
    rec = await row(gw, rid)
    assert rec.status == 504 and rec.cost_usd == 0
    assert [a.outcome for a in rec.attempts] == ["timeout", "timeout"]  # the deadline cut the second
    no_tracebacks(caplog)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_client_that_hangs_up_cancels_its_upstream_call(
    gw: Demo, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    """The upstream connection closes as soon as the client leaves; the row says 499, not 200."""
    fake.mode = "drip" if stream else "stall_headers"
    async with aiohttp.ClientSession() as s:
        task = asyncio.create_task(chat(s, gw, stream))
        for _ in range(200):
            if fake.open:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2 if not stream else 0.5)  # a stream: its first event reached the client
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await fake.wait_closed(BOUNDS["first_byte_timeout_s"] / 2)  # well before any deadline of ours
    recs = [r for r in _all_rows(gw)]
    assert recs and recs[-1].status == 499, recs
    assert recs[-1].error == "the client closed the connection" or "went away" in (recs[-1].error or "")
    no_tracebacks(caplog)


def _all_rows(gw: Demo) -> list[RequestRecord]:
    inner = gw.runtime.recorder.inner.inner  # type: ignore[attr-defined]
    return list(inner.all())
