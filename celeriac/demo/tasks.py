"""The demo's tasks: the shapes a Celery project starts with.

The broker comes from ``CELERIAC_BROKER_URL``, which ``celeriac demo`` points at
a fresh SQLite file, so the demo needs no server.
"""

from __future__ import annotations

import time

from celeriac import Celeriac

app = Celeriac(
    "demo",
    task_routes={
        "celeriac.demo.tasks.task1": {"queue": "queue1"},
        "celeriac.demo.tasks.task2": {"queue": "queue2"},
        "celeriac.demo.tasks.t*": {"queue": "queue1"},
    },
    task_default_queue="queue1",
    task_default_priority=5,
    worker_prefetch_multiplier=1,
    task_track_started=True,
)


@app.task
def task1(x: int) -> str:
    """Routed to queue1."""
    return f"task1 got {x}"


@app.task
def task2(x: int) -> str:
    """Routed to queue2."""
    return f"task2 got {x}"


@app.task(priority=6)
def t1(a: int, b: int, message: str | None = None) -> str | int:
    """Adds two numbers; with a message, says it."""
    return f"{message} {a + b}" if message else a + b


@app.task(priority=5)
def t2(a: int, b: int) -> int:
    return a * b


@app.task(priority=9)
def t3(a: int, b: int) -> int:
    return a - b


@app.task
def busy(seconds: float) -> str:
    """Keeps the one slot of queue1's worker busy while higher priorities queue up."""
    time.sleep(seconds)
    return "done"


@app.task
def divide(a: float, b: float) -> float:
    """Fails when b is zero; the error comes back to the caller."""
    return a / b
