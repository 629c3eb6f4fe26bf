"""faregate: a self-hosted, OpenAI-compatible LLM gateway whose whole behaviour is declared in routes.yaml.

The public surface: `create_app` (the aiohttp application, loaded on first use so that the command
line's `check` and `explain` do not pay for the server) and the error tree. The rest by module path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faregate.errors import (
    AllChannelsFailed,
    AuthenticationError,
    FaregateError,
    InsufficientCredits,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
)

if TYPE_CHECKING:
    from faregate.server.app import create_app

__version__ = "0.1.0"

__all__ = [
    "AllChannelsFailed",
    "AuthenticationError",
    "FaregateError",
    "InsufficientCredits",
    "InvalidRequest",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "__version__",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from faregate.server.app import create_app

        return create_app
    raise AttributeError(f"module 'faregate' has no attribute {name!r}")
