"""The in-process broker: for tests and eager runs, one process only.

Every ``memory://name`` URL in a process shares one store, so a producer and the
worker threads of a test see the same queues. The broker's capabilities
(streams, flags, rate limits, revocations) are small objects on the same store.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..message import Delivery, Envelope
from .base import Broker, DeadLetter, QueueStats
from .capabilities import BeatRun, Kind, Lease, Listed
from .concurrency import Concurrency, needs_sweep
from .wake import Wake

T = TypeVar("T")


@dataclass(slots=True)
class _Held:
    consumer: str
    envelope: Envelope
    deliveries: int
    lease_until: float
    seq: int


@dataclass
class _Store:
    lock: threading.Condition = field(default_factory=threading.Condition)
    seq: itertools.count = field(default_factory=itertools.count)  # type: ignore[type-arg]
    # queue -> heap of (-priority, seq, envelope, deliveries); seq makes FIFO within priority
    ready: dict[str, list[tuple[int, int, Envelope, int]]] = field(default_factory=dict)
    delayed: dict[str, list[tuple[float, int, Envelope, int]]] = field(default_factory=dict)
    held: dict[str, _Held] = field(default_factory=dict)  # tag -> held message
    dead: dict[str, list[DeadLetter]] = field(default_factory=dict)
    revoked: dict[str, float] = field(default_factory=dict)  # id -> expires at
    enqueued_at: dict[int, float] = field(default_factory=dict)  # seq -> when it became ready
    rate_tat: dict[str, float] = field(default_factory=dict)  # key -> theoretical arrival time
    streams: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    stream_seq: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    flags: dict[str, str] = field(default_factory=dict)
    uniques: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (holder, until)
    limits: dict[str, bytes] = field(default_factory=dict)  # concurrency key -> its state
    limit_consumers: dict[str, float] = field(default_factory=dict)  # consumer -> lives until
    beat_lease: Lease | None = None
    beat_last: dict[str, int] = field(default_factory=dict)  # entry -> last due (ms)


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


def _store_for(url: str) -> _Store:
    with _STORES_LOCK:
        return _STORES.setdefault(url, _Store())


class MemoryBroker(Broker):
    """A thread-safe broker in this process's memory."""

    spans_processes = False  # prefork children would each have their own

    def __init__(
        self,
        url: str = "memory://",
        lease_seconds: float = 30.0,
        max_deliveries: int = 5,
        **options: Any,
    ) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_deliveries = max_deliveries
        self._s = store = _store_for(url)
        self.streams = MemoryStreams(store)
        self.flags = MemoryFlags(store)
        self.rates = MemoryRates(store)
        self.revocations = MemoryRevocations(store)
        self.uniques = MemoryUniques(store)
        self.concurrency = Concurrency(MemoryConcurrency(store), lease_seconds)
        self.beat = MemoryBeat(self)
        self.browse = MemoryBrowser(self)

    # -- producing ---------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        now = time.time()
        with self._s.lock:
            for env in envelopes:
                self._put(env, 0, now)
            self._s.lock.notify_all()

    def _put(self, env: Envelope, deliveries: int, now: float, eta: float | None = None) -> None:
        s = self._s
        seq = next(s.seq)
        due = env.eta if eta is None else eta
        if due is not None and due > now:
            heapq.heappush(s.delayed.setdefault(env.queue, []), (due, seq, env, deliveries))
        else:
            heapq.heappush(s.ready.setdefault(env.queue, []), (-env.priority, seq, env, deliveries))
            s.enqueued_at[seq] = now

    def _promote_due(self, queues: Sequence[str], now: float) -> None:
        s = self._s
        for queue in queues:
            delayed = s.delayed.get(queue)
            while delayed and delayed[0][0] <= now:
                _, _, env, deliveries = heapq.heappop(delayed)
                self._put(env, deliveries, now, eta=now)

    # -- consuming ---------------------------------------------------------
    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        if not queues:  # a consumer that wants nothing now (every queue paused)
            return []
        deadline = time.monotonic() + timeout
        s = self._s
        with s.lock:
            while True:
                now = time.time()
                self._promote_due(queues, now)
                taken = self._take(queues, consumer, limit, now)
                remaining = deadline - time.monotonic()
                if taken or remaining <= 0 or (wake is not None and wake.is_set()):
                    return taken
                # A wake set while waiting ends the wait at its end only: a Condition
                # cannot be notified from a signal handler.
                s.lock.wait(min(remaining, self._next_due(queues, now)))

    def _next_due(self, queues: Sequence[str], now: float) -> float:
        dues = [d[0][0] for q in queues if (d := self._s.delayed.get(q))]
        return max(0.001, min(dues) - now) if dues else 3600.0

    def _take(self, queues: Sequence[str], consumer: str, limit: int, now: float) -> list[Delivery]:
        s = self._s
        taken: list[Delivery] = []
        while len(taken) < limit:
            best = None
            for queue in queues:
                heap = s.ready.get(queue)
                if heap and (best is None or heap[0][:2] < best[0][:2]):
                    best = heap
            if best is None:
                break
            _, seq, env, deliveries = heapq.heappop(best)
            s.enqueued_at.pop(seq, None)
            tag = f"{env.queue}:{seq}"
            s.held[tag] = _Held(consumer, env, deliveries + 1, now + self.lease_seconds, seq)
            taken.append(
                Delivery(
                    env.id,
                    env.queue,
                    env.priority,
                    env.body,
                    tag,
                    deliveries + 1,
                    env.id in s.revoked and s.revoked[env.id] > now,
                )
            )
        return taken

    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        with self._s.lock:
            for tag in tags:
                self._s.held.pop(tag, None)

    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        with self._s.lock:
            self._give_back(tags, delay, count, "given back")

    def _give_back(self, tags: Sequence[str], delay: float, count: bool, why: str) -> int:
        """Back to the queue (or delayed set); with ``count``, dead-lettered when used up."""
        now = time.time()
        moved = 0
        for tag in tags:
            held = self._s.held.pop(tag, None)
            if held is None:
                continue
            moved += 1
            if count and held.deliveries >= self.max_deliveries:
                self._bury(
                    held,
                    f"{why} after {held.deliveries} deliveries "
                    f"(max_deliveries={self.max_deliveries})",
                    now,
                )
                continue
            deliveries = held.deliveries if count else held.deliveries - 1
            self._put(held.envelope, deliveries, now, eta=now + delay if delay else now)
        self._s.lock.notify_all()
        return moved

    def release_all(self, consumer: str) -> int:
        with self._s.lock:
            tags = [tag for tag, held in self._s.held.items() if held.consumer == consumer]
            return self._give_back(tags, 0.0, True, "its consumer died")

    def renew(self, consumers: Sequence[str]) -> None:
        until = time.time() + self.lease_seconds
        wanted = set(consumers)
        with self._s.lock:
            for held in self._s.held.values():
                if held.consumer in wanted:
                    held.lease_until = until

    def recover(self) -> int:
        now = time.time()
        with self._s.lock:
            expired = [tag for tag, held in self._s.held.items() if held.lease_until < now]
            for tag in expired:
                held = self._s.held.pop(tag)
                if held.deliveries >= self.max_deliveries:
                    self._bury(
                        held,
                        f"lease expired after {held.deliveries} deliveries "
                        f"(max_deliveries={self.max_deliveries})",
                        now,
                    )
                else:
                    self._put(held.envelope, held.deliveries, now, eta=now)
            self._s.lock.notify_all()
        return len(expired)

    def _bury(self, held: _Held, reason: str, now: float) -> None:
        env = held.envelope
        self._s.dead.setdefault(env.queue, []).append(
            DeadLetter(env.id, env.queue, env.priority, env.body, reason, held.deliveries, now)
        )

    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        with self._s.lock:
            held = self._s.held.pop(tag, None)
            if held is not None:
                self._bury(held, reason, time.time())

    # -- inspecting and managing ---------------------------------------------
    def queues(self) -> list[str]:
        s = self._s
        with s.lock:
            names = set(s.ready) | set(s.delayed) | set(s.dead)
            names |= {held.envelope.queue for held in s.held.values()}
        return sorted(names)

    def stats(self, queue: str) -> QueueStats:
        s = self._s
        now = time.time()
        with s.lock:
            stats = QueueStats(queue)
            for neg_priority, seq, _, _ in s.ready.get(queue, []):
                stats.waiting[-neg_priority] = stats.waiting.get(-neg_priority, 0) + 1
                since = s.enqueued_at.get(seq, now)
                stats.oldest_age = max(stats.oldest_age or 0.0, now - since)
            stats.delayed = len(s.delayed.get(queue, []))
            stats.in_flight = sum(1 for h in s.held.values() if h.envelope.queue == queue)
            stats.dead = len(s.dead.get(queue, []))
        return stats

    def purge(self, queue: str) -> int:
        with self._s.lock:
            ready = self._s.ready.pop(queue, [])
            delayed = self._s.delayed.pop(queue, [])
            for _, seq, _, _ in ready:
                self._s.enqueued_at.pop(seq, None)
        return len(ready) + len(delayed)

    def forget_queue(self, queue: str) -> bool:
        s = self._s
        with s.lock:
            if s.ready.get(queue) or s.delayed.get(queue) or s.dead.get(queue):
                return False
            if any(held.envelope.queue == queue for held in s.held.values()):
                return False
            for names in (s.ready, s.delayed, s.dead):
                names.pop(queue, None)
        return True

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with self._s.lock:
            return list(self._s.dead.get(queue, [])[:limit])

    def _take_dead(self, queue: str, ids: Sequence[str] | None) -> list[DeadLetter]:
        dead = self._s.dead.get(queue, [])
        wanted = None if ids is None else set(ids)
        taken = [d for d in dead if wanted is None or d.id in wanted]
        self._s.dead[queue] = [d for d in dead if d not in taken]
        return taken

    def requeue_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        now = time.time()
        with self._s.lock:
            taken = self._take_dead(queue, ids)
            for d in taken:
                self._put(Envelope(d.id, d.queue, d.priority, d.body), 0, now, eta=now)
            self._s.lock.notify_all()
        return len(taken)

    def purge_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        with self._s.lock:
            return len(self._take_dead(queue, ids))


