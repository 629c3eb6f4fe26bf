"""The reference pages in docs/ are made from the JSON Schemas: they must match the schemas as they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reference_docs_are_generated_from_the_current_schemas() -> None:
    script = ROOT / "scripts" / "schema_docs.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
