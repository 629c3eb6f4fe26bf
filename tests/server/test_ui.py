"""The dashboard on a running gateway (`auth: keys`, a store, the simulator): login and its cookie, scoping
to a key's own traffic, CSRF, every page rendered from real requests, a key shown once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from yarl import URL

from tests.server.accounting_fixtures import ADMIN_KEY, KeyedDemo
from tests.server.ui_fixtures import Browser, send, ui  # noqa: F401  (ui: the fixture)


@pytest.fixture
async def browser(ui: KeyedDemo) -> AsyncIterator[Browser]:  # noqa: F811
    b = Browser(ui.url)
    try:
        yield b
    finally:
        await b.close()


async def test_login_sets_a_strict_http_only_expiring_session_cookie(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    status, _, resp = await browser.get("/ui", allow_redirects=False)
    assert status == 303 and resp.headers["Location"] == "/ui/login"
    async with browser.session.post(
        ui.url + "/ui/login", data={"key": ADMIN_KEY}, allow_redirects=False
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/ui/"
        cookie = resp.headers["Set-Cookie"]
    assert (
        "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie and "Path=/ui" in cookie
    )
    assert ADMIN_KEY not in cookie and ADMIN_KEY[3:20] not in cookie
    status, html, resp = await browser.get("/ui/")
    assert status == 200 and "Overview" in html and "admin" in html
    assert ADMIN_KEY not in str(resp.url) and ADMIN_KEY not in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_a_wrong_key_cannot_log_in(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    status, html, resp = await browser.login("fg_not_a_key")
    assert status == 401 and "not the admin key" in html
    assert "Set-Cookie" not in resp.headers
    status, _, resp = await browser.get("/ui/usage", allow_redirects=False)
    assert status == 303


async def test_logout_ends_the_session_server_side(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    await browser.login(ADMIN_KEY)
    cookie = browser.session.cookie_jar.filter_cookies(URL(ui.url + "/ui/"))["faregate_ui"].value
    status, _, _ = await browser.post("/ui/logout", {})
    assert status == 200  # followed to the login page
    # the old cookie, replayed, opens nothing
    headers = {"Cookie": f"faregate_ui={cookie}"}
    async with (
        aiohttp.ClientSession() as s,
        s.get(ui.url + "/ui/", headers=headers, allow_redirects=False) as r,
    ):
        assert r.status == 303


async def test_a_post_without_the_csrf_token_is_refused(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.post("/ui/logout", {}, csrf=False)
    assert status == 403 and "security token" in html
    status, _, _ = await browser.post("/ui/logout", {"csrf": "forged"}, csrf=False)
    assert status == 403
    status, _, _ = await browser.get("/ui/", allow_redirects=False)
    assert status == 200  # still logged in


async def test_overview_and_usage_show_real_requests(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    secret, _ = ui.create_key("app")
    ids = await send(ui, secret, 3)
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.get("/ui/?days=7")
    assert status == 200 and 'id="fig-requests">3<' in html and 'data-chart="spend"' in html
    status, html, _ = await browser.get("/ui/usage")
    assert status == 200 and all(f"/ui/requests/{i}" in html for i in ids)
    status, html, _ = await browser.get(f"/ui/requests/{ids[0]}")
    assert status == 200 and ids[0] in html and "Attempts" in html


async def test_a_key_sees_only_its_own_traffic(ui: KeyedDemo) -> None:  # noqa: F811
    mine, _ = ui.create_key("mine")
    other, _ = ui.create_key("other")
    my_ids = await send(ui, mine, 2)
    other_ids = await send(ui, other, 1)
    b = Browser(ui.url)
    try:
        status, _, _ = await b.login(mine)
        assert status == 200
        _, html, _ = await b.get("/ui/usage")
        assert all(i in html for i in my_ids) and other_ids[0] not in html
        _, html, _ = await b.get("/ui/")
        assert 'id="fig-requests">2<' in html
        status, _, _ = await b.get(f"/ui/requests/{other_ids[0]}")
        assert status == 404
        status, _, _ = await b.get(f"/ui/requests/{my_ids[0]}")
        assert status == 200
    finally:
        await b.close()


async def test_the_pages_figures_equal_v1_metrics_and_the_audit(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    """The overview's figures are /v1/metrics' for the same caller and period; its spend by day, model and
    provider is `faregate audit`'s spend section over the same store."""
    from faregate.audit.main import audit
    from faregate.audit.model import DEFAULT_FAIL_ON
    from faregate.audit.shapes import BUILT_IN
    from faregate.catalog.files import load_catalog_dir
    from faregate.paths import catalog_dir
    from faregate.ui import views

    secret, _ = ui.create_key("app")
    await send(ui, secret, 4)
    await send(ui, secret, 2, model="auto")
    await browser.login(ADMIN_KEY)
    _, html, _ = await browser.get("/ui/?days=30")
    async with aiohttp.ClientSession() as s:
        _, _, metrics = await ui.get(s, ADMIN_KEY, "/v1/metrics?days=30")
    spend = Decimal(metrics["exact_usd"]["total_spend"])
    baseline = Decimal(metrics["exact_usd"]["estimated_spend_without_routing"])
    assert f'id="fig-requests">{metrics["total_requests"]}<' in html
    assert f'id="fig-spend">{views.usd(spend)}<' in html
    assert f'id="fig-baseline">{views.usd(baseline)}<' in html
    assert f'id="fig-saved">{views.usd(baseline - spend)}<' in html
    rt = ui.demo.runtime
    catalog, _ = load_catalog_dir(catalog_dir())
    result = audit(
        rt.spec,
        catalog,
        ui.store,
        rt.sources.routes,
        days=30,
        tolerance=Decimal(0),
        shapes=BUILT_IN,
        only=("spend",),
        fail_on=DEFAULT_FAIL_ON,
    )
    for row in result.sections[0].rows:
        if row["by"] in ("model", "provider"):
            assert (
                f'<td>{row["value"]}</td><td class="num">{row["requests"]}</td><td class="num">{views.usd(Decimal(row["spend_usd"]))}</td>'
                in html
            )
