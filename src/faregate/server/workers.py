"""Who this process is in a `serve --workers N` fleet, and what `/admin/routes` says about the workers.

The supervisor (server/supervisor.py) starts each worker with `FAREGATE_WORKER_ID` and
`FAREGATE_WORKERS_FILE` and `FAREGATE_SUPERVISOR_PID` in its environment; the file is the supervisor's current roster (JSON), rewritten
whenever a worker starts or is replaced. A process started on its own is worker 0 of 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faregate.values import frozen

ID_ENV = "FAREGATE_WORKER_ID"
FILE_ENV = "FAREGATE_WORKERS_FILE"
SUPERVISOR_ENV = "FAREGATE_SUPERVISOR_PID"


@frozen
class WorkerIdentity:
    id: int = 0
    roster: Path | None = None  # None: not supervised
    supervisor: int | None = None  # the supervisor's pid: this worker stops when it is not its parent

    @property
    def supervised(self) -> bool:
        return self.roster is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerIdentity:
        if ID_ENV not in env:
            return cls()
        file, supervisor = env.get(FILE_ENV), env.get(SUPERVISOR_ENV)
        return cls(int(env[ID_ENV]), Path(file) if file else None, int(supervisor) if supervisor else None)


def read_roster(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_roster(path: Path, doc: Mapping[str, Any]) -> None:
    """Atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def describe(identity: WorkerIdentity) -> dict[str, Any]:
    """`workers` in `/admin/routes`: this worker's id and every worker of the supervisor."""
    if identity.roster is None:
        return {"count": 1, "this": 0, "supervisor": None, "workers": [{"id": 0, "pid": os.getpid()}]}
    roster = read_roster(identity.roster)
    workers = roster.get("workers", [])
    return {
        "count": len(workers),
        "this": identity.id,
        "supervisor": roster.get("supervisor"),
        "workers": workers,
    }
