"""Process settings from the environment (`FAREGATE_*`) and `.env`: what is not behaviour, but deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAREGATE_", env_file=".env", extra="ignore")

    config: Path = Path("routes.yaml")
    catalog_dir: Path | None = None  # default: the shipped catalog/
    store: Path | None = None  # default: routes.yaml's server.store, else ./faregate.db
    auth: Literal["open", "keys"] | None = None  # overrides routes.yaml's `auth`
    admin_key: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    log_level: str = "INFO"
