"""Every piece of app state, typed, in one place (aiohttp `AppKey`s)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from faregate.pipeline.runtime import Runtime
from faregate.server.options import ServeOptions

HTTP = web.AppKey("http", aiohttp.ClientSession)
RUNTIME = web.AppKey("runtime", Runtime)
OPTIONS = web.AppKey("options", ServeOptions)
