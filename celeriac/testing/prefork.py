"""A real ``celeriac worker -P prefork`` process, for tests that need child processes.

The worker imports your app by its import path (``"proj.celery:app"``), so it must
be importable from ``cwd`` or ``PYTHONPATH``; it uses the broker and result
backend you give it (``CELERIAC_BROKER_URL`` / ``CELERIAC_RESULT_BACKEND`` in its
environment). The memory broker cannot be shared with another process: use
SQLite (``sqlite:///path``) or Redis, and point the test's app at the same URLs.
The worker runs in its own process group; ``kill()`` ends it and its children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..exceptions import ConfigurationError
from ..exceptions import TimeoutError as CeleriacTimeoutError

_READY = " ready: "  # what the supervisor logs once every child consumes


class PreforkWorker:
    """``PreforkWorker("proj.celery:app", broker_url="sqlite:///...").start()``."""

    def __init__(
        self,
        app: str,
        broker_url: str,
        backend_url: str | None = None,
        *,
        concurrency: int = 2,
        queues: Sequence[str] = (),
        args: Sequence[str] = (),
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if broker_url.startswith("memory:"):
            raise ConfigurationError(
                "a prefork worker runs in other processes, which cannot see this process's "
                "memory:// broker: use sqlite:///path/to/file.db or redis://"
            )
        self.command = [sys.executable, "-m", "celeriac", "-A", app, "worker", "-P", "prefork"]
        self.command += ["-c", str(concurrency), *(["-Q", ",".join(queues)] if queues else [])]
        self.command += list(args)
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        environment = {**os.environ, **(env or {})}
        environment["CELERIAC_BROKER_URL"] = broker_url
        environment["CELERIAC_RESULT_BACKEND"] = backend_url or broker_url
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.cwd), environment.get("PYTHONPATH", "")) if p
        )
        self.env = environment
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - as long as the worker
            prefix="celeriac-worker-", suffix=".log", delete=False
        )

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() the worker first"
        return self.process.pid

    @property
    def log(self) -> str:
        """Everything the worker printed so far."""
        return Path(self._log.name).read_text(errors="replace")

    def start(self, timeout: float = 30.0) -> PreforkWorker:
        """Start the worker; returns once it logs that it is ready."""
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while _READY not in self.log:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with status {self.process.returncode} before it was "
                    f"ready:\n{self.log}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise CeleriacTimeoutError(
                    f"the worker was not ready after {timeout}s:\n{self.log}"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """Warm shutdown (SIGTERM) and wait; returns the exit status. Past ``timeout``
        the worker is killed and this raises."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CeleriacTimeoutError(
                f"the worker did not stop within {timeout}s:\n{self.log}"
            ) from None
        finally:
            self._close_log()

    def kill(self) -> None:
        """SIGKILL the worker and its children at once."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if not self._log.closed:
            self._log.close()

    def __enter__(self) -> PreforkWorker:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
