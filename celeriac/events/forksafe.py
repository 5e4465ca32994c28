"""Background threads that use the broker in a process that forks.

A prefork supervisor forks children while its own background threads (control
listener, heartbeat events, event flushing) may be talking to the broker. With
SQLite that is a hazard: the SQLite library keeps process-wide mutexes, and a
fork while another thread holds one leaves the child stuck in its first
``connect``. So those threads reach such a store only through :func:`guarded`,
which holds one process-wide lock around every call, the calls of the broker's
capabilities included; a fork waits for that lock (``os.register_at_fork``), so
it never happens in the middle of a call. A blocking stream read becomes a
series of instant reads with the waits between them outside the lock, so a fork
is delayed by one short query at most.

Which stores need this, each says itself (``fork_sensitive`` on brokers and
backends). Network brokers (Redis, RabbitMQ) keep no such state in the process:
their connections are returned unwrapped and block as they like.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..backoff import Backoff
from ..brokers.base import Broker

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..brokers.capabilities import Streams

C = TypeVar("C", bound="Broker | Backend")

_GUARD = threading.RLock()
_POLL_MIN, _POLL_MAX = 0.002, 0.05  # seconds between instant reads while waiting


def _reinit_in_child() -> None:
    global _GUARD
    _GUARD = threading.RLock()


os.register_at_fork(
    before=lambda: _GUARD.acquire(),
    after_in_parent=lambda: _GUARD.release(),
    after_in_child=_reinit_in_child,
)


class Guarded:
    """An object (a broker, a backend, a capability) whose every call holds the fork guard."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with _GUARD:
                return attribute(*args, **kwargs)

        return call


class GuardedStreams:
    """A broker's streams, each call under the fork guard; a waiting read polls outside it."""

    def __init__(self, streams: Streams) -> None:
        self._streams = streams

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        with _GUARD:
            self._streams.add(stream, items, maxlen)

    def last(self, stream: str) -> str:
        with _GUARD:
            return self._streams.last(stream)

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        pauses = Backoff(_POLL_MIN, cap=_POLL_MAX)
        while True:
            with _GUARD:
                items = self._streams.read(stream, after, limit, 0.0)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            pauses.sleep(remaining)  # outside the guard: a fork may happen now


class GuardedBroker(Guarded):
    """A broker whose calls, and its capabilities' calls, hold the fork guard."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker)
        self.streams = None if broker.streams is None else GuardedStreams(broker.streams)
        self.flags = None if broker.flags is None else Guarded(broker.flags)
        self.rates = None if broker.rates is None else Guarded(broker.rates)
        self.revocations = None if broker.revocations is None else Guarded(broker.revocations)
        self.beat = None if broker.beat is None else Guarded(broker.beat)


def guarded(connect: Callable[[], C]) -> C:
    """``connect()``, wrapped in the fork guard when the store it returns is fork sensitive.

    The connect itself runs under the guard whatever the store: a first connect
    imports the client module, and a child forked while another thread holds a
    module's import lock would wait for that lock forever.
    """
    with _GUARD:
        connection = connect()
    if not connection.fork_sensitive:
        return connection
    if isinstance(connection, Broker):
        return GuardedBroker(connection)  # type: ignore[return-value]
    return Guarded(connection)  # type: ignore[return-value]
