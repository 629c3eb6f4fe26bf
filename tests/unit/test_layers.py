"""Imports point one way: config → catalog → routing → providers → accounting → pipeline → server (DESIGN "Layout").

Every module of the package has a rank; it may import only modules of its own rank or a lower one. Leaves
(canonical, errors, paths, db, settings, jsonio, secrets, values) import only leaves. On top sit the simulator, the
audit, the server, the command line and the package's `__init__` (the public surface). Every import
counts: absolute, relative (`from ..server import keys`), inside functions, and `importlib.import_module`
/ `__import__` with a literal name; only `if TYPE_CHECKING:` blocks are skipped. And the import graph has
no cycle, and no module imports the `__init__` of a package it sits in.

`problems(root)` is the whole check, on any copy of the package: `test_the_check_catches_*` write wrong
imports into a scratch copy and show it failing on each.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "faregate"
LEAVES = frozenset({"canonical", "errors", "paths", "db", "settings", "jsonio", "secrets", "values"})
# Lowest first; a module may import its own rank and those before it.
RANKS: tuple[frozenset[str], ...] = (
    LEAVES,
    frozenset({"upstream"}),  # faregate's HTTP/1.1 client for the hot path: only leaves below it
    frozenset({"config"}),
    frozenset({"catalog"}),
    frozenset({"routing"}),
    frozenset({"providers"}),
    frozenset({"accounting"}),
    frozenset({"state"}),  # what every worker and instance shares (Redis or this process)
    frozenset({"pipeline"}),  # one request's stages, over every wire format
    frozenset({"simulator"}),
    frozenset({"audit"}),
    frozenset({"server", "ui"}),  # the dashboard (ui) is served by the server and reads its state
    frozenset({"cli"}),
    frozenset({"__init__"}),  # the public surface: create_app and the error tree
)
AIOHTTP_SERVING = frozenset({"server", "simulator", "ui"})  # the only ones that may use aiohttp.web


def modules(root: Path) -> dict[str, Path]:
    """Dotted name → file, for every module of the package at `root` (a package is its `__init__`)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: `faregate.server.chat` → `server`, `faregate` → `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank_of(module: str) -> int | None:
    unit = unit_of(module)
    return next((i for i, units in enumerate(RANKS) if unit in units), None)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what is under `if TYPE_CHECKING:` (never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _dynamic_name(node: ast.Call) -> str | None:
    """The literal module name of `importlib.import_module("x")`, `import_module("x")`, `__import__("x")`."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports. A package counts as its `__init__` when a name is taken
    from it (`from faregate.simulator import Simulator`), or when a module takes a sibling from its own
    package's namespace (`from faregate.server import admin` in server/app.py) instead of by full path."""
    top = module.split(".")[0]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from P import x`: the module P.x when there is one, else the name x from P (its __init__)
            out.update(f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names)
            if source == package and path.name != "__init__.py":
                out.add(source)  # its own package's __init__: siblings are named by their full path
        elif isinstance(node, ast.Call) and (name := _dynamic_name(node)):
            out.add(name)
    resolved = set()
    for name in out:
        if name != top and not name.startswith(top + "."):
            continue
        while name not in known and "." in name:  # `import faregate.x.Y`: the module is faregate.x
            name = name.rpartition(".")[0]
        if name in known and name != module:
            resolved.add(name)
    return resolved


def graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    known = set(mods)
    return {m: imports(m, p, known) for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def module_problems(module: str, targets: set[str]) -> list[str]:
    """What is wrong with one module's imports: a later rank, or its own package's `__init__`."""
    own = rank_of(module)
    if own is None:
        return [f"{module} is in no known layer (add its unit to RANKS)"]
    out = []
    for target in sorted(targets):
        theirs = rank_of(target)
        if theirs is None or theirs > own:
            out.append(f"{module} ({unit_of(module)}) imports {target} ({unit_of(target)}), a later layer")
        elif module.rpartition(".")[0] == target:
            out.append(f"{module} imports {target}, the __init__ of its own package")
    return out


def problems(root: Path) -> list[str]:
    """The whole check on the package at `root`: every module's imports, then cycles."""
    edges = graph(root)
    found = [p for m in sorted(edges) for p in module_problems(m, edges[m])]
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]
    return found


EDGES = graph(SRC)


@pytest.mark.parametrize("module", sorted(EDGES))
def test_imports_point_one_way(module: str) -> None:
    assert module_problems(module, EDGES[module]) == []


def test_no_import_cycles() -> None:
    assert cycles(EDGES) == []


def test_every_unit_is_ranked() -> None:
    units = {unit_of(m) for m in EDGES}
    assert units == set().union(*RANKS), "RANKS lists a unit that no longer exists, or misses one"


@pytest.mark.parametrize("module", sorted(EDGES))
def test_only_the_server_and_simulator_serve_http(module: str) -> None:
    text = modules(SRC)[module].read_text(encoding="utf-8")
    uses = "from aiohttp import web" in text or "aiohttp.web" in text
    assert not uses or unit_of(module) in AIOHTTP_SERVING, f"{module} uses aiohttp's server"


# --- the check itself, on a scratch copy of the package with one wrong import written into it ---

WRONG_IMPORTS = {
    "relative routing -> server": ("routing/plan.py", "from ..server import keys as _keys\n", "later layer"),
    "server -> cli": ("server/app.py", "from faregate.cli.main import main as _main\n", "later layer"),
    "importlib from catalog into server": (
        "catalog/sync.py",
        "def _late() -> object:\n    import importlib\n\n"
        "    return importlib.import_module('faregate.server.app')\n",
        "later layer",
    ),
    "catalog/model -> catalog/store (a cycle)": (
        "catalog/model.py",
        "def _store() -> object:\n    from faregate.catalog.store import CatalogStore\n\n    return CatalogStore\n",
        "import cycle",
    ),
}


def scratch_copy(tmp_path: Path) -> Path:
    root = tmp_path / "faregate"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data"))
    return root


def test_the_check_passes_on_an_unchanged_copy(tmp_path: Path) -> None:
    assert problems(scratch_copy(tmp_path)) == []


@pytest.mark.parametrize("case", sorted(WRONG_IMPORTS))
def test_the_check_catches_a_wrong_import(tmp_path: Path, case: str) -> None:
    root = scratch_copy(tmp_path)
    file, line, expected = WRONG_IMPORTS[case]
    target = root / file
    target.write_text(target.read_text(encoding="utf-8") + "\n\n" + line, encoding="utf-8")
    found = problems(root)
    module = "faregate." + file.removesuffix(".py").replace("/", ".")
    assert found, f"{case}: the check passed"
    assert any(module in p and expected in p for p in found), found
