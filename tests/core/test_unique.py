"""Unique tasks: a second send of a key someone holds publishes nothing and returns the
holder's result (memory broker; tests/limits/test_unique_e2e.py runs real processes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.worker.job import Executor


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("t", broker=url, backend=url)
    yield app
    app.close()


def _waiting(app: Celeriac) -> int:
    return app.broker.stats("celeriac").total_waiting


def _run_all(app: Celeriac, ran: list[Any], expected: int) -> None:
    executor = Executor(app, "w", "c", app.broker, app.backend)
    deadline = time.monotonic() + 10
    while len(ran) < expected:
        assert time.monotonic() < deadline, f"ran {ran}, expected {expected} runs"
        for delivery in app.broker.fetch(["celeriac"], "c", 10, 0.2):
            executor.process(delivery)
    executor.close()


def test_a_second_send_of_a_held_key_returns_the_first_result_and_sends_nothing(
    app: Celeriac,
) -> None:
    @app.task
    def charge(order: int) -> int:
        return order

    first = charge.apply_async((1,), unique_key="order-1")
    second = charge.apply_async((2,), unique_key="order-1")
    other = charge.apply_async((3,), unique_key="order-2")

    assert second.id == first.id
    assert other.id != first.id
    assert _waiting(app) == 2


def test_unique_takes_the_key_from_an_argument(app: Celeriac) -> None:
    @app.task(unique="customer")
    def sync(customer: str, page: int = 0) -> None:
        pass

    a = sync.delay("c1", 1)
    assert sync.delay("c1", page=2).id == a.id
    assert sync.apply_async(kwargs={"customer": "c1"}).id == a.id
    assert sync.delay("c2").id != a.id
    assert _waiting(app) == 2


def test_unique_true_keys_on_the_whole_call_and_a_callable_on_its_result(app: Celeriac) -> None:
    @app.task(unique=True)
    def whole(a: int, b: int) -> None:
        pass

    @app.task(unique=lambda args, kwargs: str(args[0] % 2))
    def parity(n: int) -> None:
        pass

    assert whole.delay(1, 2).id == whole.delay(1, 2).id
    assert whole.delay(1, 2).id != whole.delay(2, 1).id
    assert parity.delay(1).id == parity.delay(3).id
    assert parity.delay(1).id != parity.delay(2).id


def test_keys_are_per_task(app: Celeriac) -> None:
    @app.task
    def one() -> None:
        pass

    @app.task
    def two() -> None:
        pass

    assert one.apply_async(unique_key="k").id != two.apply_async(unique_key="k").id


def test_a_window_in_seconds_ends_on_its_own(app: Celeriac) -> None:
    @app.task(unique="n", unique_for=0.3)
    def tick(n: int) -> None:
        pass

    first = tick.delay(1)
    assert tick.delay(1).id == first.id
    deadline = time.monotonic() + 5
    while (later := tick.delay(1)).id == first.id:
        assert time.monotonic() < deadline, "the window outlived unique_for"
        time.sleep(0.02)
    assert _waiting(app) == 2
    assert later.id != first.id


def test_held_until_finished_the_key_is_free_once_the_task_ran(app: Celeriac) -> None:
    ran: list[int] = []

    @app.task(unique="n")
    def work(n: int) -> None:
        ran.append(n)

    first = work.delay(1)
    assert work.delay(1).id == first.id
    _run_all(app, ran, 1)

    again = work.delay(1)

    assert again.id != first.id
    assert _waiting(app) == 1


def test_a_retry_keeps_the_key_until_the_last_attempt(app: Celeriac) -> None:
    ran: list[int] = []

    @app.task(bind=True, unique="n", max_retries=1)
    def flaky(self: Any, n: int) -> None:
        ran.append(self.request.retries)
        if self.request.retries == 0:
            raise self.retry(countdown=0)

    first = flaky.delay(1)
    executor = Executor(app, "w", "c", app.broker, app.backend)
    for delivery in app.broker.fetch(["celeriac"], "c", 10, 1.0):
        executor.process(delivery)
    assert ran == [0]
    assert flaky.delay(1).id == first.id  # the retry holds it
    _run_all(app, ran, 2)
    assert flaky.delay(1).id != first.id


def test_a_send_that_fails_frees_the_key(app: Celeriac, monkeypatch: pytest.MonkeyPatch) -> None:
    @app.task
    def job() -> None:
        pass

    def refuse(messages: Any) -> None:
        raise ConnectionError("broker down")

    with monkeypatch.context() as patch:
        patch.setattr(app, "publish", refuse)
        with pytest.raises(ConnectionError):
            job.apply_async(unique_key="k")
    sent = job.apply_async(unique_key="k")
    assert _waiting(app) == 1
    assert job.apply_async(unique_key="k").id == sent.id


@pytest.mark.parametrize("bad", [0, -1, 86_401, "1h", True])
def test_a_bad_window_is_explained(app: Celeriac, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="unique_for of .* must be seconds"):

        @app.task(unique="n", unique_for=bad)
        def task(n: int) -> None:
            pass

    @app.task
    def fine() -> None:
        pass

    with pytest.raises(ConfigurationError, match="unique_for"):
        fine.apply_async(unique_key="k", unique_for=bad)


def test_a_bad_key_is_explained(app: Celeriac) -> None:
    @app.task(unique="missing")
    def task(n: int) -> None:
        pass

    with pytest.raises(ConfigurationError, match="unique='missing' of .* is not an argument"):
        task.delay(1)
    with pytest.raises(ConfigurationError, match="unique_key .* must be a non-empty string"):
        task.apply_async((1,), unique_key=42)


def test_debounce_runs_the_last_send_once_after_the_quiet_period(app: Celeriac) -> None:
    """Given three sends of one key 0.3 s apart at most, expect only the last to run,
    0.3 s after it, and the other two recorded as revoked (superseded)."""
    ran: list[int] = []

    @app.task(unique="user", debounce=0.3)
    def reindex(user: str, version: int) -> None:
        ran.append(version)

    sent = [reindex.delay("u1", version) for version in range(3)]
    other = reindex.delay("u2", 9)
    last_sent = time.time()
    assert len({r.id for r in sent}) == 3
    assert app.broker.stats("celeriac").delayed == 4

    executor = Executor(app, "w", "c", app.broker, app.backend)
    deadline = time.monotonic() + 10
    while len(ran) < 2:
        assert time.monotonic() < deadline, f"ran {ran}"
        for delivery in app.broker.fetch(["celeriac"], "c", 10, 0.2):
            executor.process(delivery)
    executor.close()

    assert sorted(ran) == [2, 9]
    assert time.time() - last_sent >= 0.3
    assert [r.state for r in sent] == ["REVOKED", "REVOKED", "SUCCESS"]
    assert other.state == "SUCCESS"


def test_debounce_needs_a_key_and_owns_the_countdown(app: Celeriac) -> None:
    @app.task
    def task() -> None:
        pass

    with pytest.raises(ConfigurationError, match="debounce of .* needs a key"):
        task.apply_async(debounce=1)
    with pytest.raises(ConfigurationError, match="drop countdown/eta"):
        task.apply_async(unique_key="k", debounce=1, countdown=5)
    with pytest.raises(ConfigurationError, match="debounce of .* must be"):
        task.apply_async(unique_key="k", debounce=-1)
