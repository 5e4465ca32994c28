"""The brokers' ``beat`` capability: one lease holder; a run recorded and sent once, atomically.

Run against memory, SQLite and Redis (a private server).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.brokers.base import Broker
from celeriac.brokers.capabilities import BeatRun, BeatState
from celeriac.brokers.memory import reset_memory_brokers
from celeriac.message import Envelope


@pytest.fixture(params=["memory", "sqlite", "redis"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "memory":
        reset_memory_brokers()
        url = "memory://beat-state"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.sqlite3"
    else:
        server = request.getfixturevalue("beat_redis")
        server.client().flushall()
        url = server.url(0)
    b = Celeriac("state", broker=url, set_as_current=False).connect_broker()
    yield b
    b.close()


def _state(broker: Broker) -> BeatState:
    assert broker.beat is not None
    return broker.beat


def _envelope(n: int) -> Envelope:
    return Envelope(f"id-{n}", "beatq", 5, b"body-%d" % n)


def test_one_holder_at_a_time_and_takeover_after_expiry(broker: Broker) -> None:
    state = _state(broker)
    assert state.lease() is None
    a = state.hold("a", 0.5)
    assert a.holder == "a" and a.until > time.time()
    assert state.hold("b", 0.5).holder == "a"  # taken
    assert state.hold("a", 0.5).until >= a.until  # renewed
    time.sleep(0.6)
    assert state.hold("b", 0.5).holder == "b"  # expired: taken over
    state.release("a")  # not a's any more: nothing changes
    assert state.lease() is not None and state.lease().holder == "b"  # type: ignore[union-attr]
    state.release("b")
    ended = state.lease()
    assert ended is not None and ended.holder == "" and ended.until <= time.time()
    assert state.hold("c", 0.5).holder == "c"


def test_a_run_is_recorded_and_sent_once(broker: Broker) -> None:
    state = _state(broker)
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
