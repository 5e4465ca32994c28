"""Concurrency limits per key, written once above a tiny per-engine store.

``concurrency_limit=N`` on a task (with ``concurrency_key=``, one limit per key)
means: never more than N of its messages running at once across the cluster.

Design. A limit is a set of *holds*, one per running task, each a lease like a
delivered message's: it names the consumer that runs the task and ends unless
that consumer's heartbeat renews it (:meth:`ConcurrencyStore.renew`, with the
worker's other leases), so ``kill -9`` frees a dead worker's holds within one
lease. A task that finds its key full does not wait in a worker slot, nor go
back to its queue to be fetched again and again (a poll in disguise, which
Dramatiq's ``ConcurrentRateLimiter`` does with backoff): its message is *parked*
in the key's wait list, in the broker, and the worker acks the delivery. When a
task of the key finishes, the same atomic step that frees its hold moves the
oldest parked message out of the wait list, and the finishing worker publishes
it to its queue at once: the waiting task starts as soon as a slot frees, not
on a timer. This is BullMQ's group model (a job of a group at its concurrency
waits in the group, and the group's next job is made ready when one completes)
on top of leases.

Safety. The hold is the gate: a promoted message asks for a slot again like
any other, so a slot taken meanwhile by a newly fetched message only parks it
again (at the head of the wait list, where it was). Until it arrives, its slot
is *promised*: no second waiter is let out for it (for two leases at most, in
case it never comes). A promoted message sits in
a ``moving`` list, with a lease, until its publish is confirmed; a worker that
dies between the two leaves it there and the next step on the key puts it back
at the head of the wait list. So nothing parked is lost, and a crash costs at
most a duplicate delivery (the contract is at least once). A key whose every
holder died has nobody to promote its waiters: any worker's heartbeat sweeps
the keys with waiters (:meth:`Concurrency.sweep`). A supervisor that sees a
prefork child die ends the child's consumer (:meth:`Concurrency.end`): its slots
free at once rather than after their lease. A hold remembers when it was taken,
so a consumer id that comes back (a pid used again) keeps the holds it takes
after the end.

The engines provide :class:`ConcurrencyStore`: an atomic read-modify-write of
one key's small state (memory: a lock; SQLite: a write transaction; Redis: a
compare-and-set script; RabbitMQ: the key's token passed from hand to hand, as
rate limits do) and consumer deadlines. The algorithm below is the same for
all, as Dramatiq writes its limiters once above four atomic operations.

Costs: nothing for a task without ``concurrency_limit`` (the worker does not
look). For a limited task, one store step to start and one to finish, plus a
publish and a confirmation when it promotes a waiter. A key's state holds its
parked messages, so each step reads and writes them all: keys are meant to be
many and short (one per customer), not one key with a backlog of thousands.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from ..message import Envelope
from .capabilities import ConcurrencyLimits

T = TypeVar("T")

#: How long a parked message may stay in ``moving`` before it counts as lost with
#: its promoter, in leases.
MOVING_LEASES = 2.0


class ConcurrencyStore(Protocol):
    """What an engine provides: atomic steps on one key's state, consumer deadlines."""

    def change(self, key: str, update: Callable[[bytes | None], tuple[T, bytes | None]]) -> T:
        """Apply ``update`` to the key's state atomically (None: no state; returning
        None deletes it); returns what ``update`` returned. ``update`` may run more
        than once (a compare-and-set that lost a race)."""
        ...

    def renew(self, consumers: Sequence[str], until: float) -> None:
        """Note that these consumers live until ``until`` (Unix seconds)."""
        ...

    def deadlines(self, consumers: Collection[str]) -> dict[str, float]:
        """Until when each of these consumers lives, as last renewed (absent: unknown)."""
        ...

    def waiting_keys(self) -> list[str]:
        """The keys that have parked messages (for the heartbeat's sweep)."""
        ...


