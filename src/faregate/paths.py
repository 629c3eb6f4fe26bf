"""Where the shipped files live: `schemas/`, `catalog/` and the default `routes.yaml`.

In a checkout (and an editable install) they sit at the project root beside `src/`; a wheel installs
them under `<prefix>/share/faregate/`. Nothing is fetched: these are the only places looked at.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


@cache
def shipped_root() -> Path:
    """The folder holding `schemas/`, `catalog/` and `routes.yaml` as shipped."""
    checkout = Path(__file__).resolve().parents[2]
    for root in (checkout, Path(sys.prefix) / "share" / "faregate"):
        if (root / "schemas" / "routes.schema.json").is_file():
            return root
    raise FileNotFoundError(
        "faregate's shipped schemas/ were not found beside the package or in share/faregate"
    )


def schema_path(name: str) -> Path:
    return shipped_root() / "schemas" / f"{name}.schema.json"


def catalog_dir() -> Path:
    return shipped_root() / "catalog"


def default_routes() -> Path:
    return shipped_root() / "routes.yaml"
