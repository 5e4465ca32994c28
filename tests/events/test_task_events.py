"""Every task event, with the fields tools rely on, from the executor a worker uses."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.events import EVENTS_STREAM, Event, dispatcher_for
from celeriac.events.event import decode_item
from celeriac.exceptions import Reject
from celeriac.worker.job import Executor


def _tasks(app: Celeriac) -> dict[str, Any]:
    @app.task(name="t.add")
    def add(a: int, b: int, label: str = "") -> int:
        return a + b

    @app.task(name="t.boom")
    def boom() -> None:
        raise ValueError("kaboom")

    @app.task(name="t.flaky", bind=True, max_retries=1)
    def flaky(self: Any) -> None:
        raise self.retry(exc=OSError("try again"), countdown=60)

    @app.task(name="t.refuse")
    def refuse() -> None:
        raise Reject("bad input")

    return {"add": add, "boom": boom, "flaky": flaky, "refuse": refuse}


def _work(app: Celeriac, count: int) -> None:
    executor = Executor(app, "w1@host", "c1", app.connect_broker(), app.connect_backend())
    for delivery in app.broker.fetch(["celeriac"], "c1", count, 1.0):
        executor.process(delivery)
    executor.close()


def _events_by_task(app: Celeriac) -> dict[str, list[Event]]:
    assert dispatcher_for(app).flush()
    found: dict[str, list[Event]] = {}
    for position, data in app.broker.streams.read(EVENTS_STREAM, "0", 1000):
        for event in decode_item(position, data):
            found.setdefault(event.task_id or "", []).append(event)
    return found


def test_each_outcome_is_told_by_its_events(app: Celeriac) -> None:
    tasks = _tasks(app)
    ok = tasks["add"].delay(2, 3, label="sum")
    failed = tasks["boom"].delay()
    retried = tasks["flaky"].delay()
    rejected = tasks["refuse"].delay()
    revoked = tasks["add"].delay(1, 1)
    app.revoke([revoked.id])
    _work(app, 5)
    events = _events_by_task(app)

    def types(task_id: str) -> list[str]:
        return [e.type for e in events[task_id]]

    assert types(ok.id) == ["task-sent", "task-received", "task-started", "task-succeeded"]
    assert types(failed.id) == ["task-sent", "task-received", "task-started", "task-failed"]
    assert types(retried.id) == ["task-sent", "task-received", "task-started", "task-retried"]
    assert types(rejected.id) == ["task-sent", "task-received", "task-started", "task-rejected"]
    # REVOKED as soon as the revoke is accepted (it waits: no worker runs it), then again
    # from the worker that skipped it.
    assert types(revoked.id) == ["task-sent", "task-revoked", "task-received", "task-revoked"]
    assert events[revoked.id][1].extra["reason"].startswith("revoked while waiting")

    sent, received, started, succeeded = events[ok.id]
    assert sent.args == [2, 3] and sent.kwargs == {"label": "sum"} and sent.name == "t.add"
    assert received.args == [2, 3] and received.kwargs == {"label": "sum"}
    assert received.hostname == started.hostname == succeeded.hostname == "w1@host"
    assert received.queue == "celeriac" and received.retries == 0
    assert succeeded.result == 5 and succeeded.runtime is not None and succeeded.runtime >= 0
    assert sent.timestamp <= received.timestamp <= started.timestamp <= succeeded.timestamp

    failure = events[failed.id][-1]
    assert failure.exception == "ValueError('kaboom')" and "kaboom" in (failure.traceback or "")
    retry = events[retried.id][-1]
    assert retry.exception == "OSError('try again')" and retry.eta is not None
    assert events[rejected.id][-1].extra["reason"] == "bad input"
    assert events[revoked.id][-1].state == "REVOKED"


def test_a_retry_is_not_sent_again_and_its_next_attempt_counts_retries(app: Celeriac) -> None:
    tasks = _tasks(app)
    retried = tasks["flaky"].delay()
    _work(app, 1)
    app.broker.purge("celeriac")
    attempt = tasks["flaky"].build_message((), {}, retries=1, task_id=retried.id)
    app.broker.publish([attempt.envelope(app.codec)])  # the due retry, as the broker hands it
    _work(app, 1)
    kinds = [(e.type, e.retries) for e in _events_by_task(app)[retried.id]]
    assert kinds.count(("task-sent", 0)) == 1
    assert ("task-received", 1) in kinds and kinds[-1] == ("task-failed", 1)


@pytest.mark.parametrize("setting", ["worker_send_task_events", "task_send_sent_event"])
def test_events_can_be_turned_off(app: Celeriac, setting: str) -> None:
    app.conf.update({setting: False})
    tasks = _tasks(app)
    result = tasks["add"].delay(1, 2)
    _work(app, 1)
    kinds = [e.type for e in _events_by_task(app).get(result.id, [])]
    if setting == "task_send_sent_event":
        assert kinds == ["task-received", "task-started", "task-succeeded"]
    else:
        assert kinds == ["task-sent"]


def test_an_eager_call_sends_no_worker_events(app: Celeriac) -> None:
    tasks = _tasks(app)
    assert tasks["add"].apply((1, 2)).get() == 3
    assert _events_by_task(app) == {}


def test_group_and_chord_members_say_where_they_belong(app: Celeriac) -> None:
    """Tools draw workflow trees from events: a chord header task names its group, its
    place in it, and the callback that joins them."""
    from celeriac import chord, group

    tasks = _tasks(app)
    grouped = group(tasks["add"].s(1, 1), tasks["add"].s(2, 2)).apply_async()
    joined = chord([tasks["add"].s(3, 3), tasks["add"].s(4, 4)], tasks["add"].s(0)).apply_async()
    plain = tasks["add"].delay(5, 5)
    _work(app, 5)
    kinds = ("task-sent", "task-received")
    events = _events_by_task(app)
    for result, index in zip(grouped.results, (0, 1), strict=True):
        for event in events[result.id]:
            if event.type in ("task-sent", "task-received"):
                wire = event.to_dict()
                assert (wire["group_id"], wire["group_index"]) == (grouped.id, index)
    callback_id = joined.id
    for member in joined.parent.results:  # type: ignore[union-attr]
        wires = [next(e for e in events[member.id] if e.type == k).to_dict() for k in kinds]
        for wire in wires:
            assert wire["chord"] == {"callback": "t.add", "callback_id": callback_id, "size": 2}
        assert wires[0]["root_id"] == wires[1]["root_id"]
    sent, received = (next(e for e in events[plain.id] if e.type == k) for k in kinds)
    assert sent.root_id == received.root_id == plain.id  # left out of task-sent: its own
