"""The cluster's small shared state on RabbitMQ, kept in one stream: ``celeriac.state``.

RabbitMQ has no key-value store, but a stream is a durable, replayable log
that any number of readers can read from the start without taking anything
away from each other. celeriac appends these records to it:

* ``revoke``: task ids and until when they are revoked (``task_revoke_ttl``);
* ``queue``: a task queue was declared (``queues()`` lists them, consumed or
  not; re-registered daily by whoever uses the queue, so retention keeps it);
* ``purge``: a queue was purged at this time, so delayed messages of that queue
  still on their way through the delay ladder are dropped when they arrive;
* ``flag``: the name of a flag (its value lives in a queue of its own, flags);
* ``browsed``: ids a listing of waiting messages took from a task queue and gave
  back (``browse``), so their next redelivery is not counted as a delivery;
  ``spent``: ids whose excused redelivery a consumer received (see :meth:`StateLog.excuse`).

Each broker object reads the stream from its start once per connection and then
follows it. Reading is asynchronous: a revocation reaches a worker's next
fetch within milliseconds. ``revoked()`` and ``queues()`` first append a marker
and read up to it, so they see everything appended before they were called.
The stream keeps records for ``state_retention`` (default seven days, the
default ``task_revoke_ttl``); older revocations are forgotten.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingConnection

from .connection import Link, Outgoing
from .tail import close_channel, open_channel, stepper
from .topology import STATE_STREAM, Topology

_PREFETCH = 1000
_ACK_EVERY = 250  # stream credit: ack in batches, well before the prefetch runs out
REREGISTER_AFTER = 86400.0
BROWSED_FOR = 7 * 86400.0  # a listing's mark is forgotten after this (the default retention)


class StateLog:
    """This broker object's view of the state stream."""

    def __init__(
        self, link: Link, topology: Topology, retention: str, barrier_timeout: float
    ) -> None:
        self._link = link
        self._topology = topology
        self._retention = retention
        self._barrier_timeout = barrier_timeout
        self.revoked: dict[str, float] = {}  # task id -> revoked until
        self.queues: set[str] = set()
        self.flag_names: set[str] = set()
        self.purged: dict[str, float] = {}  # queue -> purged at
        # (queue, task id) -> when a listing took it and gave it back
        self.browsed: dict[tuple[str, str], float] = {}
        # pika's asynchronous channel, not a BlockingChannel: records are applied the
        # moment they arrive, during any wait on the link, and closing it does not
        # send back undispatched deliveries (basic.reject), which a stream answers
        # by closing the whole connection (tail.open_channel says how it is opened).
        self._channel: Any = None
        self._unacked = 0
        self._marks: set[str] = set()

    def close_channel(self, conn: BlockingConnection) -> None:
        """Close the reading channel before its connection (which cannot close it)."""
        ch, self._channel = self._channel, None
        if ch is not None and ch.is_open:
            close_channel(self._link, ch, self._barrier_timeout, conn)

    def detach(self) -> None:
        """The connection is gone; read from the start again on the next one."""
        self._channel = None
        self._unacked = 0

    def follow(self) -> None:
        """Start reading the stream on this connection; the first time, read it all."""
        if self._channel is not None and self._channel.is_open:
            return
        self._topology.ensure_state(self._retention)
        steps: list[object] = []
        ch = open_channel(self._link, self._barrier_timeout)
        ch.basic_qos(prefetch_count=_PREFETCH, callback=stepper(self._link, steps))
        self._link.wait(lambda: len(steps) > 0, self._barrier_timeout, "state channel")
        ch.basic_consume(
            STATE_STREAM,
            self._on_record,
            arguments={"x-stream-offset": "first"},
            callback=stepper(self._link, steps),
        )
        self._link.wait(lambda: len(steps) > 1, self._barrier_timeout, "state channel")
        self._channel, self._unacked = ch, 0
        self._barrier()

    def catch_up(self) -> None:
        """Read up to a marker appended now: everything appended before is seen."""
        if self._channel is None or not self._channel.is_open:
            self.follow()
        else:
            self._barrier()

    def _barrier(self) -> None:
        mark = uuid.uuid4().hex
        self.append([{"k": "mark", "id": mark}])
        self._link.wait(lambda: mark in self._marks, self._barrier_timeout, "state stream")
        self._marks.discard(mark)
        now = time.time()
        self.revoked = {task_id: until for task_id, until in self.revoked.items() if until > now}
        if self.browsed:
            old = now - BROWSED_FOR
            self.browsed = {key: at for key, at in self.browsed.items() if at > old}

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records, confirmed."""
        self._topology.ensure_state(self._retention)
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        batch = [Outgoing("", STATE_STREAM, json.dumps(r).encode(), props) for r in records]
        self._link.publish(batch)
        for record in records:
            if record.get("k") != "mark":  # a marker counts only once read back
                self._apply(record)

    def excuse(self, redelivered: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (queue, id) pairs among ``redelivered`` whose redelivery a listing caused:
        not a delivery.

        A listing records the ids it took (``browsed``) before it gives them back,
        so reading the stream up to now (one round trip, only when something
        came back redelivered) sees that record even when the message outran it.
        The excused ids are recorded ``spent`` before they are handed out, so a
        later redelivery of the same message (its worker died) counts again.
        """
        if not redelivered:
            return set()
        self.catch_up()
        excused = {key for key in redelivered if key in self.browsed}
        for queue in {queue for queue, _ in excused}:
            ids = sorted(task_id for q, task_id in excused if q == queue)
            self.append([{"k": "spent", "queue": queue, "ids": ids}])
        return excused

    def revoked_now(self, task_id: str, now: float) -> bool:
        return self.revoked.get(task_id, 0.0) > now

    def _on_record(self, ch: Any, method: Any, _props: Any, body: bytes) -> None:
        try:
            record = json.loads(body)
        except ValueError:
            record = None
        if isinstance(record, dict):
            self._apply(record)
        self._unacked += 1
        if self._unacked >= _ACK_EVERY:
            ch.basic_ack(method.delivery_tag, multiple=True)
            self._unacked = 0

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("k")
        if kind == "revoke":
            until = float(record.get("until", 0.0))
            if until > time.time():
                for task_id in record.get("ids", ()):
                    self.revoked[str(task_id)] = max(until, self.revoked.get(str(task_id), 0.0))
        elif kind == "queue":
            self.queues.add(str(record.get("name")))
        elif kind == "purge":
            queue, at = str(record.get("queue")), float(record.get("at", 0.0))
            self.purged[queue] = max(at, self.purged.get(queue, 0.0))
        elif kind == "flag":
            self.flag_names.add(str(record.get("name")))
        elif kind == "browsed":
            queue, at = str(record.get("queue")), float(record.get("at", 0.0))
            for task_id in record.get("ids", ()):
                self.browsed[(queue, str(task_id))] = at
        elif kind == "spent":
            queue = str(record.get("queue"))
            for task_id in record.get("ids", ()):
                self.browsed.pop((queue, str(task_id)), None)
        elif kind == "mark":
            self._marks.add(str(record.get("id")))
            self._link.poke()  # a barrier waits for it
