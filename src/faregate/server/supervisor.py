"""`faregate serve --workers N`: N worker processes on one port (SO_REUSEPORT), and a supervisor that
restarts a worker that dies, forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop of all: each
worker finishes its requests and writes its usage log before it exits), and keeps the roster that
`/admin/routes` reports.

Each worker is this same command run again with `--workers 1` on the chosen port, so it is an ordinary
`serve` that binds with SO_REUSEPORT; the kernel spreads new connections over the workers. With
`--port 0` the supervisor picks the port by binding it (with SO_REUSEPORT, never listening) and keeps it
held while the workers run. The roster is a file in a temporary folder named after the supervisor's pid,
removed at exit; one that a supervisor killed outright leaves is removed by the next supervisor to start.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from faregate.server.workers import FILE_ENV, ID_ENV, SUPERVISOR_ENV, read_roster, write_roster

log = logging.getLogger("faregate.supervisor")
POLL_S = 0.1
STOP_TIMEOUT_S = 45.0  # the workers' own shutdown timeout (30 s) and their usage log's last write
BACKOFF_MAX_S = 5.0  # a worker that keeps dying at start is restarted at most this often
ROSTER_PREFIX = "faregate-workers-"  # the roster's temporary folder: faregate-workers-{supervisor pid}-...
ROSTER_FILE = "workers.json"


def worker_count(text: str) -> int:
    """`--workers N` or `auto` (the number of cores)."""
    if text == "auto":
        return max(1, os.cpu_count() or 1)
    n = int(text)
    if n < 1:
        raise ValueError("--workers must be at least 1 (or auto)")
    return n


def hold_port(host: str, port: int) -> socket.socket:
    """Bind (host, port) with SO_REUSEPORT and do not listen: the port is ours, the workers share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    return s


@dataclass
class Worker:
    id: int
    proc: subprocess.Popen[bytes]
    started: float
    restarts: int = 0


@dataclass
class Supervisor:
    argv: Sequence[str]  # a worker's command line (with --workers 1 and the port)
    count: int
    env: Mapping[str, str]
    roster: Path
    workers: dict[int, Worker] = field(default_factory=dict)
    stopping: bool = False
    _hup: bool = False

    def spawn(self, wid: int, restarts: int = 0) -> Worker:
        env = {**self.env, ID_ENV: str(wid), FILE_ENV: str(self.roster), SUPERVISOR_ENV: str(os.getpid())}
        proc = subprocess.Popen(list(self.argv), env=env)
        w = Worker(wid, proc, time.time(), restarts)
        self.workers[wid] = w
        self.write()
        return w

    def write(self) -> None:
        write_roster(
            self.roster,
            {
                "supervisor": os.getpid(),
                "workers": [
                    {
                        "id": w.id,
                        "pid": w.proc.pid,
                        "started": round(w.started, 3),
                        "restarts": w.restarts,
                        "alive": w.proc.poll() is None,
                    }
                    for w in sorted(self.workers.values(), key=lambda w: w.id)
                ],
            },
        )

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._hup = True

    def forward(self, sig: int) -> None:
        for w in self.workers.values():
            if w.proc.poll() is None:
                w.proc.send_signal(sig)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for wid in range(self.count):
            self.spawn(wid)
        log.info("supervisor %d: %d workers", os.getpid(), self.count)
        while not self.stopping:
            time.sleep(POLL_S)
            if self._hup:
                self._hup = False
                log.info("SIGHUP: reloading every worker")
                self.forward(signal.SIGHUP)
            for w in list(self.workers.values()):
                code = w.proc.poll()
                if code is None or self.stopping:
                    continue
                quick = time.time() - w.started < 1.0
                wait = min(BACKOFF_MAX_S, 0.5 * 2 ** min(w.restarts, 4)) if quick else 0.0
                log.error("worker %d (pid %d) exited with %s; restarting it", w.id, w.proc.pid, code)
                if wait:
                    time.sleep(wait)
                if not self.stopping:
                    self.spawn(w.id, w.restarts + 1)
        return self.stop()

    def stop(self) -> int:
        """SIGTERM to every worker; wait for each to finish its requests and write its usage log."""
        log.info("stopping %d workers", len(self.workers))
        self.forward(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        worst = 0
        for w in self.workers.values():
            try:
                code = w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in time; killed", w.id)
                w.proc.kill()
                code = w.proc.wait()
            worst = worst or (code if code not in (0, -signal.SIGTERM) else 0)
        self.write()
        return worst


def roster_owner(folder: Path) -> int | None:
    """The supervisor a roster folder is of: the pid in its name (`faregate-workers-PID-...`), or, in a
    folder named before names carried it, the one its roster gives; None when neither says."""
    head, sep, _ = folder.name.removeprefix(ROSTER_PREFIX).partition("-")
    if sep and head.isdigit():
        return int(head)
    pid = read_roster(folder / ROSTER_FILE).get("supervisor")
    return pid if isinstance(pid, int) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_rosters(tmp: Path, alive: Callable[[int], bool] = pid_alive) -> list[Path]:
    """Remove the roster folders in `tmp` (this user's) of supervisors that died without removing their
    own (SIGKILL, a crash); the folders of live ones, and any this cannot tell the owner of, stay."""
    removed = []
    for folder in sorted(tmp.glob(f"{ROSTER_PREFIX}*")):
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        owner = roster_owner(folder) if mine else None
        if owner is not None and owner != os.getpid() and not alive(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def supervise(argv: Sequence[str], count: int, host: str, port: int, env: Mapping[str, str]) -> int:
    """Run `count` workers of `argv` (which must carry `--port {port}` last or be completed here). The
    roster lives in a temporary folder, removed at exit; a start removes those dead supervisors left."""
    try:
        held = hold_port(host, port)
    except OSError as e:
        print(f"faregate: cannot start: {host}:{port}: {e}", file=sys.stderr)
        return 1
    chosen = held.getsockname()[1]
    tmp_root = Path(tempfile.gettempdir())
    for folder in sweep_rosters(tmp_root):
        log.info("removed %s: its supervisor is gone", folder)
    with tempfile.TemporaryDirectory(prefix=f"{ROSTER_PREFIX}{os.getpid()}-", dir=tmp_root) as tmp:
        sup = Supervisor([*argv, "--port", str(chosen)], count, env, Path(tmp) / ROSTER_FILE)
        print(f"faregate: supervisor {os.getpid()}: {count} workers on http://{host}:{chosen}", flush=True)
        try:
            return sup.run()
        finally:
            held.close()
