"""The app real workers run in the canvas end-to-end tests (copied as ``canvas_app.py``).

Broker and backend come from ``CELERIAC_BROKER_URL`` / ``CELERIAC_RESULT_BACKEND``.
Tasks that must be counted append a line to a file they are given, so a test
sees every execution, including ones a ``kill -9`` cut short.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celeriac import Celeriac

app = Celeriac("canvas_app", worker_send_task_events=False)


def note(path: str, *words: object) -> None:
    """Append one line; O_APPEND keeps lines from different processes whole."""
    with open(path, "a") as file:
        file.write(" ".join(str(w) for w in words) + "\n")


class Boom(Exception):
    """What ``fail`` raises."""


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def mul(a: int, b: int) -> int:
    return a * b


@app.task
def fail(*args: Any) -> None:
    raise Boom(f"boom {list(args)}")


@app.task(bind=True)
def where(self: Any, *args: Any, **kwargs: Any) -> str:
    """Which worker ran this: the seed's task1 and task2 are this under other names."""
    return str(self.request.hostname)


app.task(name="canvas_app.task1", bind=True)(where.run)
app.task(name="canvas_app.task2", bind=True)(where.run)
app.task(name="canvas_app.task3", bind=True)(where.run)


@app.task
def slow_square(path: str, i: int, seconds: float) -> int:
    """A chord part that takes a moment, so a kill -9 lands in the middle of some."""
    note(path, "start", i, os.getpid())
    time.sleep(seconds)
    return i * i


@app.task
def count_callback(results: list[int], path: str) -> int:
    """A chord body that leaves one line per execution."""
    note(path, "callback", len(results), os.getpid())
    return sum(results)


@app.task
def tsum(results: list[int]) -> int:
    return sum(results)
