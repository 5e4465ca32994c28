"""Background threads that use the broker in a process that forks.

A prefork supervisor forks children while its own background threads (control
listener, heartbeat events, event flushing) may be talking to the broker. With
SQLite that is a hazard: the SQLite library keeps process-wide mutexes, and a
fork while another thread holds one leaves the child stuck in its first
``connect``. So those threads reach SQLite only through :func:`guarded`, which
holds one process-wide lock around every call; a fork waits for that lock
(``os.register_at_fork``), so it never happens in the middle of a call. A
blocking ``stream_read`` becomes a series of instant reads with the waits
between them outside the lock, so a fork is delayed by one short query at most.

Network brokers (Redis, RabbitMQ) keep no such state in the process: their
connections are returned unwrapped and block as they like.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..backoff import Backoff

T = TypeVar("T")

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
    """A broker or backend whose every call holds the fork guard."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute
        if name == "stream_read":
            return self._stream_read

        def call(*args: Any, **kwargs: Any) -> Any:
            with _GUARD:
                return attribute(*args, **kwargs)

        return call

    def _stream_read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        pauses = Backoff(_POLL_MIN, cap=_POLL_MAX)
        while True:
            with _GUARD:
                items: list[tuple[str, bytes]] = self._target.stream_read(stream, after, limit, 0.0)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            pauses.sleep(remaining)  # outside the guard: a fork may happen now


def guarded(connect: Callable[[], T], url: str) -> T:
    """``connect()``, wrapped in the fork guard when ``url`` is SQLite's.

    The connect itself runs under the guard whatever the URL: a first connect
    imports the client module, and a child forked while another thread holds a
    module's import lock would wait for that lock forever.
    """
    with _GUARD:
        connection = connect()
    if url.partition("://")[0].lower() == "sqlite":
        return Guarded(connection)  # type: ignore[return-value]
    return connection
