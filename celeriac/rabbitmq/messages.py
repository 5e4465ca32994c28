"""Building, sending and sending back messages on RabbitMQ.

A message goes back to RabbitMQ in four cases, always as a new confirmed
publish followed by the ack of the old delivery (so it is never lost, at worst
duplicated by a crash in between):

* it came back ``redelivered``: a consumer held it and never acked it, so that
  delivery counts; it is published again with its count raised. Past
  ``max_deliveries`` it is handed out once more, and the worker buries it in
  dead letters unless its success is stored (the ack of a finished task can be
  lost with a connection as many times as anything else). RabbitMQ marks
  redelivered everything a lost channel had received, handed out or not: a
  message this process had only buffered when its channel or connection was
  lost (``unhanded``) comes back uncounted, and so does one that a listing of
  waiting messages took and gave back (``browse``, ``StateLog.excuse``). What
  a killed process had buffered still counts, since nobody can tell it from
  what it ran;
* it arrived from the delay ladder before its eta (an eta beyond the ladder,
  or clocks apart): it goes round the ladder again;
* it is released (``release``), to its queue or through the ladder;
* it was never handed out and its consumer stops: it goes back uncounted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import pika

from ..message import Envelope
from .connection import Link, Outgoing
from .consumer import Intake, Raw
from .dead import burial
from .state import REREGISTER_AFTER, StateLog
from .topology import (
    H_DELIVERIES,
    H_ETA,
    H_QUEUE,
    H_SENT,
    Topology,
    delay_route,
    from_ms,
    to_ms,
)

EARLY = 0.05  # a delayed message this close to its eta runs now rather than going round again
UNHANDED_KEPT = 100_000  # ids remembered as buffered by a lost channel (a few MB at most)


class Messages:
    """What the broker publishes, for one link."""

    def __init__(
        self,
        link: Link,
        topology: Topology,
        state: StateLog,
        max_deliveries: int,
        confirm: bool = True,
    ) -> None:
        self._link = link
        self._topology = topology
        self._state = state
        self._max_deliveries = max_deliveries
        self._confirm = confirm  # tasks only: moving a delivered message is always confirmed
        self._registered: dict[str, float] = {}  # queue -> when we last registered it
        # Ids of messages a lost channel of ours had received but not handed out.
        self._unhanded: dict[str, bool] = {}

    def lost(self, intake: Intake) -> None:
        """A channel closed: what it had not handed out comes back redelivered, uncounted."""
        for raw in intake.unstarted() + intake.inbox:
            self._unhanded[raw.message_id] = True
        intake.inbox = []
        while len(self._unhanded) > UNHANDED_KEPT:
            del self._unhanded[next(iter(self._unhanded))]

    @property
    def confirms(self) -> bool:
        """Whether task publishes wait for publisher confirms (``publish_confirm``)."""
        return self._confirm

    def ensure_queue(self, queue: str) -> None:
        """Declare the queue on this connection and keep it in the registry."""
        fresh = self._topology.ensure_queue(queue)
        now = time.time()
        if fresh and now - self._registered.get(queue, 0.0) > REREGISTER_AFTER:
            self._state.append([{"k": "queue", "name": queue, "at": now}])
            self._registered[queue] = now

    def outgoing(
        self, env: Envelope, now: float, handed_out: int = 0, eta: float | None = None
    ) -> Outgoing:
        """The publish of ``env``: straight to its queue, or into the ladder when due later."""
        due = env.eta if eta is None else eta
        headers: dict[str, Any] = {H_DELIVERIES: handed_out} if handed_out else {}
        if due is not None and due > now:
            # Sent rounds up: a message sent after a purge mark never reads as sent before it.
            sent = math.ceil(now * 1000)
            headers.update({H_QUEUE: env.queue, H_ETA: to_ms(due), H_SENT: sent})
            exchange, key = delay_route(due - now)
            mandatory = False
        else:
            exchange, key = self._topology.route(env.queue)
            mandatory = True  # unroutable means the queue was deleted: we want to know
        props = pika.BasicProperties(
            delivery_mode=2,
            priority=env.priority,
            message_id=env.id,
            headers=headers or None,
        )
        return Outgoing(exchange, key, env.body, props, mandatory)

    def declare(self, items: Iterable[tuple[str, Outgoing]]) -> None:
        """Declare what the messages need (once per connection); under the link's lock."""
        self._declare(items)

    def send(self, items: list[tuple[str, Outgoing]]) -> list[tuple[str, Outgoing]]:
        """Publish declared messages, confirmed; those RabbitMQ routed nowhere come back.

        Needs no lock (see ``Link.publish``). When the connection breaks,
        ``items`` keeps only what RabbitMQ did not confirm, so a retry sends
        only those. A ``mandatory`` message routed nowhere (its queue deleted
        since we declared it) is returned: the caller declares again and resends.
        """
        batch = [out for _, out in items]
        try:
            returned = self._link.publish(batch, confirm=self._confirm)
        finally:
            left = {id(out) for out in batch}  # what RabbitMQ did not confirm
            sent, items[:] = list(items), [(q, out) for q, out in items if id(out) in left]
        back = {id(out) for out in returned}
        return [(queue, out) for queue, out in sent if id(out) in back]

    def forget(self, items: Iterable[tuple[str, Outgoing]]) -> None:
        """Declare these messages' queues again next time (they were deleted under us)."""
        for queue in {queue for queue, _ in items}:
            self._topology.forget(queue)

    def _declare(self, items: Iterable[tuple[str, Outgoing]]) -> None:
        for queue in {queue for queue, _ in items}:
            self.ensure_queue(queue)
        delayed = {queue for queue, out in items if not out.mandatory}
        for queue in delayed:
            self._topology.ensure_delayed(queue)

    # -- sending back ---------------------------------------------------------------------
    def sift(self, intake: Intake) -> int:
        """Look at what arrived: count redeliveries, resend early ones, drop purged ones.

        Returns how many went straight back to their queue (they come again).
        """
        if not intake.inbox:
            return 0
        now = time.time()
        arrived, intake.inbox = intake.inbox, []
        again: list[tuple[Raw, Outgoing]] = []
        dropped: list[Raw] = []
        listed = self._state.excuse(
            [(raw.queue, raw.message_id) for raw in arrived if raw.redelivered]
        )
        for raw in arrived:
            headers = raw.headers
            eta = from_ms(headers[H_ETA]) if H_ETA in headers else None
            if raw.redelivered and self._unhanded.pop(raw.message_id, False):
                intake.ready(raw)  # only buffered here when a channel was lost: not counted
            elif raw.redelivered and (raw.queue, raw.message_id) not in listed:
                # handed out before and never acked: that delivery counts (not one that a
                # listing of waiting messages took and gave back: browse)
                again.append((raw, self.resend(raw, raw.handed_out + 1, now)))
            elif eta is not None and from_ms(headers.get(H_SENT)) < self._state.purged.get(
                raw.queue, 0.0
            ):
                dropped.append(raw)  # its queue was purged while it waited in the ladder
            elif eta is not None and eta - now > EARLY:
                again.append((raw, self.requeue(raw, raw.handed_out, now, eta)))
            else:
                intake.ready(raw)
        if again:
            self._link.publish([out for _, out in again])
        intake.settle(raw.delivery_tag for raw in dropped + [raw for raw, _ in again])
        return sum(1 for _, out in again if out.mandatory)  # mandatory: to the queue itself

    def requeue(self, raw: Raw, handed_out: int, now: float, eta: float | None = None) -> Outgoing:
        """The copy that puts ``raw`` back: on its queue, in the ladder, or in dead letters."""
        if handed_out >= self._max_deliveries:
            self._topology.ensure_dead(raw.queue)
            reason = (
                f"delivered {handed_out} times without an ack "
                f"(max_deliveries={self._max_deliveries})"
            )
            return burial(raw, reason, handed_out, now)
        return self.resend(raw, handed_out, now, eta)

    def resend(self, raw: Raw, handed_out: int, now: float, eta: float | None = None) -> Outgoing:
        """The copy that puts ``raw`` back on its queue or in the ladder, counted ``handed_out``."""
        if eta is not None and eta > now:
            self._topology.ensure_delayed(raw.queue)
        env = Envelope(raw.message_id, raw.queue, raw.priority, raw.body, eta)
        return self.outgoing(env, now, handed_out, eta)

    def give_back(self, intake: Intake, raws: list[Raw], counted: bool, delay: float = 0.0) -> None:
        """Publish ``raws`` again (after ``delay``), then ack the deliveries."""
        if not raws:
            return
        now = time.time()
        eta = now + delay if delay > 0 else None
        outs = [self.requeue(raw, raw.handed_out + (1 if counted else 0), now, eta) for raw in raws]
        self._link.publish(outs)
        intake.settle(raw.delivery_tag for raw in raws)

    def bury(self, intake: Intake, raw: Raw, reason: str) -> None:
        """Move a held message to its queue's dead letters."""
        self._topology.ensure_dead(raw.queue)
        self._link.publish([burial(raw, reason, raw.handed_out + 1, time.time())])
        intake.settle([raw.delivery_tag])
