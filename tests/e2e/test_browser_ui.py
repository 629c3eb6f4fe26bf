"""The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright, as in
test_browser_cors.py) logs in, watches requests arrive in the usage log without a reload, opens a trace,
filters, sees the chart's days, creates a key once and revokes it.

Screenshots of each page at desktop and phone width go to $FAREGATE_SCREENSHOTS when it is set (the README's
images under docs/screenshots/ are made so: `FAREGATE_SCREENSHOTS=docs/screenshots pytest tests/e2e/test_browser_ui.py`),
else to the test's temp folder, so a test run never changes the work tree.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.accounting.tokens import TokenCounter
from tests.e2e.test_browser_cors import CHROMIUM_ARGS, chromium_or_skip
from tests.server.accounting_fixtures import ADMIN_KEY, KeyedDemo, chat_body
from tests.server.ui_fixtures import send, start_ui_demo

DESKTOP: Any = {"width": 1280, "height": 900}  # Playwright's ViewportSize
PHONE: Any = {"width": 390, "height": 844}
WAIT_MS = 15_000  # how long the browser may take to show what the server already has (not a timing claim)


@pytest.fixture
async def ui(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[KeyedDemo]:
    kd, stop = await start_ui_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FAREGATE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shoot(page: Any, folder: Path, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.wait_for_timeout(300)  # the charts refit to the new width (a resize handler, debounced)
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def test_the_dashboard_in_a_browser(ui: KeyedDemo, tmp_path: Path) -> None:
    executable = chromium_or_skip()
    if os.environ.get("CI") != "true":
        pytest.importorskip("playwright")
    from playwright.async_api import async_playwright, expect

    folder = shots_dir(tmp_path)
    app_secret, app_key = ui.create_key("app")
    other_secret, _ = ui.create_key("other")
    first = await send(ui, app_secret, 2)
    await send(ui, app_secret, 1, model="auto")
    other_ids = await send(ui, other_secret, 1)
    profile = tmp_path / "chromium-profile"
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=DESKTOP
        )
        try:
            page = await context.new_page()
            await page.goto(ui.url + "/ui/")
            await expect(page).to_have_url(ui.url + "/ui/login")
            await shoot(page, folder, "login")

            # a wrong key cannot log in
            await page.fill("#key", "fg_wrong")
            await page.click("button[type=submit]")
            await expect(page.locator("#login-error")).to_be_visible()

            # the admin key logs in; the cookie's flags
            await page.fill("#key", ADMIN_KEY)
            await page.click("button[type=submit]")
            await expect(page.locator("h1")).to_have_text("Overview")
            cookies = {c["name"]: c for c in await context.cookies(ui.url + "/ui/")}
            session = cookies["faregate_ui"]
            assert session["httpOnly"] and session["sameSite"] == "Strict" and session["expires"] > 0
            assert ADMIN_KEY not in session["value"] and ADMIN_KEY not in page.url

            # the chart has the chosen period's days
            await page.select_option("#days", "7")
            await page.click("form.period button")
            chart = page.locator("#spend-chart")
            await expect(chart).to_have_attribute("data-points", "7", timeout=WAIT_MS)
            await expect(chart.locator("canvas")).to_have_count(1)
            await expect(page.locator("#fig-requests")).to_have_text("4")
            await shoot(page, folder, "overview")
            # the overview's figures follow new requests without a reload
            marker = await page.evaluate("() => (window.__same_page = Math.random())")
            await send(ui, app_secret, 1)
            await expect(page.locator("#fig-requests")).to_have_text("5", timeout=WAIT_MS)
            await expect(chart).to_have_attribute("data-points", "7")  # redrawn with the swapped-in data
            assert await page.evaluate("() => window.__same_page") == marker

            # the usage log updates without a reload
            await page.goto(ui.url + "/ui/usage")
            rows = page.locator("table.usage tbody tr[data-request-id]")
            await expect(rows).to_have_count(5)
            marker = await page.evaluate("() => (window.__same_page = Math.random())")
            more = await send(ui, app_secret, 2)
            await expect(rows).to_have_count(7, timeout=WAIT_MS)
            assert await page.evaluate("() => window.__same_page") == marker  # no reload happened
            await expect(rows.first).to_have_attribute("data-request-id", more[-1])  # newest first
            await shoot(page, folder, "usage")

            # filter by model
            await page.select_option("#f-model", "openai/gpt-6-luna")
            await page.click("form.filters button[type=submit]")
            await expect(page).to_have_url(re.compile(r"/ui/usage\?.*model=openai%2Fgpt-6-luna"))
            models = await page.locator("table.usage tbody tr td:nth-child(4)").all_inner_texts()
            assert models and set(models) == {"openai/gpt-6-luna"}

            # open one trace
            await page.click(f"a[href='/ui/requests/{first[0]}']")
            await expect(page.locator("h1")).to_contain_text(first[0])
            await expect(page.locator("#trace-attempts tbody tr")).to_have_count(1)
            await shoot(page, folder, "trace")

            for name in ("models", "routes", "keys", "audit"):
                await page.goto(f"{ui.url}/ui/{name}")
                await expect(page.locator("h1")).to_be_visible()
                await shoot(page, folder, name)

            # create a key: shown once
            await page.goto(ui.url + "/ui/keys")
            await page.fill("#new-label", "browser-made")
            await page.fill("#new-rpm", "100")
            await page.click("#create-key button[type=submit]")
            secret = (await page.locator("#new-secret").inner_text()).strip()
            assert secret.startswith("fg_")
            await shoot(page, folder, "key-created")
            await page.goto(ui.url + "/ui/keys")
            assert secret not in await page.content()
            async with aiohttp.ClientSession() as s:
                status, _, _ = await ui.post(s, secret, chat_body())
                assert status == 200
                # revoke it: its next request gets 401
                key_id = ui.accounts.keys.authenticate(secret).id  # type: ignore[union-attr]
                await page.click(f"#revoke-{key_id} button")
                await expect(page.locator(f"#key-{key_id} .revoked")).to_be_visible()
                status, _, _ = await ui.post(s, secret, chat_body())
                assert status == 401

            # log out; a key's own login sees only its own rows
            await page.click("header form.who button")
            await expect(page).to_have_url(ui.url + "/ui/login")
            await page.fill("#key", other_secret)
            await page.click("button[type=submit]")
            await page.goto(ui.url + "/ui/usage")
            ids = await page.locator("table.usage tbody tr[data-request-id]").evaluate_all(
                "rows => rows.map(r => r.dataset.requestId)"
            )
            assert ids == other_ids
            del app_key
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)
