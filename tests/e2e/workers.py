"""Real workers for end-to-end tests: ``celeriac -A <module> worker ...`` as a subprocess.

Use the ``start_worker`` fixture (import it into your conftest.py)::

    from tests.e2e.workers import start_worker  # noqa: F401  (the fixture)

    def test_something(start_worker, tmp_path):
        worker = start_worker("myapp", "-P", "prefork", "-c", "2", cwd=tmp_path,
                              env={"CELERIAC_BROKER_URL": f"sqlite:///{tmp_path}/b.sqlite3"})
        ...                      # the worker logged "ready"
        assert worker.stop() == 0  # SIGTERM: warm shutdown, bounded wait

``cwd`` goes first on ``PYTHONPATH``, so an app module written there is
importable. Each worker runs in its own session (process group); teardown
SIGKILLs the whole group, so no test leaves a worker behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CELERIAC = str(Path(sys.executable).with_name("celeriac"))
READY_TIMEOUT = 30.0


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class WorkerProcess:
    """One ``celeriac worker`` subprocess and its log."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.args, self.cwd, self.log_path = args, cwd, log
        self._log_file = open(log, "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait until ``text`` appears in the log; fail early if the worker exits."""
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode} before logging {text!r}:\n"
                    f"{self.log}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not log {text!r} in {timeout}s:\n{self.log}")
            time.sleep(0.02)

    def children(self) -> list[int]:
        return child_pids(self.pid)

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (warm shutdown) and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not stop within {timeout}s:\n{self.log}") from None

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, children included."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._log_file.close()


StartWorker = Callable[..., WorkerProcess]


def launch(
    app_spec: str,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    ready: bool = True,
    timeout: float = READY_TIMEOUT,
) -> WorkerProcess:
    """Start ``celeriac -A app_spec worker ARGS`` in ``cwd``; by default wait for "ready"."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(cwd), environment.get("PYTHONPATH", "")) if p
    )
    log = cwd / f"worker-{time.monotonic_ns()}.log"
    worker = WorkerProcess([CELERIAC, "-A", app_spec, "worker", *args], cwd, environment, log)
    if ready:
        worker.wait_for("ready", timeout)
    return worker


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """Start real workers (``launch``'s arguments; ``cwd`` defaults to ``tmp_path``);
    every one is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(
        app_spec: str,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        ready: bool = True,
        timeout: float = READY_TIMEOUT,
    ) -> WorkerProcess:
        worker = launch(app_spec, *args, cwd=cwd or tmp_path, env=env, ready=False)
        started.append(worker)
        if ready:
            worker.wait_for("ready", timeout)
        return worker

    yield start
    for worker in started:
        worker.kill()
