"""Process settings from the environment (`FAREGATE_*`) and `.env`: what is not behaviour, but deployment.

Read by hand rather than with pydantic-settings, whose import alone took half a second of every start
before the port opened. Names are matched without regard to case (`FAREGATE_PORT`, `faregate_port`), the
environment wins over `.env`, unknown `FAREGATE_*` names are ignored (other parts of faregate read
their own, e.g. `FAREGATE_STATE`), and a value that does not parse is a `SettingsError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Literal, cast

from faregate.values import frozen

PREFIX = "FAREGATE_"
AUTH_MODES = ("open", "keys")


class SettingsError(ValueError):
    """A `FAREGATE_*` value that does not parse."""


@frozen
class Settings:
    config: Path = Path("routes.yaml")
    catalog_dir: Path | None = None  # default: the shipped catalog/
    store: Path | None = None  # default: routes.yaml's server.store, else ./faregate.db
    auth: Literal["open", "keys"] | None = None  # overrides routes.yaml's `auth`
    admin_key: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    host: str | None = None
    port: int | None = None
    log_level: str = "INFO"

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
        """The settings of `environ` (default: the process environment) over those of `env_file`."""
        values = {**_file_values(env_file), **_prefixed(os.environ if environ is None else environ)}
        return cls(
            config=Path(values["config"]) if values.get("config") else Path("routes.yaml"),
            catalog_dir=_path(values.get("catalog_dir")),
            store=_path(values.get("store")),
            auth=_auth(values.get("auth")),
            admin_key=values.get("admin_key") or None,
            host=values.get("host") or None,
            port=_port(values.get("port")),
            log_level=values.get("log_level") or "INFO",
        )


def _prefixed(env: Mapping[str, str]) -> dict[str, str]:
    """`FAREGATE_X=v` (any case) as `{"x": "v"}`."""
    n = len(PREFIX)
    return {k[n:].lower(): v for k, v in env.items() if k[:n].upper() == PREFIX}


def _file_values(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return _prefixed({k: v for k, v in dotenv_values(path).items() if v is not None})


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _auth(text: str | None) -> Literal["open", "keys"] | None:
    if not text:
        return None
    if text not in AUTH_MODES:
        raise SettingsError(f"FAREGATE_AUTH must be one of {', '.join(AUTH_MODES)}, not {text!r}")
    return cast(Literal["open", "keys"], text)


def _port(text: str | None) -> int | None:
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        raise SettingsError(f"FAREGATE_PORT must be a whole number, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"FAREGATE_PORT must be between 0 and 65535, not {port}")
    return port