@dataclass
class KeyState:
    """One key's limit: its holds, parked messages and those being promoted."""

    limit: int = 1
    # holder -> (consumer, until: its own lease, since: when it was taken)
    holds: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (task, parked), oldest first
    moving: dict[str, tuple[float, str]] = field(default_factory=dict)  # task -> until, parked
    promised: dict[str, float] = field(default_factory=dict)  # published, on its way: until

    @classmethod
    def load(cls, raw: bytes | None) -> KeyState:
        if not raw:
            return cls()
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            int(data.get("limit", 1)),
            {t: (str(c), float(u), float(s)) for t, (c, u, s) in data.get("holds", {}).items()},
            [(str(t), str(p)) for t, p in data.get("waiting", [])],
            {t: (float(u), str(p)) for t, (u, p) in data.get("moving", {}).items()},
            {t: float(u) for t, u in data.get("promised", {}).items()},
        )

    def dump(self) -> bytes | None:
        if not (self.holds or self.waiting or self.moving or self.promised):
            return None
        return orjson.dumps(
            {
                "limit": self.limit,
                "holds": self.holds,
                "waiting": self.waiting,
                "moving": self.moving,
                "promised": self.promised,
            }
        )


def park(envelope: Envelope) -> str:
    """A message as its key's wait list keeps it (the broker never decodes the body)."""
    body = base64.b64encode(envelope.body).decode()
    fields = [envelope.id, envelope.queue, envelope.priority, body]
    if envelope.sent_at is not None:  # the body leaves it out
        fields.append(envelope.sent_at)
    return orjson.dumps(fields).decode()


def unpark(parked: str) -> Envelope:
    """The message parked by :func:`park`, ready to publish again."""
    task_id, queue, priority, body, *sent_at = orjson.loads(parked)
    return Envelope(
        str(task_id),
        str(queue),
        int(priority),
        base64.b64decode(body),
        sent_at=float(sent_at[0]) if sent_at else None,
    )


