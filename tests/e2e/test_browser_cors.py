"""CORS in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright) loads a page from
another origin (a second 127.0.0.1 port) that calls the gateway with `fetch` and streams an answer.

`make check` installs Chromium when /usr/bin/chromium is missing (the Makefile's `browser` target). Without it
the test is skipped, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import DemoFactory, edit_routes

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network: no background connections, no first-run work, a fresh profile per run.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>faregate CORS</title></head>
<body><pre id="out"></pre>
<script>
window.result = null;
async function run(gateway) {
  const chunks = [];
  let text = "";
  const resp = await fetch(gateway + "/v1/chat/completions", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer browser-app", "X-Title": "Browser App"},
    body: JSON.stringify({model: "auto", stream: true, messages: [{role: "user", content: "Hello from a browser"}]}),
  });
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    chunks.push(value.length);
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const delta = JSON.parse(data).choices?.[0]?.delta?.content;
      if (delta) { text += delta; document.getElementById("out").textContent = text; }
    }
  }
  return {status: resp.status, text, reads: chunks.length,
          requestId: resp.headers.get("X-Faregate-Request-Id"), provider: resp.headers.get("X-Faregate-Provider")};
}
</script></body></html>
"""


def chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: `make check` installs it (Debian package chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium; `make browser` installs it)")


@pytest.fixture
async def page_origin() -> AsyncIterator[str]:
    """The web app's own origin: a second server on another 127.0.0.1 port."""
    app = web.Application()

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_browser_app_on_another_origin_streams_an_answer(
    page_origin: str, make_demo: DemoFactory, routes_copy: Path, tmp_path: Path
) -> None:
    executable = chromium_or_skip()
    if os.environ.get("CI") != "true":
        pytest.importorskip("playwright")
    from playwright.async_api import async_playwright

    edit_routes(routes_copy, lambda doc: doc["server"].update({"cors": {"origins": [page_origin]}}))
    demo = await make_demo()
    demo.sim.stream_delay_s = 0.03  # words arrive apart, as from a real model
    profile = tmp_path / "chromium-profile"
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await context.new_page()
            await page.goto(page_origin + "/")
            result: dict[str, Any] = await page.evaluate("gateway => run(gateway)", demo.url)
            shown = await page.inner_text("#out")
            # the same page from an origin routes.yaml does not list: the browser blocks the answer
            await page.goto(page_origin.replace("127.0.0.1", "localhost") + "/")
            blocked = await page.evaluate(
                """async gateway => { try { await fetch(gateway + "/v1/models"); return "read"; }
                                      catch (e) { return "blocked"; } }""",
                demo.url,
            )
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)
    assert result["status"] == 200
    assert result["text"].startswith("[simulated ") and shown == result["text"]
    assert result["reads"] > 1, "the answer arrived in several reads: streamed, not buffered"
    assert result["requestId"] and result["provider"]  # X-Faregate-* headers are exposed to the page
    trace = demo.runtime.recorder.get(result["requestId"])
    assert trace is not None and trace.app == "Browser App" and trace.stream
    assert blocked == "blocked"
