"""Typical request shapes the `routes` check prices each alias with (built in, or from a YAML/JSON file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML

from faregate.values import frozen


@frozen
class Shape:
    name: str
    prompt_tokens: int
    completion_tokens: int
    text: str = "Summarise this for me."
    images: bool = False
    tools: bool = False
    json_mode: bool = False
    kind: Literal["chat", "embedding"] = "chat"


BUILT_IN = (
    Shape("short-chat", 200, 150),
    Shape("long-answer", 1500, 1000, "Write a detailed report."),
    Shape("with-tools", 800, 200, "Look up the weather.", tools=True),
    Shape("with-image", 900, 150, "What is in this picture?", images=True),
    Shape("code", 1200, 600, "Fix this python traceback."),
    Shape("long-context", 70_000, 800, "Summarise this document."),
    Shape("embed-batch", 2_000, 0, "Documents to embed.", kind="embedding"),
)


def load_shapes(path: Path) -> tuple[Shape, ...]:
    """A list of shapes: `[{name, prompt_tokens, completion_tokens, text?, images?, tools?, json_mode?}]`."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of request shapes")
    return tuple(Shape(**item) for item in data)
