"""Groups: sent in one batch, results in order, failures raised or returned in place."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac, GroupResult, chain, group

from .conftest import Boom


def test_a_group_of_100_returns_results_in_order(app: Celeriac, worker: Any) -> None:
    worker(threads=4)
    add = app.tasks["t.add"]
    result = group(add.s(i, i) for i in range(100)).apply_async()
    assert isinstance(result, GroupResult) and len(result) == 100
    assert result.get(timeout=30) == [i + i for i in range(100)]
    assert result.ready() and result.successful() and result.completed_count() == 100


def test_a_group_is_published_in_one_batch(app: Celeriac, monkeypatch: Any) -> None:
    batches: list[int] = []
    publish = app.broker.publish
    monkeypatch.setattr(
        app.broker, "publish", lambda envs: (batches.append(len(envs)), publish(envs))
    )
    add = app.tasks["t.add"]
    group(add.s(i, i) for i in range(1000)).apply_async()
    assert batches == [1000]


def test_get_raises_the_failure(app: Celeriac, worker: Any) -> None:
    worker()
    add, boom = app.tasks["t.add"], app.tasks["t.boom"]
    result = group(add.s(1, 1), boom.s(2), add.s(3, 3)).delay()
    with pytest.raises(Boom, match=r"boom \(2,\)"):
        result.get(timeout=10)
    assert result.failed() and not result.successful()


def test_propagate_false_returns_exceptions_in_place(app: Celeriac, worker: Any) -> None:
    worker()
    add, boom = app.tasks["t.add"], app.tasks["t.boom"]
    values = group(add.s(1, 1), boom.s(2), add.s(3, 3)).delay().get(timeout=10, propagate=False)
    assert values[0] == 2 and values[2] == 6
    assert isinstance(values[1], Boom) and str(values[1]) == "boom (2,)"


def test_partial_arguments_go_to_every_member(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    assert group(add.s(1), add.s(2)).delay(10).get(timeout=10) == [11, 12]


def test_a_group_of_chains(app: Celeriac, worker: Any) -> None:
    worker()
    add, mul = app.tasks["t.add"], app.tasks["t.mul"]
    result = group(chain(add.s(i, i), mul.s(10)) for i in range(5)).delay()
    assert result.get(timeout=10) == [i * 20 for i in range(5)]


def test_nested_groups_are_flattened(app: Celeriac, worker: Any) -> None:
    worker("q", "celeriac")
    add = app.tasks["t.add"]
    sig = group(add.s(1, 1), group(add.s(2, 2), add.s(3, 3)).set(queue="q"))
    result = sig.delay()
    assert result.get(timeout=10) == [2, 4, 6]
    assert [app.backend.get(r.id).queue for r in result] == ["celeriac", "q", "q"]


def test_members_know_their_group(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    result = group(add.s(i, i) for i in range(3)).delay()
    result.get(timeout=10)
    assert {app.backend.get(r.id).group_id for r in result} == {result.id}


def test_save_and_restore(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    result = group(add.s(i, i) for i in range(3)).delay()
    result.save()
    again = GroupResult.restore(result.id, app)
    assert again is not None and again.get(timeout=10) == [0, 2, 4]


def test_get_times_out_naming_what_is_missing(app: Celeriac) -> None:
    add = app.tasks["t.add"]
    result = group(add.s(1, 1), add.s(2, 2)).delay()  # no worker
    with pytest.raises(TimeoutError, match="2 of 2 tasks not ready after 0.2s"):
        result.get(timeout=0.2)


def test_revoke_revokes_every_member(app: Celeriac, worker: Any) -> None:
    add = app.tasks["t.add"]
    result = group(add.s(1, 1), add.s(2, 2)).delay()
    result.revoke()
    worker()
    values = result.get(timeout=10, propagate=False)
    assert all(type(v).__name__ == "TaskRevokedError" for v in values)
