"""What aiohttp logs about a request it cannot parse (a bare LF, a NUL in a header, a line too long).

aiohttp answers such a request with 400 itself, before any middleware or handler runs, and logs the parse
error with a traceback, as if the gateway had failed. A client's malformed request is not a fault of
ours: `ProtocolLogger`, given to aiohttp as its server `logger`, logs it as one line at INFO, without a
traceback; everything else it logs as aiohttp would. The answer stays aiohttp's plain-text 400: aiohttp
builds it inside its protocol handler, with no hook for the body short of replacing its server classes.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError


class ProtocolLogger(logging.Logger):
    """A logger for aiohttp's `RequestHandler`: named and propagating as `parent` (aiohttp's own)."""

    def __init__(self, parent: logging.Logger | None = None) -> None:
        parent = parent or logging.getLogger("aiohttp.server")
        super().__init__(parent.name)
        self.parent = parent

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            what = (exc.message or type(exc).__name__).splitlines()[0][:200]
            self.info("%s: refused with 400, a malformed request (%s)", str(msg) % args, what)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)
