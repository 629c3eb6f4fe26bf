"""A stop that always ends (server/lifeline.py), in a process of its own on the event loop `serve` runs:
a second SIGTERM while stopping ends it at once, a stop that hangs ends at its deadline, a SIGTERM after
the loop has closed still ends the process (uvloop leaves its handler installed), and a worker whose
supervisor is not its parent stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.processes import clean_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PROGRAM = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    import faregate.server.eventloop as eventloop
    import faregate.server.lifeline as lifeline

    mode, deadline = sys.argv[1], float(sys.argv[2])

    async def main():
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        stopper = lifeline.Stopper(stop, deadline)
        assert lifeline.install(loop, stopper)
        if mode == "orphan":  # a supervisor pid that is not this process's parent
            asyncio.create_task(lifeline.watch_supervisor(os.getppid() + 1_000_000, stopper, 0.05))
        print("ready", flush=True)
        await stop.wait()
        print("stopping", flush=True)
        if mode == "hang":
            await asyncio.Event().wait()  # a shutdown that never finishes
        lifeline.uninstall(loop)

    eventloop.run(main(), eventloop.uvloop_factory())
    print("stopped", flush=True)
    if mode == "after":
        time.sleep(60)  # SIGTERM must still end it here
    """
)


def start(mode: str, deadline_s: float = 60.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, mode, str(deadline_s)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc


def wait_for(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    got = proc.stdout.readline().strip()
    assert got == line, (got, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")


def finish(proc: subprocess.Popen[str]) -> int:
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_sigterm_while_stopping_ends_the_process() -> None:
    proc = start("hang")
    wait_for(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(proc, "stopping")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == 128 + signal.SIGTERM


def test_a_stop_that_hangs_ends_at_its_deadline() -> None:
    proc = start("hang", deadline_s=0.5)
    wait_for(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(proc, "stopping")
    assert finish(proc) == 1
    assert proc.stderr is not None and "exiting now" in proc.stderr.read()


def test_sigterm_after_the_loop_closed_ends_the_process() -> None:
    proc = start("after")
    wait_for(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(proc, "stopping")
    wait_for(proc, "stopped")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == -signal.SIGTERM


def test_a_worker_whose_supervisor_is_not_its_parent_stops() -> None:
    proc = start("orphan")
    wait_for(proc, "ready")
    wait_for(proc, "stopping")
    wait_for(proc, "stopped")
    assert finish(proc) == 0
