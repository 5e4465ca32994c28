"""``link`` and ``link_error``: what callbacks and errbacks receive."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac, group
from celeriac.canvas.errbacks import takes_error_details

from .conftest import Boom, Calls, wait_for


def test_link_gets_the_result_first(app: Celeriac, worker: Any, calls: Calls) -> None:
    worker()
    add, record = app.tasks["t.add"], app.tasks["t.record"]
    add.apply_async((1, 2), link=record.s("then", k=1)).get(timeout=10)
    wait_for(lambda: calls.named("record"))
    assert calls.named("record") == [((3, "then"), {"k": 1})]


def test_new_style_errback_gets_request_exception_and_traceback(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    result = app.tasks["t.boom"].apply_async((7,), link_error=app.tasks["t.on_error"].s())
    with pytest.raises(Boom):
        result.get(timeout=10)
    wait_for(lambda: calls.named("on_error"))
    assert calls.named("on_error") == [(result.id, "t.boom", "Boom('boom (7,)')", True)]


def test_old_style_errback_gets_the_task_id_and_an_immutable_one_nothing(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    on_error_id = app.tasks["t.on_error_id"]
    sig = app.tasks["t.boom"].s().on_error(on_error_id.s("note"))
    sig.link_error(on_error_id.si("fixed", "only"))
    result = sig.delay()
    with pytest.raises(Boom):
        result.get(timeout=10)
    wait_for(lambda: len(calls.named("on_error_id")) == 2)
    assert sorted(calls.named("on_error_id")) == sorted([("fixed", "only"), (result.id, "note")])


def test_errbacks_do_not_run_on_success_nor_callbacks_on_failure(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    record, on_error = app.tasks["t.record"], app.tasks["t.on_error"]
    ok = app.tasks["t.add"].apply_async((1, 1), link_error=on_error.s())
    bad = app.tasks["t.boom"].apply_async(link=record.s())
    ok.get(timeout=10)
    with pytest.raises(Boom):
        bad.get(timeout=10)
    sentinel = app.tasks["t.record"].delay("sentinel")  # runs after both, same queue
    sentinel.get(timeout=10)
    assert calls.named("record") == [(("sentinel",), {})]
    assert calls.named("on_error") == []


def test_group_link_error_runs_for_each_failing_member(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    boom, add = app.tasks["t.boom"], app.tasks["t.add"]
    sig = group(boom.s(1), add.s(1, 1), boom.s(2))
    sig.link_error(app.tasks["t.on_error_id"].s())
    result = sig.delay()
    result.get(timeout=10, propagate=False)
    wait_for(lambda: len(calls.named("on_error_id")) == 2)
    assert sorted(c[0] for c in calls.named("on_error_id")) == sorted([result[0].id, result[2].id])


def test_which_convention_an_errback_follows(app: Celeriac) -> None:
    def define(name: str, fun: Any, **options: Any) -> Any:
        return app.task(name=name, **options)(fun)

    def details(request: Any, exc: Any, traceback: Any) -> None: ...
    def bound(self: Any, request: Any, exc: Any, traceback: Any) -> None: ...
    def by_id(task_id: str) -> None: ...
    def by_id_with_extra(task_id: str, extra: Any) -> None: ...
    def anything(*args: Any) -> None: ...

    assert takes_error_details(define("e.details", details), 0)
    assert takes_error_details(define("e.bound", bound, bind=True), 0)
    assert not takes_error_details(define("e.by_id", by_id), 0)
    assert not takes_error_details(define("e.extra", by_id_with_extra), 1)
    assert takes_error_details(define("e.any", anything), 0)
