"""What an audit produces: sections of rows, each with its count of findings."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from faregate.values import frozen

SECTIONS = ("unpriced", "drift", "changes", "billing", "routes", "spend")
DEFAULT_FAIL_ON = ("unpriced", "drift", "billing")


@frozen
class Section:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...] = ()
    findings: int = 0
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "findings": self.findings,
            "columns": list(self.columns),
            "rows": list(self.rows),
            "notes": list(self.notes),
        }


@frozen
class AuditResult:
    generated_at: str
    config: str
    store: str
    sections: tuple[Section, ...]
    fail_on: tuple[str, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections if s.name in self.fail_on and s.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "config": self.config,
            "store": self.store,
            "fail_on": list(self.fail_on),
            "failed": list(self.failed),
            "sections": {s.name: s.as_json() for s in self.sections},
        }
