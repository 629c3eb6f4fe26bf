"""Read YAML keeping positions: every problem in a user's file is reported as FILE:LINE:COL.

ruamel.yaml's round-trip loader keeps line and column on each mapping key and sequence item; `locate`
walks a JSON-pointer-like path to them. `plain` turns the loaded tree into ordinary dicts and lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from faregate.values import frozen

PathElem = str | int


@frozen(order=True)
class ConfigIssue:
    """One problem in a config or catalog file; `str()` gives `FILE:LINE:COL: message` (1-based)."""

    file: str
    line: int
    col: int
    message: str
    warning: bool = False  # what the catalog says, not a mistake in the file

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {'warning: ' if self.warning else ''}{self.message}"


@frozen
class YamlDoc:
    file: str
    root: Any  # the ruamel tree (CommentedMap at the top for our files)

    def locate(self, path: Sequence[PathElem]) -> tuple[int, int]:
        """1-based line and column of the deepest node of `path` that exists (the key for a mapping entry)."""
        node, line, col = self.root, 1, 1
        for elem in path:
            if isinstance(node, CommentedMap) and elem in node:
                line, col = node.lc.key(elem)
                line, col = line + 1, col + 1
                node = node[elem]
            elif isinstance(node, CommentedSeq) and isinstance(elem, int) and 0 <= elem < len(node):
                line, col = node.lc.item(elem)
                line, col = line + 1, col + 1
                node = node[elem]
            else:
                break
        return line, col

    def value_pos(self, path: Sequence[PathElem]) -> tuple[int, int]:
        """Position of the value at `path` (for `key: value`, where the value starts)."""
        *parent_path, last = path
        parent = self.at(parent_path)
        if isinstance(parent, CommentedMap) and last in parent:
            line, col = parent.lc.value(last)
            return line + 1, col + 1
        return self.locate(path)

    def at(self, path: Sequence[PathElem]) -> Any:
        node = self.root
        for elem in path:
            node = node[elem]
        return node

    def issue(self, path: Sequence[PathElem], message: str, *, at_value: bool = False) -> ConfigIssue:
        line, col = self.value_pos(path) if at_value and path else self.locate(path)
        return ConfigIssue(self.file, line, col, message)


def load_yaml(path: Path) -> tuple[YamlDoc | None, list[ConfigIssue]]:
    """Parse one YAML file. Syntax errors come back as issues with the parser's position."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        return None, [ConfigIssue(name, 1, 1, f"cannot read: {e.strerror or e}")]
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> tuple[YamlDoc | None, list[ConfigIssue]]:
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as e:
        return None, [syntax_issue(name, e)]
    except Exception as e:  # ruamel raises a few non-marked errors (duplicate keys, bad unicode)
        return None, [ConfigIssue(name, 1, 1, f"YAML: {e}")]
    if not isinstance(root, CommentedMap):
        return None, [ConfigIssue(name, 1, 1, "the file must be a YAML mapping")]
    return YamlDoc(name, root), []


def syntax_issue(name: str, e: MarkedYAMLError) -> ConfigIssue:
    """Placed where the parser noticed the problem, and naming where the broken construct starts
    (a flow mapping left open three lines up, say) when the parser says so."""
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"YAML syntax: {e.problem or e.context}"
    start = e.context_mark
    if e.problem_mark is not None and start is not None and e.context:
        message += f" ({e.context} that starts at line {start.line + 1}, column {start.column + 1})"
    return ConfigIssue(name, line, col, message)


def plain(node: Any) -> Any:
    """The ruamel tree as plain Python values (dict, list, str, int, float, bool, None)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)  # dates and timestamps: the text the user wrote
