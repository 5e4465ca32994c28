"""Small builders for the contract tests, and the bodies of their child processes.

Child processes are started with ``spawn`` (a fresh interpreter: no connection
or lock inherited through ``fork``); their targets live here so they import.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Sequence
from multiprocessing.context import SpawnContext
from typing import Any

from celeriac.brokers.base import Broker
from celeriac.message import Delivery, Envelope

from ..needs import missing

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


def offered(broker: Broker, capability: str) -> Any:
    """The broker object's ``capability`` (``streams``, ``flags``, ...); a test of one the
    object does not offer does not apply to it (test_capabilities.py states, per engine,
    what each offers, so one lost fails there). A broker without it is declared in
    conftest.py's ``lacks`` so the test is not generated; reaching here without it skips
    locally and fails with ``CI`` set (tests/needs.py), never a silent skip in CI."""
    found = getattr(broker, capability)
    if found is None:
        missing(
            f"{type(broker).__name__} offers no {capability}: declare it in conftest.py's lacks"
        )
    return found


def envelope(
    queue: str, priority: int = 5, task_id: str | None = None, eta: float | None = None
) -> Envelope:
    """A message whose body names its id, so a test can check what came back."""
    task_id = task_id or uuid.uuid4().hex
    return Envelope(task_id, queue, priority, f"body-{task_id}".encode(), eta)


def drain(
    broker: Broker, queues: Sequence[str], consumer: str, limit: int = 100, ack: bool = True
) -> list[Delivery]:
    """Fetch (without waiting) until nothing is ready; ack what came unless told not to."""
    taken: list[Delivery] = []
    while batch := broker.fetch(queues, consumer, limit, 0.0):
        taken.extend(batch)
        if ack:
            broker.ack(consumer, [d.tag for d in batch])
    return taken


def ids(deliveries: Sequence[Delivery]) -> list[str]:
    return [d.id for d in deliveries]


def consume(
    env: Any,
    queues: list[str],
    consumer: str,
    limit: int,
    go: Any,
    out: Any,
    timeout: float,
    taken: Any,
    expected: int,
) -> None:
    """Child process: connect, say so, and once ``go`` is set fetch and ack until empty.

    Reports ``(consumer, None)`` through ``out`` when connected, then the ids
    it got. Stops once all the consumers together (``taken``, a shared counter)
    have ``expected`` messages, or after ``timeout`` seconds.
    """
    broker = env.connect(lease_seconds=30.0)
    broker.stats(queues[0])  # connected (and its tables checked) before the start
    out.put((consumer, None))
    got: list[str] = []
    go.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = broker.fetch(queues, consumer, limit, 0.05)
        if batch:
            got.extend(d.id for d in batch)
            broker.ack(consumer, [d.tag for d in batch])
            with taken.get_lock():
                taken.value += len(batch)
            time.sleep(0.002)  # the work a real consumer does: lets the others interleave
        elif taken.value >= expected:
            break
    out.put((consumer, got))
    broker.close()


def hold(env: Any, queue: str, consumer: str, limit: int, out: Any) -> None:
    """Child process: fetch up to ``limit`` messages, report them, then hang until killed."""
    broker = env.connect()
    batch = broker.fetch([queue], consumer, limit, 10.0)
    out.put([(d.id, d.tag) for d in batch])
    while True:  # killed by the test with SIGKILL while it holds them
        time.sleep(1.0)
