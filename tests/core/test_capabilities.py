"""A broker without a capability: callers that need it say so clearly, the others carry on.

The brokers celeriac ships offer every capability (tests/contract/test_capabilities.py);
these tests use tiny memory-broker subclasses that lack one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.backends import default_backend_url
from celeriac.backends.disabled import DisabledBackend
from celeriac.brokers import broker_class
from celeriac.brokers.capabilities import CAPABILITIES, require
from celeriac.brokers.composed import ComposedBroker
from celeriac.brokers.memory import MemoryBroker
from celeriac.control import PausedQueues
from celeriac.events import EventReceiver, dispatcher_for
from celeriac.exceptions import CapabilityUnavailable, ConfigurationError
from celeriac.sqlite.broker import SQLiteBroker


def _without(*capabilities: str) -> type[MemoryBroker]:
    """A memory broker class whose objects lack these capabilities."""

    class Lacking(MemoryBroker):
        def __init__(self, url: str, **options: Any) -> None:
            super().__init__(url, **options)
            for name in capabilities:
                setattr(self, name, None)

    return Lacking


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://capabilities-{uuid.uuid4().hex}"
    app = Celeriac("capabilities-test", broker=url, backend=url, set_as_current=False)
    yield app
    dispatcher_for(app).close()


def _lacking(app: Celeriac, monkeypatch: pytest.MonkeyPatch, *capabilities: str) -> None:
    cls = _without(*capabilities)
    monkeypatch.setattr(app, "connect_broker", lambda: cls(app.broker_url))
    app._connections().broker = cls(app.broker_url)


def test_the_error_names_the_broker_the_capability_and_what_to_do() -> None:
    broker = _without("flags")("memory://x")

    with pytest.raises(CapabilityUnavailable) as raised:
        require(broker, broker.flags, "flags", "pausing queues")

    message = str(raised.value)
    assert isinstance(raised.value, ConfigurationError)
    assert "Lacking" in message and "memory://x" in message  # the broker
    assert "keeps no flags, so pausing queues is not available" in message  # what is missing
    assert "use a Redis, RabbitMQ or SQLite broker" in message  # what to do


def test_revoking_on_a_broker_without_revocations_is_a_clear_error(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lacking(app, monkeypatch, "revocations")

    with pytest.raises(CapabilityUnavailable, match="keeps no revocations, so revoking tasks"):
        app.revoke(["t-1"])


def test_pausing_on_a_broker_without_flags_is_a_clear_error_and_nothing_is_paused(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lacking(app, monkeypatch, "flags")

    with pytest.raises(CapabilityUnavailable, match="keeps no flags, so pausing queues"):
        app.control.pause("q")
    assert PausedQueues(app).open_queues(["q", "r"]) == ["q", "r"]  # consumers carry on


def test_reading_events_on_a_broker_without_streams_is_a_clear_error(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lacking(app, monkeypatch, "streams")

    with pytest.raises(CapabilityUnavailable, match="keeps no streams, so reading events"):
        EventReceiver(app)


def test_a_broker_lacking_every_capability_still_delivers(app: Celeriac) -> None:
    """Given a broker with none of the capabilities, expect the delivery contract to work."""
    broker = _without(*CAPABILITIES)(app.broker_url)

    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    app._connections().broker = broker
    echo.delay(1)
    [delivery] = broker.fetch(["celeriac"], "c", 10, 1.0)
    broker.ack("c", [delivery.tag])
    assert broker.stats("celeriac").total_waiting == 0


def test_what_brokers_and_backends_are_is_declared_not_read_from_their_urls() -> None:
    assert broker_class("memory://").spans_processes is False
    assert broker_class("sqlite:///x.sqlite3").spans_processes is True
    assert broker_class("sqlite:///x.sqlite3").fork_sensitive is True
    assert MemoryBroker.fork_sensitive is False
    assert DisabledBackend.stores_results is False
    assert default_backend_url("amqp://guest@localhost//") == "disabled://"
    assert default_backend_url("redis://localhost/0") == "redis://localhost/0"


def test_capabilities_come_from_the_store_broker_capabilities_url_names(
    app: Celeriac, sqlite_url: str
) -> None:
    """Given a memory broker whose capabilities live in a SQLite file, expect flags,
    streams, rates and revocations in that file, and fetched messages flagged revoked
    from it."""
    app.conf.broker_capabilities_url = sqlite_url

    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    broker = app.broker
    assert isinstance(broker, ComposedBroker)
    app.control.pause("q")
    app.revoke(["gone"])
    assert broker.streams is not None and broker.rates is not None
    broker.streams.add("events", [b"e"])
    assert broker.rates.reserve("k", 60.0) == 0.0
    store = SQLiteBroker(sqlite_url)
    assert store.flags is not None and set(store.flags.read("paused:")) == {"paused:q"}
    assert store.streams is not None  # after the revoke's own task-revoked event
    assert store.streams.read("events", "0")[-1][1] == b"e"
    assert store.rates is not None and store.rates.reserve("k", 60.0) > 0  # the same slots
    assert store.revocations is not None and store.revocations.revoked(["gone"]) == {"gone"}
    store.close()

    echo.apply_async((1,), task_id="gone")
    echo.apply_async((2,), task_id="kept")
    taken = broker.fetch(["celeriac"], "c", 10, 1.0)
    assert {d.id: d.revoked for d in taken} == {"gone": True, "kept": False}


def test_a_capabilities_store_in_one_process_memory_is_refused_for_a_shared_broker(
    sqlite_url: str,
) -> None:
    app = Celeriac(
        "x", broker=sqlite_url, broker_capabilities_url="memory://caps", set_as_current=False
    )
    with pytest.raises(ConfigurationError, match="lives inside one process"):
        app.connect_broker()
