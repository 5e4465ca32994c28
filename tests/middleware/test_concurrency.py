"""Concurrency limits per key, in one process on the memory broker: the options, the
key, parking and promotion through the worker's executor, and what a broker without
the capability does. The real-process proofs are in tests/limits/test_concurrency_e2e.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac, states
from celeriac.brokers.concurrency import park, unpark
from celeriac.brokers.memory import MemoryBroker
from celeriac.exceptions import ConfigurationError
from celeriac.message import Envelope
from celeriac.middleware.concurrency import concurrency_key
from celeriac.worker.job import Executor


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://concurrency-{uuid.uuid4().hex}"
    app = Celeriac("concurrency-test", broker=url, backend=url, set_as_current=False)
    yield app
    app.close()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"concurrency_limit": 0}, "must be a whole number of at least 1"),
        ({"concurrency_limit": "3"}, "must be a whole number of at least 1"),
        ({"concurrency_limit": True}, "must be a whole number of at least 1"),
        ({"concurrency_key": "customer"}, "needs concurrency_limit=N"),
        ({"concurrency_limit": 2, "concurrency_key": 7}, "an argument's name or a callable"),
    ],
)
def test_a_limit_that_cannot_work_is_refused_at_declaration(
    app: Celeriac, options: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        app.task(name="t.bad", **options)(lambda customer: None)


def test_the_key_comes_from_an_argument_by_name_or_from_a_callable(app: Celeriac) -> None:
    by_name = app.task(name="t.named", concurrency_limit=1, concurrency_key="customer")(
        lambda order, customer: None
    )
    by_call = app.task(
        name="t.called", concurrency_limit=1, concurrency_key=lambda a, k: f"{a[0]}-{k['x']}"
    )(lambda n, x: None)
    plain = app.task(name="t.plain", concurrency_limit=1)(lambda: None)

    assert concurrency_key(by_name, (1, "acme"), {}) == "t.named:acme"
    assert concurrency_key(by_name, (1,), {"customer": "zeta"}) == "t.named:zeta"
    assert concurrency_key(by_call, (4,), {"x": 2}) == "t.called:4-2"
    assert concurrency_key(plain, (), {}) == "t.plain"
    with pytest.raises(ConfigurationError, match="'customer' of t.named is not an argument"):
        concurrency_key(by_name, (1,), {})


def test_at_most_the_limit_run_at_once_and_waiters_start_when_a_slot_frees(
    app: Celeriac,
) -> None:
    """Given 4 consumer threads and 12 tasks limited to 2 at once, expect never more than 2
    running, every task to run once, and the parked ones to hold no consumer."""
    running, most, ran = [0], [0], []
    lock = threading.Lock()

    @app.task(name="t.limited", concurrency_limit=2)
    def limited(i: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
            ran.append(i)

    for i in range(12):
        limited.delay(i)

    def consume(n: int) -> None:
        broker = app.connect_broker()
        executor = Executor(app, "h", f"c{n}", broker, app.connect_backend())
        deadline = time.monotonic() + 20
        while len(ran) < 12 and time.monotonic() < deadline:
            for delivery in broker.fetch(["celeriac"], f"c{n}", 1, 0.05):
                executor.process(delivery)

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(ran) == list(range(12))
    assert most[0] == 2
    limits = app.broker.concurrency
    assert limits is not None and limits.holders("t.limited") == {}


def test_a_parked_task_is_acked_and_runs_when_the_holder_finishes(app: Celeriac) -> None:
    """Given a limit of 1 held by a running task, a second delivery is parked (acked, no
    result stored); when the first finishes, the second is back on its queue at once."""

    @app.task(name="t.one", concurrency_limit=1)
    def one(i: int) -> int:
        return i

    broker = app.connect_broker()
    executor = Executor(app, "h", "c1", broker, app.connect_backend())
    first, second = one.delay(1), one.delay(2)
    d1, d2 = broker.fetch(["celeriac"], "c1", 2, 1.0)
    job1 = executor.prepare(d1)
    assert job1 is not None
    executor.run(job1)  # ran, not yet finished (the hold is freed after the ack)

    parked = executor.process(d2)

    assert parked is not None and parked.skipped is not None and parked.skipped.parked
    assert broker.stats("celeriac").total_waiting == 0 and broker.stats("celeriac").in_flight == 1
    assert app.backend.get(second.id).state == states.PENDING
    executor.finish(job1)
    [again] = broker.fetch(["celeriac"], "c1", 1, 1.0)
    assert again.id == second.id
    executor.process(again)
    assert first.get(timeout=1) == 1 and second.get(timeout=1) == 2


def test_a_task_without_a_limit_makes_no_call_to_the_limits(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    @app.task(name="t.free")
    def free() -> None:
        pass

    broker = app.connect_broker()
    limits = broker.concurrency
    assert limits is not None
    for name in ("acquire", "release", "moved", "renew", "sweep"):
        monkeypatch.setattr(limits, name, _refuse)
    app._connections().broker = broker
    executor = Executor(app, "h", "c1", broker, app.connect_backend())
    result = free.delay()
    [delivery] = broker.fetch(["celeriac"], "c1", 1, 1.0)
    executor.process(delivery)
    assert result.state == states.SUCCESS


def _refuse(*args: Any) -> Any:
    raise AssertionError("a task without a limit called the concurrency limits")


def test_on_a_broker_without_the_capability_a_limited_task_fails_saying_why(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Lacking(MemoryBroker):
        def __init__(self, url: str, **options: Any) -> None:
            super().__init__(url, **options)
            self.concurrency = None

    broker = Lacking(app.broker_url)
    app._connections().broker = broker

    @app.task(name="t.limited", concurrency_limit=1)
    def limited() -> None:
        pass

    result = limited.delay()
    executor = Executor(app, "h", "c1", broker, app.connect_backend())
    [delivery] = broker.fetch(["celeriac"], "c1", 1, 1.0)
    executor.process(delivery)

    assert result.state == states.FAILURE
    assert "keeps no concurrency-limit holds, so concurrency_limit" in str(result.result)
    assert broker.stats("celeriac").in_flight == 0  # acked: the worker carried on


def test_run_here_and_now_a_limited_task_ignores_its_limit(app: Celeriac) -> None:
    @app.task(name="t.eager", concurrency_limit=1)
    def eager(i: int) -> int:
        return i

    assert eager.apply((5,)).get() == 5


def test_a_retry_that_starts_before_its_first_attempt_freed_the_slot_waits(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a limit of 1 and a task that retries at once, when another consumer takes the
    retry while the first attempt is still acking (its slot not yet freed), expect the
    retry parked, not run beside it (slots are per delivery, not per task id); then it runs
    once the first attempt freed the slot."""

    @app.task(name="t.again", bind=True, concurrency_limit=1, max_retries=1)
    def again(self: Any) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return self.request.retries

    first, second = app.connect_broker(), app.connect_broker()
    app._connections().broker = first
    one = Executor(app, "h", "c1", first, app.connect_backend())
    other = Executor(app, "h", "c2", second, app.connect_backend())
    seen: list[Any] = []
    complete = first.complete

    def ack_slowly(*args: Any) -> None:  # the retry is published; the slot is still held
        for delivery in second.fetch(["celeriac"], "c2", 1, 1.0):
            seen.append(other.process(delivery))
        complete(*args)

    monkeypatch.setattr(first, "complete", ack_slowly)
    result = again.delay()
    [delivery] = first.fetch(["celeriac"], "c1", 1, 1.0)
    one.process(delivery)

    [retry] = seen
    assert retry.skipped is not None and retry.skipped.parked
    [promoted] = second.fetch(["celeriac"], "c2", 1, 1.0)
    other.process(promoted)
    assert result.get(timeout=1) == 1


def test_a_parked_message_keeps_its_sent_at_and_reads_earlier_parked_ones() -> None:
    """A body whose sent_at the broker keeps beside it (Redis) is parked with it; a
    message parked by an earlier version (four fields) still comes back."""
    kept = Envelope("m1", "q", 3, b"\x00body", None, 12.5)
    assert unpark(park(kept)) == kept
    assert unpark(park(Envelope("m2", "q", 3, b"body"))).sent_at is None
    assert unpark('["m3", "q", 4, "Ym9keQ=="]') == Envelope("m3", "q", 4, b"body")
