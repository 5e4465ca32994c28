"""Start and stop a celeriac worker process for a benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def start_worker(
    app_spec: str, cwd: Path, env: dict[str, str], *args: str, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """``celeriac -A app worker ARGS`` in the background, returned once it logs 'ready'."""
    log = cwd / f"worker-{time.monotonic_ns()}.log"
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the worker
    proc = subprocess.Popen(
        [sys.executable, "-m", "celeriac", "-A", app_spec, "worker", "-l", "WARNING", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(cwd)},
    )
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while "ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
