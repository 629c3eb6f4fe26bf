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
        rt.holder.current.spec,
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


async def test_pages_for_the_admin_only(ui: KeyedDemo) -> None:  # noqa: F811
    secret, _ = ui.create_key("mine")
    b = Browser(ui.url)
    try:
        await b.login(secret)
        for path in ("/ui/routes", "/ui/keys", "/ui/audit"):
            status, html, _ = await b.get(path)
            assert status == 403 and "admin key only" in html, path
        status, html, _ = await b.get("/ui/models")
        assert status == 200 and 'id="sync-form"' not in html
        status, _, _ = await b.post("/ui/keys", {"label": "sneaky"})
        assert status == 403
        assert [k.label for k in ui.accounts.keys.list()] == ["mine"]
    finally:
        await b.close()


async def test_models_page_lists_offerings_and_runs_a_sync(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.get("/ui/models")
    assert status == 200 and "openai/gpt-6-luna" in html and 'id="sync-form"' in html
    assert '<span class="badge no">no</span>' in html  # some offering is not routable, and says why
    status, _, _ = await browser.post("/ui/models/sync", {"provider": "openai"}, csrf=False)
    assert status == 403  # no CSRF token: no sync
    status, html, _ = await browser.post("/ui/models/sync", {"provider": "openai"})
    assert (
        status == 200
        and 'id="sync-results"' in html
        and '<strong>openai</strong>: <span class="ok">ok</span>' in html
    )
    _, html, _ = await browser.get("/ui/models")
    assert "never run" not in html.split("<td>openai")[1].split("</tr>")[0]


async def test_routes_page_shows_the_table_and_explains(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.get("/ui/routes")
    table = ui.demo.runtime.holder.current.table
    assert status == 200
    for alias, route in table.aliases.items():
        assert f"Alias <code>{alias}</code> → route <code>{route}</code>" in html
    first = table.routes[table.aliases["auto"]][0]
    assert f"<strong>{first.name}</strong>" in html and (not first.channels or first.channels[0].id in html)
    status, html, _ = await browser.post(
        "/ui/routes/explain", {"model": "auto", "message": "Hi", "tools": "on"}
    )
    assert status == 200 and 'id="explain-plan"' in html and 'id="explain-rule"' in html
    status, html, _ = await browser.post("/ui/routes/explain", {"model": "no/such-model", "message": "Hi"})
    assert status == 200 and 'class="error"' in html


async def test_a_created_key_is_shown_once_then_revoked(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.post("/ui/keys", {"label": "made here", "budget": "0.5", "rpm": "60"})
    assert status == 200
    secret = html.split('<code id="new-secret">')[1].split("</code>")[0]
    assert secret.startswith("fg_")
    key = ui.accounts.keys.authenticate(secret)
    assert key is not None and key.budget_usd == Decimal("0.5") and key.rpm == 60
    _, html, _ = await browser.get("/ui/keys")
    assert secret not in html and key.id in html
    await send(ui, secret, 1)
    status, html, _ = await browser.post(
        f"/ui/keys/{key.id}/limits", {"budget": "2", "rpm": "", "tpm": "1000"}
    )
    changed = ui.accounts.keys.get(key.id)
    assert (
        changed is not None
        and changed.budget_usd == Decimal("2")
        and changed.rpm is None
        and changed.tpm == 1000
    )
    status, html, _ = await browser.post(f"/ui/keys/{key.id}/revoke", {})
    assert status == 200 and "revoked" in html
    async with aiohttp.ClientSession() as s:
        from tests.server.accounting_fixtures import chat_body

        status, _, _ = await ui.post(s, secret, chat_body())
    assert status == 401
    status, html, _ = await browser.post("/ui/keys", {"label": "", "rpm": "x"})
    assert status == 400 and 'id="key-error"' in html


async def test_audit_page_has_the_commands_counts(
    ui: KeyedDemo,  # noqa: F811
    browser: Browser,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each section's count on the page is what `faregate audit --json` prints for the same files and store."""
    import json

    from faregate.cli import main

    secret, _ = ui.create_key("app")
    await send(ui, secret, 3)
    await browser.login(ADMIN_KEY)
    status, html, _ = await browser.get("/ui/audit?days=30")
    assert status == 200
    capsys.readouterr()
    argv = ["audit", "--config", str(ui.demo.routes_path), "--store", str(ui.store), "--days", "30", "--json"]
    main(argv)
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["sections"]) == {"unpriced", "drift", "changes", "billing", "routes", "spend"}
    for name, section in printed["sections"].items():
        assert f'id="count-{name}">{section["findings"]}<' in html, name
    assert ("Findings in" in html) == bool(printed["failed"])


async def test_revoking_a_key_ends_its_dashboard_session(ui: KeyedDemo, browser: Browser) -> None:  # noqa: F811
    secret, key = ui.create_key("short-lived")
    b = Browser(ui.url)
    try:
        await b.login(secret)
        status, _, _ = await b.get("/ui/usage", allow_redirects=False)
        assert status == 200
        await browser.login(ADMIN_KEY)
        await browser.get("/ui/keys")
        await browser.post(f"/ui/keys/{key.id}/revoke", {})
        status, _, resp = await b.get("/ui/usage", allow_redirects=False)
        assert status == 303 and resp.headers["Location"] == "/ui/login"
        status, _, _ = await b.login(secret)
        assert status == 401
        status, _, resp = await b.get("/ui/usage/rows", headers={"HX-Request": "true"}, allow_redirects=False)
        assert status == 401 and resp.headers["HX-Redirect"] == "/ui/login"
    finally:
        await b.close()
