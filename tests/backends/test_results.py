"""Storing and reading task results on every backend: states, values, expiry, waiting."""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from celeriac import states
from celeriac.backends.base import Backend, TaskMeta, exception_from_dict, exception_to_dict
from celeriac.exceptions import TimeoutError

from .env import BackendEnv
from .helpers import SPAWN, store_after


def new_id() -> str:
    return uuid.uuid4().hex


def test_store_get_and_forget(backend: Backend) -> None:
    done, failed, unknown = new_id(), new_id(), new_id()
    backend.store(
        [
            TaskMeta(done, states.SUCCESS, result=[1, "two"], name="t.add", queue="q", retries=2),
            TaskMeta(
                failed, states.FAILURE, result=exception_to_dict(KeyError("k")), traceback="tb"
            ),
        ]
    )

    meta = backend.get(done)
    assert (meta.state, meta.result, meta.name, meta.queue, meta.retries) == (
        states.SUCCESS,
        [1, "two"],
        "t.add",
        "q",
        2,
    )
    assert meta.ready
    bad = backend.get(failed)
    assert bad.state == states.FAILURE and bad.traceback == "tb"
    assert isinstance(exception_from_dict(bad.result), KeyError)
    assert set(backend.get_many([done, failed, unknown])) == {done, failed}

    backend.forget([done])
    assert backend.get(done).state == states.PENDING
    assert backend.get(failed).state == states.FAILURE


def test_an_unknown_task_is_pending(backend: Backend) -> None:
    meta = backend.get(new_id())
    assert meta.state == states.PENDING and not meta.ready and meta.result is None


def test_a_later_store_replaces_the_record(backend: Backend) -> None:
    task_id = new_id()
    backend.store([TaskMeta(task_id, states.STARTED)])
    assert backend.get(task_id).state == states.STARTED
    backend.store([TaskMeta(task_id, states.SUCCESS, result=3)])
    assert backend.get(task_id).result == 3


def test_values_of_the_usual_python_types_round_trip(backend: Backend) -> None:
    task_id = new_id()
    value = {
        "when": datetime(2024, 5, 17, 12, 30, 1, 250, tzinfo=timezone.utc),
        "naive": datetime(2024, 5, 17, 12, 30),
        "day": date(2024, 5, 17),
        "span": timedelta(seconds=90),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "money": Decimal("12.3400"),
        "raw": b"\x00\xffbytes",
        "nested": [{"ids": [uuid.UUID(int=7)]}, (1, 2)],
    }
    backend.store(
        [TaskMeta(task_id, states.SUCCESS, result=value, args=[b"x"], kwargs={"d": Decimal(1)})]
    )

    meta = backend.get(task_id)

    assert meta.result == {**value, "nested": [{"ids": [uuid.UUID(int=7)]}, [1, 2]]}
    assert type(meta.result["money"]) is Decimal and type(meta.result["raw"]) is bytes
    assert meta.args == [b"x"] and meta.kwargs == {"d": Decimal(1)}


def test_results_expire_by_themselves(env: BackendEnv) -> None:
    backend = env.connect(expires=0.3)
    task_id, group_id = new_id(), new_id()
    backend.store([TaskMeta(task_id, states.SUCCESS, result=1)])
    backend.save_group(group_id, [task_id])
    assert backend.get(task_id).state == states.SUCCESS
    assert backend.get_group(group_id) == [task_id]

    deadline = time.monotonic() + 5
    while backend.get(task_id).state != states.PENDING or backend.get_group(group_id):
        assert time.monotonic() < deadline, "result or group outlived its expiry"
        time.sleep(0.02)
    assert backend.get_many([task_id]) == {}


def test_wait_returns_as_soon_as_another_thread_stores(env: BackendEnv) -> None:
    waiter, writer = env.connect(), env.connect()
    task_id = new_id()
    waiter.get(task_id)
    stored_at: list[float] = []

    def store_soon() -> None:
        time.sleep(0.2)
        writer.store([TaskMeta(task_id, states.STARTED)])  # not ready: wait goes on
        time.sleep(0.1)
        stored_at.append(time.monotonic())
        writer.store([TaskMeta(task_id, states.SUCCESS, result="done")])

    thread = threading.Thread(target=store_soon)
    thread.start()
    meta = waiter.wait(task_id, timeout=10)
    woke_at = time.monotonic()
    thread.join()

    assert meta.result == "done"
    assert woke_at - stored_at[0] < 1.0  # not at the end of the 10 s timeout


def test_wait_returns_as_soon_as_another_process_stores(process_env: BackendEnv) -> None:
    waiter = process_env.connect()
    task_id = new_id()
    out = SPAWN.Queue()
    child = SPAWN.Process(target=store_after, args=(process_env, task_id, 0.3, out))
    child.start()
    try:
        meta = waiter.wait(task_id, timeout=30)
        woke_at = time.time()
        stored_at = out.get(timeout=10)
    finally:
        child.join(10)
    assert meta.result == "from another process"
    assert woke_at - stored_at < 1.0  # not at the end of the 30 s timeout


def test_wait_raises_timeout_error_after_the_timeout(backend: Backend) -> None:
    task_id = new_id()
    backend.store([TaskMeta(task_id, states.STARTED)])
    start = time.monotonic()

    with pytest.raises(TimeoutError, match=task_id):
        backend.wait(task_id, timeout=0.3)

    assert 0.25 <= time.monotonic() - start < 1.5
    assert issubclass(TimeoutError, builtins.TimeoutError)  # callers may catch either


def test_groups_keep_their_members_in_order(backend: Backend) -> None:
    group_id, members = new_id(), [new_id() for _ in range(5)]
    backend.save_group(group_id, members)
    assert backend.get_group(group_id) == members
    assert backend.get_group(new_id()) is None