class MemoryBrowser:
    """Lists and acts on a queue's waiting, delayed and reserved messages."""

    reserved_in_workers = False  # the broker records each message's holder

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._s = broker._s

    def _all(self, queue: str, kind: Kind) -> list[tuple[Any, Listed]]:
        """(sort key, message) for every message of ``kind``: the order workers take the
        waiting ones (highest priority, then oldest), due time, or the order taken."""
        s = self._s
        if kind == "waiting":
            return [
                ((-env.priority, seq), Listed(env.id, queue, env.priority, env.body, kind,
                             since=s.enqueued_at.get(seq), deliveries=deliveries))
                for _, seq, env, deliveries in s.ready.get(queue, [])
            ]  # fmt: skip
        if kind == "delayed":
            return [
                (due, Listed(env.id, queue, env.priority, env.body, kind, eta=due,
                             deliveries=deliveries))
                for due, _, env, deliveries in s.delayed.get(queue, [])
            ]  # fmt: skip
        return [
            (held.seq, Listed(held.envelope.id, queue, held.envelope.priority, held.envelope.body,
                              kind, holder=held.consumer, deliveries=held.deliveries))
            for held in s.held.values()
            if held.envelope.queue == queue
        ]  # fmt: skip

    def messages(
        self, queue: str, kind: Kind, limit: int = 50, offset: int = 0, newest_first: bool = False
    ) -> list[Listed]:
        with self._s.lock:
            found = sorted(self._all(queue, kind), key=lambda pair: pair[0], reverse=newest_first)
        return [listed for _, listed in found[offset : offset + limit]]

    def count(self, queue: str, kind: Kind) -> int:
        with self._s.lock:
            return len(self._all(queue, kind))

    def delete(self, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        wanted = set(ids)
        s = self._s
        with s.lock:
            if kind == "waiting":
                ready = s.ready.get(queue, [])
                s.ready[queue] = [entry for entry in ready if entry[2].id not in wanted]
                heapq.heapify(s.ready[queue])
                for _, seq, env, _ in ready:
                    if env.id in wanted:
                        s.enqueued_at.pop(seq, None)
                return len(ready) - len(s.ready[queue])
            if kind == "delayed":
                delayed = s.delayed.get(queue, [])
                s.delayed[queue] = [entry for entry in delayed if entry[2].id not in wanted]
                heapq.heapify(s.delayed[queue])
                return len(delayed) - len(s.delayed[queue])
        raise ValueError("a reserved message is its holder's to delete: requeue it first")

    def run_now(self, queue: str, ids: Sequence[str]) -> int:
        wanted = set(ids)
        s = self._s
        now = time.time()
        with s.lock:
            heap = s.delayed.get(queue, [])
            moving = [entry for entry in heap if entry[2].id in wanted]
            s.delayed[queue] = [entry for entry in heap if entry[2].id not in wanted]
            heapq.heapify(s.delayed[queue])
            for _, _, env, deliveries in moving:
                self._broker._put(env, deliveries, now, eta=now)
            s.lock.notify_all()
        return len(moving)

    def requeue(self, queue: str, ids: Sequence[str]) -> int:
        wanted = set(ids)
        s = self._s
        now = time.time()
        with s.lock:
            tags = [
                t
                for t, h in s.held.items()
                if h.envelope.queue == queue and h.envelope.id in wanted
            ]
            for tag in tags:
                held = s.held.pop(tag)
                self._broker._put(held.envelope, held.deliveries - 1, now, eta=now)
            s.lock.notify_all()
        return len(tags)


class _OnStore:
    """A capability of the memory broker, on its process-wide store."""

    def __init__(self, store: _Store) -> None:
        self._s = store


class MemoryRevocations(_OnStore):
    """Revoked task ids with their expiry; fetch reads them as it takes."""

    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        now = time.time()
        with self._s.lock:
            revoked = self._s.revoked
            for task_id in [i for i, until in revoked.items() if until <= now]:
                del revoked[task_id]  # forget expired ones, so the map stays bounded
            for task_id in ids:
                revoked[task_id] = now + ttl

    def revoked(self, ids: Sequence[str]) -> set[str]:
        now = time.time()
        with self._s.lock:
            return {i for i in ids if self._s.revoked.get(i, 0.0) > now}


class MemoryRates(_OnStore):
    """GCRA rate-limit slots, one theoretical arrival time per key."""

    def reserve(self, key: str, interval: float, burst: int = 1) -> float:
        now = time.time()
        with self._s.lock:
            tat = max(self._s.rate_tat.get(key, now), now)
            run_at = max(now, tat - (burst - 1) * interval)
            self._s.rate_tat[key] = tat + interval
        return run_at - now


class MemoryUniques(_OnStore):
    """Unique-task keys: each key's holder and until when it holds it."""

    def claim(self, key: str, task_id: str, ttl: float) -> str:
        now = time.time()
        with self._s.lock:
            held = self._s.uniques.get(key)
            if held is not None and held[1] > now:
                return held[0]
            for gone in [k for k, (_, until) in self._s.uniques.items() if until <= now]:
                del self._s.uniques[gone]  # forget ended holds, so the map stays bounded
            self._s.uniques[key] = (task_id, now + ttl)
            return task_id

    def release(self, key: str, task_id: str) -> None:
        with self._s.lock:
            held = self._s.uniques.get(key)
            if held is not None and held[0] == task_id:
                del self._s.uniques[key]


class MemoryConcurrency(_OnStore):
    """Concurrency-limit state: each key's state and consumer deadlines, under the lock."""

    def change(self, key: str, update: Callable[[bytes | None], tuple[T, bytes | None]]) -> T:
        with self._s.lock:
            out, new = update(self._s.limits.get(key))
            if new is None:
                self._s.limits.pop(key, None)
            else:
                self._s.limits[key] = new
            return out

    def renew(self, consumers: Sequence[str], until: float) -> None:
        with self._s.lock:
            lives = self._s.limit_consumers
            now = time.time()
            for gone in [c for c, u in lives.items() if u < now - 86_400]:
                del lives[gone]  # long dead: forget them, so the map stays bounded
            for consumer in consumers:
                lives[consumer] = until

    def deadlines(self, consumers: Collection[str]) -> dict[str, float]:
        lives = self._s.limit_consumers  # called inside change(), under the lock
        return {c: lives[c] for c in consumers if c in lives}

    def waiting_keys(self) -> list[str]:
        with self._s.lock:
            return [k for k, raw in self._s.limits.items() if needs_sweep(raw)]


class MemoryStreams(_OnStore):
    """Streams as lists; positions are one counter shared by every stream."""

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        with self._s.lock:
            log = self._s.streams.setdefault(stream, [])
            log.extend((next(self._s.stream_seq), item) for item in items)
            if len(log) > maxlen:
                del log[: len(log) - maxlen]
            self._s.lock.notify_all()

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        position = int(after)
        deadline = time.monotonic() + timeout
        with self._s.lock:
            while True:
                log = self._s.streams.get(stream, [])
                found = [(str(seq), item) for seq, item in log if seq > position][:limit]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._s.lock.wait(remaining)

    def last(self, stream: str) -> str:
        with self._s.lock:
            log = self._s.streams.get(stream)
            return str(log[-1][0]) if log else "0"


class MemoryFlags(_OnStore):
    """Flags in a dict."""

    def set(self, name: str, value: str | None) -> None:
        with self._s.lock:
            if value is None:
                self._s.flags.pop(name, None)
            else:
                self._s.flags[name] = value

    def read(self, prefix: str = "") -> dict[str, str]:
        with self._s.lock:
            return {k: v for k, v in self._s.flags.items() if k.startswith(prefix)}


class MemoryBeat:
    """The beat's lease and last runs, under the store's lock with the queues."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._s = broker._s

    def hold(self, holder: str, seconds: float) -> Lease:
        now = time.time()
        with self._s.lock:
            lease = self._s.beat_lease
            if lease is None or lease.until <= now or lease.holder == holder:
                lease = self._s.beat_lease = Lease(holder, now + seconds)
            return lease

    def lease(self) -> Lease | None:
        with self._s.lock:
            return self._s.beat_lease

    def release(self, holder: str) -> None:
        with self._s.lock:
            lease = self._s.beat_lease
            if lease is not None and lease.holder == holder:
                self._s.beat_lease = Lease("", min(lease.until, time.time()))

    def record(self, runs: Sequence[BeatRun]) -> list[bool]:
        now = time.time()
        taken: list[bool] = []
        with self._s.lock:
            last = self._s.beat_last
            for run in runs:
                fresh = run.due_ms > last.get(run.entry, -1)
                if fresh:
                    last[run.entry] = run.due_ms
                    if run.envelope is not None:
                        self._broker._put(run.envelope, 0, now)
                taken.append(fresh)
            self._s.lock.notify_all()
        return taken

    def last_runs(self) -> dict[str, int]:
        with self._s.lock:
            return dict(self._s.beat_last)

    def forget(self, entry: str) -> None:
        with self._s.lock:
            self._s.beat_last.pop(entry, None)


def reset_memory_brokers() -> None:
    """Forget every in-memory store (for tests)."""
    with _STORES_LOCK:
        _STORES.clear()


def discard_memory_broker(url: str) -> None:
    """Forget the store of one URL: its queues, delayed and dead messages (for tests)."""
    with _STORES_LOCK:
        _STORES.pop(url, None)
