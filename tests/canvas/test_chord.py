"""Chords: the callback gets every header result in order, once; failures reach get()."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac, chain, chord, group
from celeriac.canvas import flow
from celeriac.exceptions import ConfigurationError
from celeriac.message import Message, decode
from celeriac.worker.job import Executor

from .conftest import Boom, Calls, wait_for


def test_chord_sums_the_header(app: Celeriac, worker: Any, calls: Calls) -> None:
    worker(threads=4)
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    result = chord([add.s(i, i) for i in range(50)], tsum.s()).apply_async()
    assert result.get(timeout=30) == sum(i + i for i in range(50))
    # the callback ran once, with the results in header order
    assert calls.named("tsum") == [[i + i for i in range(50)]]
    assert result.parent is not None and result.parent.get(timeout=1)[:3] == [0, 2, 4]


def test_chord_of_celery_spelling(app: Celeriac, worker: Any) -> None:
    worker()
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    assert chord(add.s(i, i) for i in range(3))(tsum.s()).get(timeout=10) == 6
    assert (group(add.s(1, 1), add.s(2, 2)) | tsum.s()).delay().get(timeout=10) == 6


def test_no_polling_task_exists(app: Celeriac) -> None:
    # Given a chord sent with no worker running
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    chord([add.s(1, 1), add.s(2, 2)], tsum.s()).apply_async()
    # Expect: the broker holds the two header tasks and nothing else
    held = app.broker.fetch(["celeriac"], "probe", 100, 0.0)
    assert sorted(decode(d.body, app.codec, d).task for d in held) == ["t.add", "t.add"]


def test_a_failing_header_fails_the_chord_and_runs_its_errback_once(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker(threads=4)
    add, boom, tsum = app.tasks["t.add"], app.tasks["t.boom"], app.tasks["t.tsum"]
    # Given a chord with two failing header tasks and an errback
    body = tsum.s().on_error(app.tasks["t.on_error_id"].s("chord failed"))
    result = chord([add.s(1, 1), boom.s(1), add.s(2, 2), boom.s(2)], body).apply_async()
    # Expect: get() raises the (first) header failure; the body never ran
    with pytest.raises(Boom, match=r"boom \(1,\)"):
        result.get(timeout=10)
    wait_for(lambda: calls.named("on_error_id"))
    assert calls.named("tsum") == []
    # and the errback ran once, given the body's id
    assert calls.named("on_error_id") == [(result.id, "chord failed")]


def test_an_empty_chord_calls_back_with_nothing(app: Celeriac, worker: Any) -> None:
    worker()
    assert chord([], app.tasks["t.tsum"].s()).delay().get(timeout=10) == 0


def test_a_chord_inside_a_chain(app: Celeriac, worker: Any) -> None:
    worker(threads=3)
    add, mul, tsum = app.tasks["t.add"], app.tasks["t.mul"], app.tasks["t.tsum"]
    sig = chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s()), mul.s(10))
    assert sig.delay().get(timeout=10) == ((2 + 1) + (2 + 2)) * 10


def test_a_chain_in_the_header_and_a_chain_as_the_body(app: Celeriac, worker: Any) -> None:
    worker(threads=3)
    add, mul, tsum = app.tasks["t.add"], app.tasks["t.mul"], app.tasks["t.tsum"]
    header = [chain(add.s(i, i), mul.s(10)) for i in range(4)]
    result = chord(header, chain(tsum.s(), mul.s(2))).delay()
    assert result.get(timeout=10) == sum(i * 20 for i in range(4)) * 2


def test_a_failing_step_of_a_chain_in_the_header_fails_the_chord(
    app: Celeriac, worker: Any
) -> None:
    worker(threads=3)
    add, boom, tsum = app.tasks["t.add"], app.tasks["t.boom"], app.tasks["t.tsum"]
    header = [chain(add.s(1, 1), add.s(1)), chain(add.s(2, 2), boom.s(), add.s(1))]
    with pytest.raises(Boom, match=r"boom \(4,\)"):
        chord(header, tsum.s()).delay().get(timeout=10)


def test_nested_chords(app: Celeriac, worker: Any) -> None:
    worker(threads=4)
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    inner = chord([add.s(1, 1), add.s(2, 2)], tsum.s())  # 6
    outer = chord([inner, add.s(10, 10)], tsum.s())  # 6 + 20
    assert outer.delay().get(timeout=10) == 26


def test_a_failing_body_reaches_get(app: Celeriac, worker: Any) -> None:
    worker()
    add, boom = app.tasks["t.add"], app.tasks["t.boom"]
    with pytest.raises(Boom, match=r"boom \(\[2, 4\],\)"):
        chord([add.s(1, 1), add.s(2, 2)], boom.s()).delay().get(timeout=10)


def test_a_header_task_reported_twice_counts_once(app: Celeriac) -> None:
    # Given a chord of three whose first part is reported again (a redelivery)
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    result = chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], tsum.s()).apply_async()
    first = _header_messages(app)[0]
    executor = Executor(app, "w", "c", app.broker, app.backend)
    deliveries = app.broker.fetch(["celeriac"], "c", 10, 0.0)
    executor.process(deliveries[0])
    flow.join(app, first.group_id or "", 0, first.chord or {}, first, redelivered=True)
    executor.process(deliveries[1])
    # Expect: the body is not sent until the third part is done, then once
    assert app.broker.fetch(["celeriac"], "c", 10, 0.0) == []
    executor.process(deliveries[2])
    body = app.broker.fetch(["celeriac"], "c", 10, 0.0)
    assert len(body) == 1
    executor.process(body[0])
    assert result.get(timeout=5) == 12


def _header_messages(app: Celeriac) -> list[Message]:
    held = app.broker.fetch(["celeriac"], "peek", 100, 0.0)
    app.broker.release("peek", [d.tag for d in held])
    return [decode(d.body, app.codec, d) for d in held]


def test_a_body_lost_in_a_crash_is_sent_when_the_last_part_comes_back(
    app: Celeriac, worker: Any
) -> None:
    # Given a chord whose last part completed the join, but whose worker died
    # before sending the body (simulated: the counter says done, no body sent)
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    result = chord([add.s(1, 1), add.s(2, 2)], tsum.s()).apply_async()
    parts = _header_messages(app)
    executor = Executor(app, "w", "c", app.broker, app.backend)
    for delivery in app.broker.fetch(["celeriac"], "c", 10, 0.0):
        job = executor.prepare(delivery)
        assert job is not None
        executor.run(job)
        app.backend.store([job.meta()])
        app.backend.chord_part_done(parts[0].group_id or "", job.message.group_index or 0, 2)
    # When the last part is delivered again and reports itself
    last = parts[-1]
    flow.join(
        app, last.group_id or "", last.group_index or 0, last.chord or {}, last, redelivered=True
    )
    # Expect: the body is sent, once
    worker()
    assert result.get(timeout=10) == 6


def test_a_chord_without_a_result_backend_is_refused(app: Celeriac) -> None:
    app.conf.result_backend = "disabled://"
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    with pytest.raises(ConfigurationError, match="a chord needs a result backend"):
        chord([add.s(1, 1)], tsum.s()).delay()


def test_a_task_id_given_when_sent_is_the_result_id(app: Celeriac, worker: Any) -> None:
    worker()
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    result = chord([add.s(1, 1)], tsum.s()).apply_async(task_id="my-chord")
    assert result.id == "my-chord" and result.get(timeout=10) == 2
    result = (add.s(1, 1) | add.s(1)).apply_async(task_id="my-chain")
    assert result.id == "my-chain" and result.get(timeout=10) == 3
    assert add.s(1, 1).apply_async(task_id=None).id