class Concurrency:
    """The ``concurrency`` capability: holds, parking and promotion on a store."""

    def __init__(self, store: ConcurrencyStore, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds

    # -- the steps ------------------------------------------------------------------
    def acquire(self, key: str, limit: int, holder: str, consumer: str, parked: Envelope) -> bool:
        """Hold a slot of ``key`` for ``holder`` (one delivery of a task) run by
        ``consumer``; or, when ``limit`` holders have it, park ``parked`` (the task's
        message) in the key's wait list and return False."""
        entry, task_id = park(parked), parked.id

        def update(raw: bytes | None) -> tuple[bool, bytes | None]:
            state = self._tidy(KeyState.load(raw), time.time())
            state.limit = limit
            was_moving = state.moving.pop(task_id, None) is not None
            was_moving = state.promised.pop(task_id, None) is not None or was_moving
            if holder in state.holds or len(state.holds) < limit:
                now = time.time()
                since = state.holds[holder][2] if holder in state.holds else now
                state.holds[holder] = (consumer, now + self.lease_seconds, since)
                state.waiting = [w for w in state.waiting if w[0] != task_id]
                return True, state.dump()
            if all(w[0] != task_id for w in state.waiting):
                if was_moving:  # promoted, then beaten to the slot: back where it was
                    state.waiting.insert(0, (task_id, entry))
                else:
                    state.waiting.append((task_id, entry))
            return False, state.dump()

        return self.store.change(key, update)

    def release(self, key: str, holder: str | None) -> list[Envelope]:
        """Free ``holder``'s slot (None: only tidy the key) and take as many parked
        messages as slots are free, for the caller to publish and :meth:`moved`."""

        def update(raw: bytes | None) -> tuple[list[str], bytes | None]:
            now = time.time()
            state = self._tidy(KeyState.load(raw), now, thorough=holder is None)
            if holder is not None:
                state.holds.pop(holder, None)
            # a promoted message on its way has its slot: let out no second one for it
            free = state.limit - len(state.holds) - len(state.moving) - len(state.promised)
            taken, state.waiting = state.waiting[: max(0, free)], state.waiting[max(0, free) :]
            until = now + self.lease_seconds * MOVING_LEASES
            for waiter, entry in taken:
                state.moving[waiter] = (until, entry)
            return [entry for _, entry in taken], state.dump()

        return [unpark(p) for p in self.store.change(key, update)]

    def moved(self, key: str, task_ids: Collection[str]) -> None:
        """The promoted messages ``task_ids`` are published: done with them here."""
        if not task_ids:
            return

        def update(raw: bytes | None) -> tuple[None, bytes | None]:
            state = KeyState.load(raw)
            until = time.time() + self.lease_seconds * MOVING_LEASES
            for task_id in task_ids:
                if state.moving.pop(task_id, None) is not None:
                    state.promised[task_id] = until
            return None, state.dump()

        self.store.change(key, update)

    def renew(self, consumers: Sequence[str]) -> None:
        """Extend the holds of these consumers by one lease (the heartbeat calls it)."""
        if consumers:
            self.store.renew(consumers, time.time() + self.lease_seconds)

    def end(self, consumers: Sequence[str]) -> None:
        """End these consumers' holds now (their process died: its supervisor knows)."""
        if consumers:
            self.store.renew(consumers, time.time())

    def sweep(self) -> list[tuple[str, list[Envelope]]]:
        """Per key with parked messages, those that slots freed by dead holders (or
        promotions lost with their promoter) let out now: publish, then :meth:`moved`."""
        out = []
        for key in self.store.waiting_keys():
            released = self.release(key, None)
            if released:
                out.append((key, released))
        return out

    def holders(self, key: str) -> dict[str, str]:
        """Who holds ``key`` now, and their consumers (for tests and inspection)."""

        def update(raw: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {t: c for t, (c, _, _) in KeyState.load(raw).holds.items()}, raw

        return self.store.change(key, update)

    # -- keeping the state true -----------------------------------------------------
    def _tidy(self, state: KeyState, now: float, thorough: bool = False) -> KeyState:
        """Drop holds of dead consumers; put promotions lost with their promoter back
        at the head of the wait list.

        A hold lives while its consumer's deadline (renewed by its heartbeat) is ahead.
        A deadline that passed after the hold was taken ends it (the consumer stopped
        renewing, or :meth:`end` ended it); one that passed before (a consumer id used
        again, or not renewed yet) says nothing: the hold's own lease decides. Only
        holds past their own lease are looked up, unless ``thorough`` (a sweep): then
        every holder is, so an ended consumer's slots free at once."""
        holds = state.holds
        check = list(holds) if thorough else [h for h, (_, u, _) in holds.items() if u <= now]
        if check:
            deadlines = self.store.deadlines({holds[h][0] for h in check})
            for holder in check:
                consumer, until, since = holds[holder]
                deadline = deadlines.get(consumer)
                if deadline is None or (deadline <= now and deadline < since):
                    alive = until > now
                else:
                    alive = deadline > now
                if not alive:
                    del holds[holder]
        state.promised = {t: until for t, until in state.promised.items() if until > now}
        lost = [(t, p) for t, (until, p) in state.moving.items() if until <= now]
        for task_id, _ in lost:
            del state.moving[task_id]
        if lost:
            state.waiting[:0] = lost
        return state


def needs_sweep(raw: bytes | None) -> bool:
    """Whether a key's state (as :meth:`KeyState.dump` wrote it) has parked or moving
    messages: a store lists such keys in :meth:`ConcurrencyStore.waiting_keys`."""
    return raw is not None and (b'"waiting":[]' not in raw or b'"moving":{}' not in raw)


def publish_promoted(
    publish: Callable[[Sequence[Envelope]], None],
    concurrency: ConcurrencyLimits,
    key: str,
    envelopes: Sequence[Envelope],
) -> None:
    """Publish promoted messages, then confirm them to the key's state."""
    if envelopes:
        publish(envelopes)
        concurrency.moved(key, [e.id for e in envelopes])


__all__ = [
    "Concurrency",
    "ConcurrencyStore",
    "KeyState",
    "needs_sweep",
    "park",
    "publish_promoted",
    "unpark",
]
