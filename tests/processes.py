"""`faregate serve` as a real process, for the tests that need one (signals, crashes, workers), and the
environment it runs in. `reap_gateways` (tests/conftest.py) stops every one a test started, passed or
failed: no test leaves a gateway serving."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import faregate


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without provider keys or FAREGATE_* settings (but the test run's own
    catalog cache folder, never the user's ~/.cache), plus `extra`. The faregate
    this process imported comes first on PYTHONPATH (a relative `PYTHONPATH=src` would not survive the
    subprocess's own working directory, and the installed copy would run instead)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FAREGATE_") and not k.endswith(("_API_KEY", "_AUTH_TOKEN"))
    }
    env["FAREGATE_CACHE_DIR"] = os.environ["FAREGATE_CACHE_DIR"]
    here = str(Path(faregate.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return {**env, **extra}


class GatewayProcess:
    """`faregate serve ARGS` as a subprocess, its stdout and stderr going to files in `cwd`.

    It leads a process group of its own, which its workers (`--workers N`) join: `stop` kills the group,
    so no worker outlives a test, even one whose supervisor was killed first; every one started is stopped
    at the test's teardown, passed or failed (`reap_gateways` in tests/conftest.py)."""

    started: ClassVar[list[GatewayProcess]] = []

    def __init__(self, cwd: Path, env: dict[str, str], args: Sequence[str]) -> None:
        self.stdout_path, self.stderr_path = cwd / "stdout.txt", cwd / "stderr.txt"
        argv = [sys.executable, "-m", "faregate.cli", "serve", *args]
        # Its temporary files (a supervisor's roster folder, which SIGKILL leaves behind) in the test's
        # folder, not in the machine's /tmp, unless the test says where.
        tmp = cwd / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {"TMPDIR": str(tmp), **env}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )
        GatewayProcess.started.append(self)
        self.url = ""

    @classmethod
    def demo(
        cls, cwd: Path, store: Path, env: dict[str, str], *, extra_args: Sequence[str] = ()
    ) -> GatewayProcess:
        """`faregate serve --demo --port 0 --store STORE`, what most of these tests run."""
        return cls(cwd, env, ["--demo", "--port", "0", "--store", str(store), *extra_args])

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    async def ready(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://[\d.]+:\d+)", self.stdout_path.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"faregate exited with {self.proc.returncode}:\n{self.output}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"faregate did not start within {timeout_s} s:\n{self.output}")

    def sim_origin(self) -> str:
        found = re.search(r"simulator on (http://[\d.]+:\d+)", self.output)
        assert found, self.output
        return found.group(1)

    def stop(self) -> None:
        """SIGKILL to the whole group: the process and whatever workers are left of it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    @classmethod
    def reap_all(cls) -> None:
        while cls.started:
            cls.started.pop().stop()
