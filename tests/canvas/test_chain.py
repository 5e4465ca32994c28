"""Chains: each result is the first argument of the next; a failure stops the chain."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac, chain, group
from celeriac.exceptions import TaskRevokedError

from .conftest import Boom, Calls, wait_for


def test_chain_of_add_and_mul(app: Celeriac, worker: Any) -> None:
    worker()
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    assert chain(add.s(1, 2), mul.s(3)).apply_async().get(timeout=10) == 9
    assert (add.s(1, 2) | mul.s(3)).delay().get(timeout=10) == 9
    assert chain([add.s(1, 2), mul.s(3), add.s(1)]).delay().get(timeout=10) == 10


def test_the_chain_result_is_the_last_task_and_parents_lead_back(
    app: Celeriac, worker: Any
) -> None:
    worker()
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    result = (add.s(1, 2) | mul.s(3) | add.s(1)).delay()
    assert result.get(timeout=10) == 10
    assert result.parent is not None and result.parent.get(timeout=10) == 9
    assert result.parent.parent is not None and result.parent.parent.get(timeout=10) == 3


def test_partial_arguments_of_the_chain_go_to_the_first_task(app: Celeriac, worker: Any) -> None:
    worker()
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    assert (add.s(2) | mul.s(10)).delay(1).get(timeout=10) == 30


def test_an_immutable_step_ignores_the_previous_result(app: Celeriac, worker: Any) -> None:
    worker()
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    assert (add.s(1, 2) | mul.si(5, 5) | add.s(1)).delay().get(timeout=10) == 26


def test_a_failure_stops_the_chain_and_reaches_get(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    add, boom, record = app.tasks["t.add"], app.tasks["t.boom"], app.tasks["t.record"]
    # Given a chain whose second step fails
    result = (add.s(1, 2) | boom.s() | record.s() | record.s()).delay()
    # Expect: get() on the chain raises the failing step's error, at once
    with pytest.raises(Boom, match=r"boom \(3,\)"):
        result.get(timeout=10)
    # and nothing after it ran; every later step has the same error as its result
    assert calls.named("record") == []
    assert result.parent is not None
    assert result.failed() and result.parent.failed()
    assert "Boom" in (result.traceback or "")


def test_a_revoked_step_revokes_the_rest(app: Celeriac, worker: Any) -> None:
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    sig = add.s(1, 2) | mul.s(3) | add.s(1)
    result = sig.freeze()
    assert result.parent is not None
    app.revoke([result.parent.id])  # the middle step
    worker()
    sig.delay()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)


def test_chain_options_go_to_every_step_unless_a_step_sets_its_own(
    app: Celeriac, worker: Any
) -> None:
    # Given workers on two queues and no worker on the default queue
    worker("steps", "own")
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    sig = add.s(1, 2) | mul.s(3).set(queue="own") | add.s(1)
    result = sig.apply_async(queue="steps")
    assert result.get(timeout=10) == 10
    queues = [r.app.backend.get(r.id).queue for r in (result, result.parent, result.parent.parent)]
    assert queues == ["steps", "own", "steps"]


def test_a_group_followed_by_a_task_is_a_chord(app: Celeriac, worker: Any) -> None:
    worker()
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    sig = add.s(1, 1) | group(add.s(10), add.s(20)) | tsum.s()
    assert sig.delay().get(timeout=10) == 12 + 22


def test_a_chain_ending_in_a_group_returns_the_group(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    result = (add.s(1, 1) | group(add.s(10), add.s(20))).delay()
    assert result.get(timeout=10) == [12, 22]


def test_link_runs_after_the_chain(app: Celeriac, worker: Any, calls: Calls) -> None:
    worker()
    add, record = app.tasks["t.add"], app.tasks["t.record"]
    sig = add.s(1, 2) | add.s(3)
    sig.link(record.s("after"))
    assert sig.delay().get(timeout=10) == 6
    wait_for(lambda: calls.named("record"))
    assert calls.named("record") == [((6, "after"), {})]


def test_link_error_on_a_chain_runs_once_for_the_failing_step(
    app: Celeriac, worker: Any, calls: Calls
) -> None:
    worker()
    add, boom = app.tasks["t.add"], app.tasks["t.boom"]
    sig = add.s(1, 2) | boom.s() | add.s(1)
    sig.link_error(app.tasks["t.on_error"].s())
    result = sig.delay()
    with pytest.raises(Boom):
        result.get(timeout=10)
    wait_for(lambda: calls.named("on_error"))
    failed_id = result.parent.id  # type: ignore[union-attr]
    assert calls.named("on_error") == [(failed_id, "t.boom", "Boom('boom (3,)')", True)]


def test_every_message_of_a_chain_names_its_parent_and_root(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    last = (add.s(1, 1) | add.s(1) | add.s(1)).delay()
    assert last.get(timeout=10) == 4
    second, first = last.parent, last.parent.parent  # type: ignore[union-attr]
    metas = [app.backend.get(r.id) for r in (first, second, last)]  # type: ignore[union-attr]
    assert [m.root_id for m in metas] == [first.id] * 3  # type: ignore[union-attr]
    assert [m.parent_id for m in metas] == [None, first.id, second.id]  # type: ignore[union-attr]
