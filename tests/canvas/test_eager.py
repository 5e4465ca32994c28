"""Workflows run eagerly: ``apply()`` and ``task_always_eager``, as Celery does."""

from __future__ import annotations

import pytest

from celeriac import Celeriac, GroupResult, chain, chord, group
from celeriac.canvas import xmap

from .conftest import Boom, Calls


@pytest.fixture
def eager(app: Celeriac) -> Celeriac:
    app.conf.task_always_eager = True
    return app


def test_every_form_runs_eagerly(eager: Celeriac, calls: Calls) -> None:
    add, mul, tsum = eager.tasks["t.add"], eager.tasks["t.mul"], eager.tasks["t.tsum"]
    assert (add.s(1, 2) | mul.s(3)).delay().get() == 9
    assert group(add.s(i, i) for i in range(5)).apply_async().get() == [0, 2, 4, 6, 8]
    assert chord([add.s(i, i) for i in range(5)], tsum.s()).delay().get() == 20
    assert (add.s(1, 1) | group(add.s(1), add.s(2)) | tsum.s()).delay().get() == 7
    assert chord([chain(add.s(1, 1), mul.s(10))], tsum.s()).delay().get() == 20
    assert add.chunks([(1, 1), (2, 2), (3, 3)], 2).delay().get() == [[2, 4], [6]]
    assert xmap(add.s(10), [1, 2]).delay().get() == [11, 12]
    assert calls.named("tsum")  # the body really ran


def test_apply_runs_eagerly_without_the_setting(app: Celeriac) -> None:
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    result = (add.s(1, 2) | mul.s(3)).apply()
    assert result.get() == 9 and result.parent is not None and result.parent.get() == 3
    assert isinstance(group(add.s(1, 1)).apply(), GroupResult)


def test_eager_failure_raises_after_the_errbacks(eager: Celeriac, calls: Calls) -> None:
    add, boom = eager.tasks["t.add"], eager.tasks["t.boom"]
    sig = add.s(1, 2) | boom.s() | add.s(1)
    sig.link_error(eager.tasks["t.on_error"].s())
    with pytest.raises(Boom):
        sig.delay()
    assert [c[1] for c in calls.named("on_error")] == ["t.boom"]


def test_eager_failure_without_propagation_stops_the_chain(eager: Celeriac, calls: Calls) -> None:
    eager.conf.task_eager_propagates = False
    add, boom, record = eager.tasks["t.add"], eager.tasks["t.boom"], eager.tasks["t.record"]
    result = (add.s(1, 2) | boom.s() | record.s()).delay()
    with pytest.raises(Boom):
        result.get()
    assert calls.named("record") == []


def test_eager_chord_failure_runs_the_body_errback(eager: Celeriac, calls: Calls) -> None:
    eager.conf.task_eager_propagates = False
    add, boom, tsum = eager.tasks["t.add"], eager.tasks["t.boom"], eager.tasks["t.tsum"]
    body = tsum.s().on_error(eager.tasks["t.on_error_id"].s())
    result = chord([add.s(1, 1), boom.s()], body).delay()
    with pytest.raises(Boom):
        result.get()
    assert calls.named("tsum") == []
    assert calls.named("on_error_id") == [(result.id, "")]


def test_eager_link_runs_the_callback(eager: Celeriac, calls: Calls) -> None:
    add, record = eager.tasks["t.add"], eager.tasks["t.record"]
    add.s(1, 2).set(link=record.s("x")).delay()
    assert calls.named("record") == [((3, "x"), {})]


def test_eager_apply_async_with_link_and_link_error(eager: Celeriac, calls: Calls) -> None:
    add, boom, record = eager.tasks["t.add"], eager.tasks["t.boom"], eager.tasks["t.record"]
    assert add.apply_async((1, 2), link=record.s("x")).get() == 3
    eager.conf.task_eager_propagates = False
    boom.apply_async((5,), link=record.s(), link_error=eager.tasks["t.on_error_id"].s())
    assert calls.named("record") == [((3, "x"), {})]
    assert len(calls.named("on_error_id")) == 1


def test_calling_a_workflow_sends_it(eager: Celeriac) -> None:
    add, tsum = eager.tasks["t.add"], eager.tasks["t.tsum"]
    assert (add.s(1, 2) | add.s(3))().get() == 6
    assert group(add.s(1, 1), add.s(2, 2))().get() == [2, 4]
    assert chord([add.s(1, 1)])(tsum.s()).get() == 2
