"""The dashboard on a PostgreSQL store: sessions, every page, a request's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faregate.accounting.tokens import TokenCounter
from tests.server.accounting_fixtures import ADMIN_KEY
from tests.server.ui_fixtures import Browser, send, start_ui_demo

PAGES = ("/ui/", "/ui/usage", "/ui/models", "/ui/routes", "/ui/keys", "/ui/audit")


async def test_every_page_renders_on_a_postgresql_store(
    routes_copy: Path, counter: TokenCounter, postgres_url: str
) -> None:
    store: Any = postgres_url  # a URL where the fixture takes a path: the store opener takes either
    kd, stop = await start_ui_demo(routes_copy, counter, store)
    browser = Browser(kd.url)
    try:
        [rid] = await send(kd, ADMIN_KEY)
        await kd.accounts.usage.aflush()
        status, _, _ = await browser.login(ADMIN_KEY)
        assert status == 200
        for path in PAGES:
            status, text, _ = await browser.get(path)
            assert status == 200, (path, text[:300])
        status, text, _ = await browser.get(f"/ui/requests/{rid}")
        assert status == 200 and rid in text
    finally:
        await browser.close()
        await stop()
