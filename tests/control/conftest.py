"""A fake worker behind the WorkerHandle interface, and its listener, on a memory broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.control import WorkerRemote
from celeriac.events import dispatcher_for


@dataclass
class FakeWorker:
    """Records what remote control asked of it."""

    hostname: str
    pool_name: str = "prefork"
    size: int = 2
    consuming: list[str] = field(default_factory=lambda: ["celeriac"])
    running: list[dict[str, Any]] = field(default_factory=list)
    reserved: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def active_tasks(self) -> list[dict[str, Any]]:
        return list(self.running)

    def active_count(self) -> int:
        return len(self.running)

    def reserved_tasks(self) -> list[dict[str, Any]]:
        return list(self.reserved)

    def give_back(self, ids: list[str]) -> list[str]:
        given = [t["id"] for t in self.reserved if t["id"] in ids]
        self.reserved = [t for t in self.reserved if t["id"] not in ids]
        return given

    def processed(self) -> int:
        return 3

    def pool_size(self) -> int:
        return self.size

    def stats(self) -> dict[str, Any]:
        return {}

    def pool_grow(self, n: int) -> int:
        self.size += n
        return self.size

    def pool_shrink(self, n: int) -> int:
        self.size = max(1, self.size - n)
        return self.size

    def queues(self) -> list[str]:
        return list(self.consuming)

    def add_queue(self, queue: str) -> None:
        self.consuming.append(queue)

    def cancel_queue(self, queue: str) -> None:
        self.consuming.remove(queue)

    def terminate(self, task_id: str, signal: str) -> bool:
        self.calls.append(("terminate", (task_id, signal)))
        return any(t["id"] == task_id for t in self.running)

    def shutdown(self) -> None:
        self.stopped.set()


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://control-{uuid.uuid4().hex}"
    app = Celeriac("control-test", broker=url, backend=url, set_as_current=False)

    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    yield app
    dispatcher_for(app).close()


@pytest.fixture
def workers(app: Celeriac) -> Iterator[list[FakeWorker]]:
    """Two fake workers listening for commands, with presence."""
    fakes = [FakeWorker("w1@host"), FakeWorker("w2@host", size=4)]
    remotes = [WorkerRemote(app, fake) for fake in fakes]
    for remote in remotes:
        remote.start()
    yield fakes
    for remote in remotes:
        remote.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test failed, so end-to-end fixtures can show worker logs."""
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()
