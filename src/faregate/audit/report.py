"""The audit as tables for people (rich)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from faregate.audit.model import AuditResult


def print_tables(result: AuditResult, console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    for n, s in enumerate(result.sections, start=1):
        mark = "FAIL" if s.name in result.failed else ("findings" if s.findings else "ok")
        table = Table(title=f"{n}. {s.title} [{s.name}: {s.findings} {mark}]", title_justify="left")
        for col in s.columns:
            table.add_column(col)
        for row in s.rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in s.columns))
        console.print(table)
        for note in s.notes:
            console.print(f"  {note}")
    verdict = f"failed on: {', '.join(result.failed)}" if result.failed else "no findings that fail the run"
    console.print(f"audit of {result.config} with store {result.store}: {verdict}")
