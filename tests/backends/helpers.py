"""Bodies of the backend tests' child processes (started with ``spawn``)."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.context import SpawnContext
from typing import Any

from celeriac import states
from celeriac.backends.base import TaskMeta

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


def store_after(env: Any, task_id: str, delay: float, out: Any) -> None:
    """Child process: connect, then store SUCCESS for ``task_id`` after ``delay`` seconds."""
    backend = env.connect()
    backend.get(task_id)  # connected before the clock starts
    time.sleep(delay)
    out.put(time.time())
    backend.store([TaskMeta(task_id, states.SUCCESS, result="from another process")])
    backend.close()


def report_parts(env: Any, group_id: str, indexes: list[int], size: int, go: Any, out: Any) -> None:
    """Child process: report chord parts (repeats included) as soon as ``go`` is set."""
    backend = env.connect()
    backend.get("connect")
    out.put(None)
    go.wait(30)
    completed = [i for i in indexes if backend.chord_part_done(group_id, i, size)]
    out.put(completed)
    backend.close()


def connect_and_store(env: Any, task_id: str, go: Any, out: Any) -> None:
    """Child process: as soon as ``go`` is set, connect (creating tables) and store a record."""
    go.wait(30)
    backend = env.connect()
    backend.store([TaskMeta(task_id, states.SUCCESS, result=task_id)])
    out.put(task_id)
    backend.close()
