"""Reserved messages listed from the workers' own answers (``celeriac.control.held``),
for brokers that cannot see them: filtered by queue, paged both ways, revoked, given back
by the worker that holds them. Fake workers on a memory broker: the real-worker test on
RabbitMQ is tests/rabbitmq/test_browse_reserved.py."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.control.held import HeldByWorkers
from celeriac.exceptions import CapabilityUnavailable, CeleriacError

from .conftest import FakeWorker


def _held(task_id: str, queue: str, since: float, priority: int = 5) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "t.add",
        "args": [1, 2],
        "kwargs": {},
        "queue": queue,
        "priority": priority,
        "deliveries": 1,
        "retries": 0,
        "eta": None,
        "since": since,
    }


def test_lists_one_queue_by_when_taken_both_ways(app: Celeriac, workers: list[FakeWorker]) -> None:
    """Given two workers holding messages of two queues, Expect one queue's listed with
    their holder, oldest taken first or reversed, paged and counted; an undecodable one
    shown as such."""
    w1, w2 = workers
    w1.reserved = [_held("a", "q", 10.0), _held("other", "elsewhere", 5.0)]
    w2.reserved = [_held("b", "q", 20.0, priority=9), _held("c", "q", 5.0)]
    w2.reserved.append({"id": "bad", "name": None, "queue": "q", "error": "cannot be decoded"})
    held = HeldByWorkers(app)

    count, page = held.page("q", 10, 0, False)
    assert count == 4 and [m["id"] for m in page] == ["bad", "c", "a", "b"]
    assert [m["holder"] for m in page] == ["w2@host", "w2@host", "w1@host", "w2@host"]
    assert page[0]["undecodable"] == "cannot be decoded"
    assert (page[3]["task"], page[3]["priority"], page[3]["args"]) == ("t.add", 9, [1, 2])
    assert [m["id"] for m in held.page("q", 2, 1, True)[1]] == ["a", "c"]


def test_revoke_and_give_back_only_what_a_worker_holds(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    """When held messages are revoked or requeued with an id nobody holds, Expect only the
    held ones counted: revoked durably, given back by their own worker."""
    w1, w2 = workers
    w1.reserved = [_held("a", "q", 1.0)]
    w2.reserved = [_held("b", "q", 2.0), _held("c", "q", 3.0)]
    held = HeldByWorkers(app)

    assert held.revoke("q", ["c", "ghost"]) == 1
    assert app.broker.revocations is not None
    assert app.broker.revocations.revoked(["c", "ghost"]) == {"c"}
    assert held.give_back("q", ["a", "b", "ghost"]) == 2
    assert w1.reserved == [] and [t["id"] for t in w2.reserved] == ["c"]
    assert held.give_back("elsewhere", ["c"]) == 0


def test_a_worker_that_cannot_give_back_says_why(
    app: Celeriac, workers: list[FakeWorker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the holding worker refuses to give back (its pool cannot), Expect its words as
    the error, not a silent 0."""
    w1, _ = workers
    w1.reserved = [_held("a", "q", 1.0)]

    def refuse(ids: list[str]) -> list[str]:
        raise CeleriacError("the asyncio pool does not give back prefetched messages")

    monkeypatch.setattr(w1, "give_back", refuse)
    with pytest.raises(CapabilityUnavailable, match="w1@host: the asyncio pool does not"):
        HeldByWorkers(app).give_back("q", ["a"])
