"""The beat's state on RabbitMQ: an exclusive queue names the leader, a transaction sends.

RabbitMQ has no compare-and-set, but it has exclusive queues: only one
connection can declare ``celeriac.beat.leader``, and RabbitMQ deletes it the
moment that connection closes, a ``kill -9`` included. The beat holding it is
the only one that records runs, and it does so on the same connection: a
leader whose connection broke (the link's generation changed) records nothing
until it holds the queue again.

Each entry's last run lives in one document, the only message of the durable
queue ``celeriac.beat.state`` (``x-max-length: 1``). Recording runs publishes
their messages and the new document in one AMQP transaction on one channel,
so a beat that dies before the commit sent neither and one that dies after sent
both. The lease as others see it (holder, and until when, for ``status`` and a
successor) is the flag ``beat:lease``, written at each renewal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pika
import pika.exceptions as pe

from ..brokers.capabilities import BeatRun, Flags, Lease
from ..exceptions import BrokerError
from .connection import Link
from .messages import Messages

LEADER_QUEUE = "celeriac.beat.leader"
STATE_QUEUE = "celeriac.beat.state"
LEASE_FLAG = "beat:lease"
_LOCKED = 405  # RESOURCE_LOCKED: another connection holds the exclusive queue
T = TypeVar("T")


def _lease(raw: str | None) -> Lease | None:
    if raw is None:
        return None
    until, _, holder = raw.partition(":")
    return Lease(holder, float(until))


class RabbitBeat:
    """The broker's ``beat`` capability on RabbitMQ (see the module docstring)."""

    def __init__(
        self,
        link: Link,
        messages: Messages,
        flags: Flags,
        retrying: Callable[[str, Callable[[], Any]], Any],
    ) -> None:
        self._link = link
        self._messages = messages
        self._flags = flags
        self._retrying = retrying
        self._held_on = -1  # the link generation on which we hold the leader queue
        self._last: dict[str, int] = {}

    # -- the lease -------------------------------------------------------------------
    def hold(self, holder: str, seconds: float) -> Lease:
        if not self._retrying("beat.hold", self._declare_leader):
            found = _lease(self._flags.read(LEASE_FLAG).get(LEASE_FLAG))
            other = found.holder if found is not None and found.holder else "another beat"
            until = max(found.until if found is not None else 0.0, time.time() + 0.001)
            return Lease(other, until)
        lease = Lease(holder, time.time() + seconds)
        self._flags.set(LEASE_FLAG, f"{lease.until!r}:{holder}")
        return lease

    def _declare_leader(self) -> bool:
        generation = self._link.generation
        if self._held_on == generation and generation > 0:
            return True
        ch = self._link.channel()
        try:
            ch.queue_declare(LEADER_QUEUE, exclusive=True, auto_delete=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != _LOCKED:
                raise
            return False
        self._held_on = self._link.generation
        self._last = self._read_state()
        return True

    def lease(self) -> Lease | None:
        return _lease(self._flags.read(LEASE_FLAG).get(LEASE_FLAG))

    def release(self, holder: str) -> None:
        if self._held_on != self._link.generation:
            return
        self._flags.set(LEASE_FLAG, f"{time.time()!r}:")
        self._retrying("beat.release", lambda: self._link.admin().queue_delete(LEADER_QUEUE))
        self._held_on = -1

    # -- runs ------------------------------------------------------------------------
    def record(self, runs: Sequence[BeatRun]) -> list[bool]:
        return self._retrying("beat.record", lambda: self._record(runs))  # type: ignore[no-any-return]

    def _record(self, runs: Sequence[BeatRun]) -> list[bool]:
        if self._held_on != self._link.generation:  # not (or no longer) the leader
            return [False] * len(runs)
        last = dict(self._last)
        taken: list[bool] = []
        sends = []
        now = time.time()
        for run in runs:
            fresh = run.due_ms > last.get(run.entry, -1)
            if fresh:
                last[run.entry] = run.due_ms
                if run.envelope is not None:
                    sends.append(run.envelope)
            taken.append(fresh)
        if not any(taken):
            return taken
        for queue in {e.queue for e in sends}:
            self._messages.ensure_queue(queue)
        self._declare_state()
        ch = self._link.channel()
        try:
            ch.tx_select()
            for env in sends:
                out = self._messages.outgoing(env, now)
                if not out.mandatory:
                    raise BrokerError("the beat sends runs due now; use expires, not countdown/eta")
                ch.basic_publish(out.exchange, out.routing_key, out.body, out.properties)
            props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
            ch.basic_publish("", STATE_QUEUE, json.dumps(last).encode(), props)
            ch.tx_commit()
        finally:
            if ch.is_open:
                ch.close()
        self._last = last
        return taken

    def _declare_state(self) -> None:
        self._link.admin().queue_declare(STATE_QUEUE, durable=True, arguments={"x-max-length": 1})

    def _read_state(self) -> dict[str, int]:
        self._declare_state()
        ch = self._link.channel()
        try:
            method, _, body = ch.basic_get(STATE_QUEUE, auto_ack=False)
        finally:
            if ch.is_open:
                ch.close()  # the document goes back
        return {} if method is None else {k: int(v) for k, v in json.loads(body).items()}

    def last_runs(self) -> dict[str, int]:
        if self._held_on == self._link.generation:
            return dict(self._last)
        return self._retrying("beat.last_runs", self._read_state)  # type: ignore[no-any-return]

    def forget(self, entry: str) -> None:
        self._last.pop(entry, None)  # written with the next recorded run
