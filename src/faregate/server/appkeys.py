"""Every piece of app state and every request-scoped value, typed, in one place (aiohttp `AppKey`s and
`RequestKey`s). API keys, the callers' credentials, are accounting's (`accounting/keys.py`)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from faregate.accounting.keys import ApiKey
from faregate.pipeline.runtime import Runtime
from faregate.server.options import ServeOptions
from faregate.upstream.client import UpstreamClient

HTTP = web.AppKey("http", aiohttp.ClientSession)  # catalog sync and everything off the hot path
UPSTREAM = web.AppKey("upstream", UpstreamClient)  # chat and embeddings calls (faregate/upstream)
RUNTIME = web.AppKey("runtime", Runtime)
OPTIONS = web.AppKey("options", ServeOptions)

# Set by the middlewares, read by the handlers.
REQUEST_ID = web.RequestKey("request_id", str)
CALLER_KEY = web.RequestKey("caller_key", ApiKey)  # the caller's API key, when it sent a valid one
IS_ADMIN = web.RequestKey("is_admin", bool)
