"""The app the worker process tests run: copied into a temporary directory.

Broker and backend come from ``CELERIAC_BROKER_URL`` / ``CELERIAC_RESULT_BACKEND``;
the lease from ``WORKER_APP_LEASE`` (seconds). Tasks that must be counted append
one line per event to a file they are given, so a test sees every execution,
including ones a crash cut short.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from celeriac import Celeriac
from celeriac.exceptions import SoftTimeLimitExceeded

app = Celeriac(
    "worker_app",
    broker_transport_options={"visibility_timeout": float(os.environ.get("WORKER_APP_LEASE", 2))},
    worker_send_task_events=False,
    worker_shutdown_timeout=20,
)


def note(path: str, *words: object) -> None:
    """Append one line; O_APPEND keeps lines from different processes whole."""
    with open(path, "a") as file:
        file.write(" ".join(str(w) for w in words) + "\n")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def noop() -> None:
    return None


@app.task(bind=True)
def record(
    self: Any, path: str, label: str, seconds: float = 0.0, first_delivery_only: bool = False
) -> str:
    """Note the start, sleep, note the end: each execution leaves its lines."""
    deliveries = self.request.delivery_info.get("deliveries", 1)
    note(path, "start", label, os.getpid(), deliveries)
    if not first_delivery_only or deliveries == 1:
        time.sleep(seconds)
    note(path, "end", label, os.getpid())
    return label


@app.task
def wait_for(gate: str, started: str) -> str:
    """Block until the file ``gate`` exists (bounded), after creating ``started``."""
    Path(started).touch()
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "opened"


@app.task(time_limit=2)
def spin() -> None:
    while True:
        pass


@app.task(soft_time_limit=1)
def soft() -> str:
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "not interrupted"


@app.task(soft_time_limit=1)
async def soft_async() -> str:
    try:
        await asyncio.sleep(30)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "not interrupted"
