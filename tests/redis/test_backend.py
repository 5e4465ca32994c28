"""The Redis result backend's own promises, and a task's round trips through Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from celeriac import Celeriac, states
from celeriac.backends.base import TaskMeta
from celeriac.redis.backend import RedisBackend
from celeriac.serialization import Codec
from celeriac.worker.job import Executor

from .helpers import commands_processed, count_round_trips
from .servers import RedisServer, wait_until


@pytest.fixture
def backend(redis_url: str, redis_server: RedisServer) -> Iterator[RedisBackend]:
    b = RedisBackend(Codec(), redis_server.url(1), expires=60.0, client_name="backend-test")
    yield b
    b.close()


def test_records_groups_and_chords_expire_by_themselves(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    backend.store([TaskMeta("t", states.SUCCESS, 1)])
    backend.save_group("g", ["a", "b"])
    backend.chord_part_done("g", 0, 2)
    client = redis_server.client(1)
    for key in ("celeriac:result:{t}", "celeriac:group:{g}", "celeriac:chord:{g}:done"):
        assert 59_000 <= client.pttl(key) <= 60_000, key


def test_a_thousand_waiters_share_one_connection(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    """Given 1,000 threads waiting on distinct tasks, expect one pub/sub connection between
    them, and every one woken with its own result."""
    results: dict[int, object] = {}

    def wait(i: int) -> None:
        results[i] = backend.wait(f"t{i}", timeout=30).result

    waiters = [threading.Thread(target=wait, args=(i,)) for i in range(1000)]
    for waiter in waiters:
        waiter.start()
    client = redis_server.client(1)
    wait_until(lambda: len(client.keys("*:waiters")) == 1000, 20, "every waiter to register")
    ours = [c for c in client.client_list() if c["name"] == "backend-test"]
    assert len(ours) == 2  # one held connection for the scripts, one for pub/sub
    assert sum(1 for c in ours if c["sub"] != "0") == 1
    storer = RedisBackend(Codec(), redis_server.url(1))
    storer.store([TaskMeta(f"t{i}", states.SUCCESS, i) for i in range(1000)])
    storer.close()
    for waiter in waiters:
        waiter.join(20)
    assert results == {i: i for i in range(1000)}


def test_a_waiter_does_not_poll_and_wakes_at_once(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    got: list[float] = []
    waiter = threading.Thread(
        target=lambda: got.append(backend.wait("t", timeout=20).result)  # type: ignore[func-returns-value]
    )
    waiter.start()
    client = redis_server.client(1)
    wait_until(lambda: client.exists("celeriac:result:{t}:waiters"), 5, "the waiter to register")
    before = commands_processed(client)
    time.sleep(1.0)  # the assertion is about what a waiter does meanwhile
    idle = commands_processed(client) - before
    storer = RedisBackend(Codec(), redis_server.url(1))
    stored = time.monotonic()
    storer.store([TaskMeta("t", states.SUCCESS, stored)])
    waiter.join(10)
    assert got == [stored]
    assert time.monotonic() - stored < 0.5
    assert idle <= 1  # only our own INFO
    storer.close()


def test_a_waiter_that_gives_up_passes_the_reading_on(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    """Given a first waiter reading the shared connection and a second waiting behind it,
    when the first times out, the second takes over the reading: it is woken at once when
    its record arrives, not at its next recheck."""
    client = redis_server.client(1)
    timed_out: list[bool] = []

    def give_up() -> None:
        with pytest.raises(TimeoutError):
            backend.wait("a", timeout=0.5)
        timed_out.append(True)

    first = threading.Thread(target=give_up)
    first.start()
    wait_until(lambda: client.exists("celeriac:result:{a}:waiters"), 5, "the first to register")
    got: list[float] = []
    second = threading.Thread(target=lambda: got.append(backend.wait("b", timeout=20).result))  # type: ignore[func-returns-value]
    second.start()
    wait_until(lambda: client.exists("celeriac:result:{b}:waiters"), 5, "the second to register")
    first.join(5)
    assert timed_out == [True]
    storer = RedisBackend(Codec(), redis_server.url(1))
    stored = time.monotonic()
    storer.store([TaskMeta("b", states.SUCCESS, stored)])
    second.join(10)
    storer.close()
    assert got == [stored]
    assert time.monotonic() - stored < 0.5


def test_a_started_record_does_not_end_the_wait(backend: RedisBackend) -> None:
    backend.store([TaskMeta("t", states.STARTED)])
    with pytest.raises(TimeoutError):
        backend.wait("t", timeout=0.3)
    backend.store([TaskMeta("t", states.FAILURE, {"exc_type": "ValueError"})])
    assert backend.wait("t", timeout=5).state == states.FAILURE


def test_chord_join_fires_once_among_racing_threads(backend: RedisBackend) -> None:
    fired: list[int] = []
    barrier = threading.Barrier(8)

    def report(worker: int) -> None:
        barrier.wait()
        for index in range(50):  # every index reported by every thread: redeliveries
            if backend.chord_part_done("g", index, 50):
                fired.append(worker)

    threads = [threading.Thread(target=report, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(fired) == 1


@pytest.mark.parametrize("backend_host", ["127.0.0.1", "localhost"])
def test_one_task_costs_four_round_trips(
    redis_server: RedisServer, redis_url: str, backend_host: str
) -> None:
    """Given broker and results on one Redis (databases 0 and 1), the backend's host
    spelled as the broker's or another way, expect: delay() one round trip, fetch one,
    storing the result with the ack one, get() one."""
    app = Celeriac(
        "rt",
        broker=redis_url,
        backend=redis_server.url(1).replace("127.0.0.1", backend_host),
        set_as_current=False,
        task_send_sent_event=False,
        worker_send_task_events=False,
    )

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    broker, backend = app.connect_broker(), app.connect_backend()
    executor = Executor(app, "host", "consumer-1", broker, backend)

    def one_task() -> tuple[int, ...]:
        trips = []
        with count_round_trips() as counter:
            result = add.delay(2, 3)
        trips.append(counter.value)
        with count_round_trips() as counter:
            [delivery] = broker.fetch(["celeriac"], "consumer-1", 1, 5.0)
        trips.append(counter.value)
        with count_round_trips() as counter:
            executor.process(delivery)
        trips.append(counter.value)
        with count_round_trips() as counter:
            assert result.get(timeout=5) == 5
        trips.append(counter.value)
        return tuple(trips)

    one_task()  # connections opened, scripts loaded, the waiter's channel subscribed
    assert one_task() == (1, 1, 1, 1)
    assert broker.stats("celeriac").in_flight == 0
    executor.close()
    broker.close()
    backend.close()
    app.close()
