"""The fork guard: a fork-sensitive store (SQLite) is called under it, capabilities too."""

from __future__ import annotations

import threading
import time
from typing import Any

from celeriac.brokers.memory import MemoryBroker
from celeriac.events import forksafe
from celeriac.events.forksafe import GuardedStreams, guarded
from celeriac.serialization import Codec
from celeriac.sqlite.backend import SQLiteBackend
from celeriac.sqlite.broker import SQLiteBroker


def test_a_network_or_memory_broker_is_returned_as_it_is() -> None:
    broker = MemoryBroker("memory://forksafe")
    assert guarded(lambda: broker) is broker


def test_every_capability_of_a_sqlite_broker_is_called_under_the_guard(sqlite_url: str) -> None:
    """Given a guarded SQLite broker, expect each capability call to hold the guard, and a
    waiting stream read to wake up for an item added meanwhile."""
    broker: Any = guarded(lambda: SQLiteBroker(sqlite_url))
    assert isinstance(broker.streams, GuardedStreams)
    held: list[bool] = []
    real = broker.flags._target.set

    def set_flag(name: str, value: str | None) -> None:
        held.append(forksafe._GUARD._is_owned())  # type: ignore[attr-defined]
        real(name, value)

    broker.flags._target.set = set_flag
    broker.flags.set("paused:q", "1")
    assert held == [True] and broker.flags.read("paused:") == {"paused:q": "1"}
    assert broker.rates.reserve("k", 1.0) == 0.0
    broker.revocations.revoke(["t-1"], 60)
    assert broker.revocations.revoked(["t-1", "t-2"]) == {"t-1"}

    start = broker.streams.last("control")
    writer = SQLiteBroker(sqlite_url)
    later = threading.Timer(0.2, lambda: writer.streams.add("control", [b"ping"]))
    later.start()
    began = time.monotonic()
    items = broker.streams.read("control", start, timeout=10.0)
    later.join()
    assert [item for _, item in items] == [b"ping"] and time.monotonic() - began < 5.0
    writer.close()
    broker.close()


def test_a_sqlite_backend_is_guarded(sqlite_url: str) -> None:
    backend = guarded(lambda: SQLiteBackend(Codec(), sqlite_url))
    assert isinstance(backend, forksafe.Guarded)
    backend.close()
