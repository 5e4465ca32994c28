"""Flags on RabbitMQ: one tiny queue per flag that keeps only its newest value.

A flag ``name`` is the durable queue ``celeriac.flag.<name>`` declared with
``x-max-length: 1``: setting it publishes the value (confirmed) and RabbitMQ
drops the older one; clearing it deletes the queue. The names live in the
state stream's registry, so ``flags(prefix)`` knows which queues to read.
Reading takes each value without acking it on a private channel and closes
the channel, which puts them all back. A reader that finds a flag's queue
empty while it exists has met another reader in the middle of its read (or a
setter between declaring and publishing), so it asks again, backing off, for up
to ``_READ_PATIENCE`` seconds before concluding the flag is unset: under load
another reader can hold a value for tens of milliseconds.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from ..backoff import Backoff
from ..exceptions import ConfigurationError
from .connection import Link, Outgoing, Retrying
from .state import REREGISTER_AFTER, StateLog

FLAG_PREFIX = "celeriac.flag."
_NOT_FOUND = 404
_READ_PATIENCE = 1.0  # seconds a reader waits for a value another reader holds
_READ_PAUSE = 0.002  # first pause; doubles up to _READ_MAX_PAUSE
_READ_MAX_PAUSE = 0.05


def flag_queue(name: str) -> str:
    queue = FLAG_PREFIX + name
    if not name or len(queue.encode()) > 255:
        raise ConfigurationError(f"flag name {name!r} must be 1 to 241 bytes long")
    return queue


class Flags:
    """The broker's flags capability: set, clear and read flags through one link."""

    def __init__(self, link: Link, state: StateLog, retrying: Retrying) -> None:
        self._link = link
        self._state = state
        self._retrying = retrying
        self._registered: dict[str, float] = {}  # name -> when we last registered it
        self._declared: set[tuple[int, str]] = set()  # (link generation, queue)

    def set(self, name: str, value: str | None) -> None:
        """Set (or with None, clear) a flag: a queue that keeps only its newest value."""
        self._retrying("flags.set", lambda: self._set(name, value))

    def read(self, prefix: str = "") -> dict[str, str]:
        """Every flag whose name starts with ``prefix``."""
        return self._retrying("flags.read", lambda: self._read(prefix))

    def _set(self, name: str, value: str | None) -> None:
        queue = flag_queue(name)
        if value is None:
            self._link.admin().queue_delete(queue)
            self._declared.discard((self._link.generation, queue))
            return
        if (self._link.generation, queue) not in self._declared:
            self._link.admin().queue_declare(queue, durable=True, arguments={"x-max-length": 1})
            self._declared.add((self._link.generation, queue))
        props = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
        self._link.publish([Outgoing("", queue, value.encode(), props)])
        now = time.time()
        if now - self._registered.get(name, 0.0) > REREGISTER_AFTER:
            self._state.append([{"k": "flag", "name": name}])
            self._registered[name] = now

    def _read(self, prefix: str) -> dict[str, str]:
        self._state.follow()
        names = sorted(n for n in self._state.flag_names if n.startswith(prefix))
        found: dict[str, str] = {}
        ch = self._link.channel()
        try:
            for name in names:
                ch, value = self._peek(ch, flag_queue(name))
                if value is not None:
                    found[name] = value
        finally:
            if ch.is_open:
                ch.close()  # every value taken goes back
        return found

    def _peek(self, ch: BlockingChannel, queue: str) -> tuple[BlockingChannel, str | None]:
        """The flag's value, or None when its queue is gone; a usable channel either way."""
        deadline = time.monotonic() + _READ_PATIENCE
        pauses = Backoff(_READ_PAUSE, cap=_READ_MAX_PAUSE)
        while True:
            try:
                method, _, body = ch.basic_get(queue, auto_ack=False)
            except pe.ChannelClosedByBroker as exc:
                if exc.reply_code != _NOT_FOUND:
                    raise
                return self._link.channel(), None  # cleared
            if method is not None:
                return ch, body.decode()
            if time.monotonic() >= deadline:
                return ch, None
            pauses.sleep()  # set a moment ago, or another reader holds it now
