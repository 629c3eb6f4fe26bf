"""The roster folders of `serve --workers N` (server/supervisor.py): a start removes the ones supervisors
that died outright left in the temporary folder, by the owner's pid (in the folder's name, or in its roster
for a folder named before names carried it), and leaves the live ones and any it cannot tell."""

from __future__ import annotations

import json
import os
from pathlib import Path

from faregate.server.supervisor import ROSTER_FILE, roster_owner, sweep_rosters

DEAD, LIVE = 4_000_001, 4_000_002


def roster(tmp: Path, name: str, supervisor: int | None = None) -> Path:
    folder = tmp / name
    folder.mkdir()
    if supervisor is not None:
        (folder / ROSTER_FILE).write_text(json.dumps({"supervisor": supervisor, "workers": []}))
    return folder


def test_a_start_removes_the_roster_folders_of_dead_supervisors_only(tmp_path: Path) -> None:
    dead = roster(tmp_path, f"faregate-workers-{DEAD}-a1b2", DEAD)
    dead_empty = roster(tmp_path, f"faregate-workers-{DEAD}-c3d4")  # killed before its first roster
    dead_old = roster(tmp_path, "faregate-workers-e5f6g7h8", DEAD)  # named before the pid was in names
    live = roster(tmp_path, f"faregate-workers-{LIVE}-i9j0", LIVE)
    unknown = roster(tmp_path, "faregate-workers-k1l2m3n4")  # no pid anywhere: not ours to judge
    mine = roster(tmp_path, f"faregate-workers-{os.getpid()}-o5p6")
    other = roster(tmp_path, "something-else", DEAD)
    alive = {LIVE, os.getpid()}.__contains__
    assert sweep_rosters(tmp_path, alive) == sorted([dead, dead_empty, dead_old])
    assert sorted(p for p in tmp_path.iterdir()) == sorted([live, unknown, mine, other])
    assert sweep_rosters(tmp_path, alive) == []


def test_the_owner_of_a_roster_folder() -> None:
    assert roster_owner(Path(f"/tmp/faregate-workers-{DEAD}-x1y2")) == DEAD
    assert roster_owner(Path("/tmp/faregate-workers-nopid")) is None  # and no roster to read
