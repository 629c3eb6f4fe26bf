"""A worker's tie to its supervisor, and a stop that always ends.

A worker of `serve --workers N` must not outlive its supervisor: it would keep serving the shared port
with a configuration nobody reloads any more. Two guards, because either alone has a gap:

- `tie_to_supervisor`: on Linux, `prctl(PR_SET_PDEATHSIG, SIGTERM)` first thing, so the kernel sends the
  worker SIGTERM the moment the supervisor dies; then the parent is checked against the supervisor's pid
  (from the environment), which closes the race of a supervisor that died before the prctl.
- `watch_supervisor`: every second, `os.getppid()` against that same pid (any OS). It compares with the
  pid the supervisor wrote, never with the first `getppid()` the worker reads: a worker whose supervisor
  died while it was starting would read init's pid there and never notice.

A stop is graceful first (`Stopper.begin`: stop accepting, finish the requests in flight, write the usage
log) and bounded: a second SIGTERM or SIGINT ends the process at once, and the first arms a deadline
after which it ends whatever it is waiting for.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger("faregate")

PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>
WATCH_INTERVAL_S: Final = 1.0
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


def _set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel for `sig` when the parent dies (Linux only; False elsewhere or when refused)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def tie_to_supervisor(supervisor: int | None) -> bool:
    """Die with the supervisor; False when it is gone already (the worker should not start)."""
    if supervisor is None:
        return True
    _set_parent_death_signal(signal.SIGTERM)
    # A SIGHUP the supervisor forwards before this worker's loop takes it would end the worker (the default
    # action); a worker still starting loads the newest routes.yaml anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return os.getppid() == supervisor


async def watch_supervisor(supervisor: int, stopper: Stopper, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Stop gracefully once the supervisor is no longer this process's parent (killed outright, or on an
    OS without PR_SET_PDEATHSIG)."""
    while True:
        await asyncio.sleep(interval_s)
        if os.getppid() != supervisor:
            break
    stopper.begin(f"the supervisor (pid {supervisor}) is gone")


@dataclass
class Stopper:
    """Turns stop requests into one graceful stop, bounded by `deadline_s`."""

    stop: asyncio.Event
    deadline_s: float
    _timer: threading.Timer | None = field(default=None, repr=False)

    def begin(self, why: str) -> None:
        if self.stop.is_set():
            return
        log.info("%s: stopping (finishing requests in flight, at most %.0f s)", why, self.deadline_s)
        self.stop.set()
        self._timer = threading.Timer(self.deadline_s, self._overdue)
        self._timer.daemon = True
        self._timer.start()

    def on_signal(self, sig: int) -> None:
        """SIGTERM/SIGINT: the first stops gracefully, another while stopping ends the process now."""
        name = signal.Signals(sig).name
        if not self.stop.is_set():
            self.begin(name)
            return
        log.error("%s while stopping: exiting now, without waiting for the requests in flight", name)
        _exit(128 + sig)

    def _overdue(self) -> None:
        log.error("not stopped %.0f s after the stop began: exiting now", self.deadline_s)
        _exit(1)


def _exit(code: int) -> None:
    logging.shutdown()
    os._exit(code)


def install(loop: asyncio.AbstractEventLoop, stopper: Stopper) -> bool:
    """SIGTERM and SIGINT to `stopper` (False where the loop cannot: not the main thread, Windows)."""
    try:
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stopper.on_signal, sig)
    except (NotImplementedError, RuntimeError):
        return False
    return True


def uninstall(loop: asyncio.AbstractEventLoop, *signals: int) -> None:
    """Back to the default action. uvloop keeps its own handler installed after the loop closes, which
    swallows every SIGTERM from then on: removed here, a late SIGTERM ends the process as it should."""
    for sig in (*STOP_SIGNALS, *signals):
        try:
            loop.remove_signal_handler(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
