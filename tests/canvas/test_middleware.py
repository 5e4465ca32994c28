"""The canvas middleware costs plain tasks nothing: their result and ack stay one call."""

from __future__ import annotations

from typing import Any

from celeriac import Celeriac
from celeriac.message import decode
from celeriac.middleware import Canvas, default_middleware
from celeriac.worker.job import Executor


def test_canvas_middleware_is_on_by_default() -> None:
    assert any(isinstance(m, Canvas) for m in default_middleware())


def test_plain_tasks_keep_the_one_call_store_and_ack(app: Celeriac, monkeypatch: Any) -> None:
    # Given a worker executor whose broker counts combined store+ack calls
    broker, backend = app.connect_broker(), app.connect_backend()
    combined: list[int] = []
    complete = broker.complete
    monkeypatch.setattr(
        broker, "complete", lambda *a, **k: (combined.append(1), complete(*a, **k))[1]
    )
    executor = Executor(app, "w", "c", broker, backend)
    add, record = app.tasks["t.add"], app.tasks["t.record"]
    plain = add.delay(1, 1)
    linked = add.apply_async((2, 2), link=record.s())
    # When both run
    for delivery in broker.fetch(["celeriac"], "c", 10, 0.0):
        executor.process(delivery)
    # Expect: the plain one was stored and acked in one call, the linked one was not
    assert plain.get(timeout=1) == 2 and linked.get(timeout=1) == 4
    assert combined == [1]
    left = [decode(d.body, app.codec, d).task for d in broker.fetch(["celeriac"], "c", 10, 0.0)]
    assert left == ["t.record"]  # the linked task's callback was sent
