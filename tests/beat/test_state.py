"""The brokers' ``beat`` capability: one lease holder; a run recorded and sent once, atomically.

Run against memory, SQLite, Redis (a private server) and RabbitMQ (a vhost of its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.brokers.base import Broker
from celeriac.brokers.capabilities import BeatRun, BeatState
from celeriac.brokers.memory import reset_memory_brokers
from celeriac.message import Envelope


@pytest.fixture(params=["memory", "sqlite", "redis", "rabbitmq"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Broker]]:
    """Connections to one broker (each one process's view of it)."""
    if request.param == "memory":
        reset_memory_brokers()
        url = "memory://beat-state"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.sqlite3"
    elif request.param == "rabbitmq":
        url = request.getfixturevalue("beat_amqp")
    else:
        server = request.getfixturevalue("beat_redis")
        server.client().flushall()
        url = server.url(0)
    app = Celeriac("state", broker=url, set_as_current=False)
    made: list[Broker] = []

    def make() -> Broker:
        made.append(app.connect_broker())
        return made[-1]

    yield make
    for b in made:
        b.close()


@pytest.fixture
def broker(connect: Callable[[], Broker]) -> Broker:
    return connect()


def _state(broker: Broker) -> BeatState:
    assert broker.beat is not None
    return broker.beat


def _envelope(n: int) -> Envelope:
    return Envelope(f"id-{n}", "beatq", 5, b"body-%d" % n)


def test_one_holder_at_a_time_and_takeover_when_it_ends(connect: Callable[[], Broker]) -> None:
    first, second = connect(), connect()
    a_state, b_state = _state(first), _state(second)
    assert a_state.lease() is None
    a = a_state.hold("a", 0.5)
    assert a.holder == "a" and a.until > time.time()
    assert b_state.hold("b", 0.5).holder == "a"  # taken
    assert a_state.hold("a", 0.5).until >= a.until  # renewed
    # the holder dies: its lease runs out (on RabbitMQ, its connection closes)
    if first.url.startswith("amqp"):
        first.close()
    else:
        time.sleep(0.6)
    assert b_state.hold("b", 0.5).holder == "b"  # taken over
    b_state.release("b")
    ended = b_state.lease()
    assert ended is not None and ended.holder == "" and ended.until <= time.time()
    assert b_state.hold("c", 0.5).holder == "c"


def test_a_run_is_recorded_and_sent_once(broker: Broker) -> None:
    state = _state(broker)
    assert state.hold("me", 5).holder == "me"  # a leader records (RabbitMQ: only a leader)
    runs = [BeatRun("e", 1000, _envelope(1)), BeatRun("e", 2000, _envelope(2))]
    assert state.record(runs) == [True, True]
    # the same runs again, an older one, and a skip: nothing new sent
    again = [*runs, BeatRun("e", 500, _envelope(3)), BeatRun("e", 2000, None)]
    assert state.record(again) == [False, False, False, False]
    assert state.record([BeatRun("e", 3000, None), BeatRun("f", 10, _envelope(4))]) == [True, True]
    assert state.last_runs() == {"e": 3000, "f": 10}
    taken = broker.fetch(["beatq"], "c", 10, 0.5)
    assert sorted(d.id for d in taken) == ["id-1", "id-2", "id-4"]
    state.forget("f")
    assert state.last_runs() == {"e": 3000}
