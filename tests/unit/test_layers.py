"""Imports point one way: config → catalog → routing → providers → accounting → server (DESIGN "Layout").

Leaves (canonical, errors, paths, db, settings) may be imported from anywhere; the server, the simulator
and the command line sit on top and may import everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "faregate"
LAYERS = ["config", "catalog", "routing", "providers", "accounting", "server"]
LEAVES = {"canonical", "errors", "paths", "db", "settings", "jsonio", "secrets"}
TOP = {
    "server",
    "simulator",
    "cli",
    "cli_commands",
    "cli_catalog",
    "audit",
    "__init__",
}  # __init__: the public surface


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else module


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "faregate":  # from faregate import jsonio
            out.update(f"faregate.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("faregate"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("faregate"))
    return out


FILES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_one_way(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    if own in TOP or own in LEAVES:
        if own in LEAVES:
            bad = {m for m in imports(path) if layer_of(m) not in LEAVES and m != "faregate"}
            assert not bad, f"leaf module {own} imports {bad}"
        return
    assert own in LAYERS, f"{path} is in no known layer"
    allowed = set(LAYERS[: LAYERS.index(own) + 1]) | LEAVES
    bad = {m for m in imports(path) if layer_of(m) not in allowed}
    assert not bad, f"{path.relative_to(SRC)} ({own}) imports from a later layer: {sorted(bad)}"


def test_only_the_server_imports_aiohttp_web() -> None:
    for path in FILES:
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        text = path.read_text(encoding="utf-8")
        if "from aiohttp import web" in text or "aiohttp.web" in text:
            assert own in ("server", "simulator"), f"{path.relative_to(SRC)} uses aiohttp's server"
