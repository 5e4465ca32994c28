"""The Redis broker: every primitive one atomic Lua script, every batch one round trip.

Key layout (``P`` is ``global_keyprefix``, default ``celeriac``; ``Q`` a queue).
Every key of a queue starts with the same hash tag ``{P:Q}``, so a queue lives
on one Redis Cluster slot and the scripts that touch it stay legal there::

    {P:Q}:p0 .. {P:Q}:p9   lists of ready messages, one per priority (RPUSH to
                           publish, LPOP to take; requeued messages go back to
                           the front). An entry is the message in one string:
                           "<kind><deliveries>:<order><sent>:<id><body>": kind
                           a..j is priority 0..9 with a UUID id as its 16 bytes
                           (A..J: the id as text, "<length>:<id>"); <order>, 8
                           bytes, the microsecond it became ready (FIFO across
                           queues compares it, see below); <sent>, microseconds
                           from the message's sent_at to its order (the body
                           leaves sent_at out). A queued no-op task costs about
                           80 bytes here. Entries of earlier versions,
                           "<priority>:<deliveries>:<order>:<id length>:<id><body>",
                           are still read (``entries`` has the details).
    {P:Q}:delayed          sorted set of entries scored by eta (unix seconds)
    {P:Q}:held:<consumer>  hash: delivery tag -> entry, what a consumer holds
    {P:Q}:holders          sorted set: consumer -> lease deadline; one lease per
                           consumer covers all it holds in the queue (a fetch
                           sets it, the worker's heartbeat renews it, ``recover``
                           gives back all a consumer whose lease ran out holds)
    {P:Q}:leases           sorted set: delivery tag -> lease deadline, kept by
                           workers of earlier versions; ``recover`` still reads it
    {P:Q}:seq              counter for delivery tags
    {P:Q}:notify           list of wake-up tokens for blocked fetches
    {P:Q}:dead             list of dead letters "<ms>:<reason length>:<reason><entry>"
    {P}:queues             set of every queue published to
    {P}:clock              the last order given out: orders stay strictly increasing
                           (FIFO across queues, even within one batch)
    {P}:revoked            sorted set: task id -> revoked until (unix seconds)
    {P}:flags              hash of cluster-wide flags
    P:rate:<key>           GCRA state of one rate limit
    {P:limits}:...         concurrency limits per key (see ``limits``)
    P:stream:<name>        Redis stream (events, control, replies)

Needs Redis 6.2 or later (LPOP with a count, ZADD GT, BLPOP with a
fractional timeout).

A delivery tag is ``"<queue length>:<queue>:<sequence>:<consumer>"``: acking,
releasing or recovering needs nothing but the tag. All times are the Redis
server's clock (``TIME`` inside the scripts), one clock for every worker, with
one exception: a single message due now (one ``delay()``) is stored without a
script, its entry and a wake-up token in one ``MULTI``, which costs the server a
third of the script; its order is the producer's clock, strictly increasing
within the producer. FIFO within a queue is the list's order and exact; FIFO
across the queues of one priority holds up to the skew between producers' clocks.

Fetching: one script promotes the due delayed messages of the named queues,
takes up to ``limit`` of the best ready messages (highest priority, then
lowest order across all the queues), records them as held under a lease, and
flags the revoked ones. When nothing is ready the fetch blocks with ``BLPOP``
on the queues' notify lists (publish pushes a token; a fetch that leaves
messages behind pushes one for the next consumer) for at most the time until
the next delayed message is due: it never sleep-polls. Each fetch carries an
id; sent again with the same id (its reply was lost), it returns what it
leased the first time (see ``lua/fetch.lua``).

Redis Cluster: a script may touch one slot only, so a fetch over several
queues first peeks every queue's best message (one pipeline), then takes from
the best queue only what ranks before the second best queue's head, and
repeats; priority stays strict across queues unless another consumer takes
in between. There is no shared clock key either, so FIFO across queues at one
priority follows the server time of each publish call. Revocations are
checked with one more command, and a blocked fetch waits on a pub/sub wake
channel per queue (``P:wake:<queue>``) because a multi-key BLPOP cannot span
slots.

The broker is composed of parts, each holding the link it needs: queue
management (``manage.RedisAdmin``), the Cluster fetch (``cluster.ClusterFetch``)
and its capabilities, ``streams`` and ``flags`` (``streams``), ``rates`` and
``revocations`` (``manage``). ``complete`` stores a task's result with its ack in
one round trip when the backend is a :class:`~celeriac.redis.backend.RedisBackend`
on the same server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import hiredis

from ..backoff import Backoff
from ..brokers.base import AdminBroker
from ..brokers.concurrency import Concurrency
from ..exceptions import BrokerError, BrokerUnavailable, ConfigurationError
from ..message import Delivery, Envelope
from .backend import RedisBackend
from .beat import RedisBeat
from .browse import RedisBrowser
from .client import (
    RedisError,
    connect,
    disconnect,
    is_unavailable,
    parse_url,
    run_id,
    translate,
)
from .cluster import ClusterFetch
from .entries import (
    by_queue,
    consumer_of,
    entry_head,
    fetch_args,
    fetched,
    new_entry,
    queue_of,
)
from .limits import RedisConcurrency
from .manage import RedisAdmin, RedisRates, RedisRevocations, RedisUniques
from .scripts import Batch, HeldLink, PooledLink, script
from .streams import RedisFlags, RedisStreams

if TYPE_CHECKING:
    from ..backends.base import Backend, TaskMeta
    from ..brokers.wake import Wake

RECOVER_BATCH = 1000
PUBLISH_CHUNK = 1000  # messages per publish script call
_UNBLOCK_TIMEOUT = 1.0  # seconds a stopping fetch waits for Redis to end its blocking pop

_PUBLISH, _FETCH = script("publish"), script("fetch")
_RELEASE, _RELEASE_ALL = script("release"), script("release_all")
_RENEW, _RECOVER, _DEAD_LETTER = script("renew"), script("recover"), script("dead_letter")


_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


def _sent(e: Envelope) -> int | str:
    """The publish script's sent time of a message: microseconds, '' when in the body."""
    return "" if e.sent_at is None else round(e.sent_at * 1e6)


_MULTI = _pack(("MULTI",))


class RedisBroker(AdminBroker):
    """A broker on Redis, Redis Sentinel or Redis Cluster (see the module docstring)."""

    # A fetch takes what it is asked for: batches of short tasks can be large (a fetch
    # costs the server a script call, about as much as 8 messages' share of it).
    default_prefetch_multiplier = 16

    _admin: RedisAdmin
    keeps_sent_at = True  # in each entry's header (see entries.py)

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        lease_seconds: float = 30.0,
        max_deliveries: int = 5,
        **options: Any,
    ) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_deliveries = max_deliveries
        self.target = parse_url(url, options)
        self.client = connect(self.target)
        self.cluster = self.target.kind == "cluster"
        pooled = PooledLink(self.client) if self.cluster else None
        self.link: HeldLink | PooledLink = pooled or HeldLink(self.client.connection_pool)
        p = self.prefix = self.target.prefix
        self._queues_key, self._revoked_key = f"{{{p}}}:queues", f"{{{p}}}:revoked"
        # keys outside the queues' slots, which scripts may use only off Cluster
        self._clock = () if self.cluster else (f"{{{p}}}:clock",)
        self._wake_prefix = f"{p}:wake:" if self.cluster else ""
        self._retry_timeout = float(self.target.options["publish_retry_timeout"])
        timeout = self.target.options["socket_timeout"]
        self._max_block = max(0.1, timeout - 1.0) if timeout else 300.0
        self._bases: dict[str, str] = {}
        self._wakes: dict[str, bytes] = {}  # per queue base: see _publish_now
        self._registered: set[str] = set()  # queues this process has put in {P}:queues
        self._last_order = 0  # the order of this object's last single publish
        self._known: list[str] = []  # the last list of every queue
        self._blocker: HeldLink | None = None  # off Cluster: a connection for blocked fetches
        self._shared: tuple[Backend | None, bool] | None = None  # see _same_store
        self._fetch_ids, self._fetches = uuid.uuid4().hex, 0
        self._unanswered: dict[str, str] = {}  # consumer -> id of a fetch with no reply yet
        error = self._error
        self._admin = RedisAdmin(
            self.client, self.link, self._queues_key, self.base, self._channel, error
        )
        revocations = RedisRevocations(self.link, self._revoked_key, error)
        self._cluster = (
            None
            if pooled is None
            else ClusterFetch(self.client, pooled, self.base, self._wake_prefix, revocations)
        )
        self.streams = RedisStreams(self.client, p, self._max_block, error)
        self.flags = RedisFlags(self.client, f"{{{p}}}:flags", error)
        self.rates = RedisRates(self.link, p, error)
        self.uniques = RedisUniques(self.link, p, error)
        self.concurrency = Concurrency(RedisConcurrency(self.link, p, error), self.lease_seconds)
        self.revocations = revocations
        if not self.cluster:  # recording a run with its message spans slots
            self.beat = RedisBeat(self.link, self.client, p, self.base, self._clock, error)
        self.browse = RedisBrowser(self._admin)

    def __repr__(self) -> str:
        return f"<RedisBroker {self.target.url}>"

    # -- keys ------------------------------------------------------------------
    def base(self, queue: str) -> str:
        """The key base (and hash tag) of a queue."""
        base = self._bases.get(queue)
        if base is None:
            if not isinstance(queue, str) or not queue or "{" in queue or "}" in queue:
                raise ConfigurationError(
                    f"queue name {queue!r} cannot be used on Redis: use a non-empty name "
                    "without braces"
                )
            base = self._bases[queue] = f"{{{self.prefix}:{queue}}}"
        return base

    def _channel(self, queue: str) -> str:
        return self._wake_prefix + queue if self.cluster else ""

    def _error(self, exc: BaseException) -> Exception:
        return translate(exc, self.target, "Redis broker", BrokerUnavailable, BrokerError)

    # -- producing ---------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Store messages in one round trip, retrying within ``publish_retry_timeout``."""
        if not envelopes:
            return
        deadline = 0.0
        pauses: Backoff | None = None
        while True:
            try:
                return self._publish(envelopes)
            except RedisError as exc:
                now = time.monotonic()
                deadline = deadline or now + self._retry_timeout
                if not is_unavailable(exc) or now >= deadline:
                    raise self._error(exc) from exc
                self._registered.clear()
                pauses = pauses or Backoff(0.05, cap=1.0)
                pauses.sleep(deadline - now)

    def _publish(self, envelopes: Sequence[Envelope]) -> None:
        if len(envelopes) == 1 and envelopes[0].queue in self._registered:
            e = envelopes[0]
            if e.eta is None and not self.cluster:
                return self._publish_now(e)
            keys = (self.base(e.queue), *self._clock)
            kind, id_part = entry_head(e.priority, e.id)
            args = (1, self._channel(e.queue), 1, kind, e.eta or "", _sent(e), id_part, e.body)
            self.link.call(_PUBLISH, keys, args)
            return
        batch = Batch()
        if self.cluster:  # one script reaches one slot: a call per queue
            groups: dict[str, list[Envelope]] = {}
            for e in envelopes:
                groups.setdefault(e.queue, []).append(e)
            for group in groups.values():
                for i in range(0, len(group), PUBLISH_CHUNK):
                    self._publish_call(batch, group[i : i + PUBLISH_CHUNK])
        else:
            for i in range(0, len(envelopes), PUBLISH_CHUNK):
                self._publish_call(batch, envelopes[i : i + PUBLISH_CHUNK])
        new = {e.queue for e in envelopes} - self._registered
        if new:
            batch.command("SADD", self._queues_key, *new)
        self.link.run(batch)
        self._registered |= new

    def _publish_now(self, e: Envelope) -> None:
        """One message due now, without a script: the entry and a wake-up token in one
        MULTI (a third of a script's cost on the server), ordered by this process's
        clock, strictly increasing (see the module docstring)."""
        order = self._last_order = max(time.time_ns() // 1000, self._last_order + 1)
        sent = None if e.sent_at is None else round(e.sent_at * 1e6)
        entry = new_entry(e.priority, order, sent, e.id, e.body)
        base = self.base(e.queue)
        wake = self._wakes.get(base)
        if wake is None:  # LPUSH and LTRIM of the token, EXEC: the same for every message
            notify = f"{base}:notify"
            wake = self._wakes[base] = b"".join(
                map(_pack, [("LPUSH", notify, "1"), ("LTRIM", notify, 0, 0), ("EXEC",)])
            )
        assert isinstance(self.link, HeldLink)  # off Cluster
        packed = b"%b%b%b" % (_MULTI, _pack(("RPUSH", f"{base}:p{e.priority}", entry)), wake)
        replies = self.link.send_packed(packed, 5)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        if replies[-1] is None:  # EXEC aborted: nothing was stored
            raise BrokerError(f"Redis refused to store message {e.id} in queue {e.queue!r}")
        for reply in replies[-1]:
            if isinstance(reply, Exception):
                raise reply

    def _publish_call(self, batch: Batch, envelopes: Sequence[Envelope]) -> None:
        index: dict[str, int] = {}
        args: list[Any] = []
        for e in envelopes:
            qi = index.get(e.queue)
            if qi is None:
                qi = index[e.queue] = len(index) + 1
            kind, id_part = entry_head(e.priority, e.id)
            args += (qi, kind, e.eta or "", _sent(e), id_part, e.body)
        keys = [*map(self.base, index), *self._clock]
        batch.script(_PUBLISH, keys, (len(index), *map(self._channel, index), *args))

    # -- consuming ---------------------------------------------------------
    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + timeout
        cluster = self._cluster
        try:
            if cluster is not None:
                cluster.subscribe(queues)
            wait, taken = self._take(queues, consumer, limit)
            while not taken:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (wake is not None and wake.is_set()):
                    return []
                seconds = remaining if wait is None else min(remaining, wait)
                if cluster is not None:
                    cluster.wait(max(0.01, min(seconds, self._max_block)))
                    wait, taken = self._take(queues, consumer, limit)
                else:
                    wait, taken = self._block_and_take(queues, consumer, limit, seconds, wake)
            return taken
        except RedisError as exc:
            raise self._error(exc) from exc

    def _take(
        self, queues: Sequence[str], consumer: str, limit: int
    ) -> tuple[float | None, list[Delivery]]:
        if self._cluster is not None:
            return self._cluster.take(queues, consumer, limit, self.lease_seconds)
        keys = [*map(self.base, queues), self._revoked_key, *self._clock]
        fetch_id = self._fetch_id(consumer)
        args = fetch_args(queues, consumer, limit, self.lease_seconds, "", fetch_id)
        wait, _, taken = fetched(self.link.call(_FETCH, keys, args))
        del self._unanswered[consumer]
        return wait, taken

    def _fetch_id(self, consumer: str) -> str:
        """The id of this consumer's next fetch: the id of its last one when that one's
        reply never came (the script may have run: sent again, it returns what it
        leased rather than leaving it held by a consumer that does not know it)."""
        fetch_id = self._unanswered.get(consumer)
        if fetch_id is None:
            self._fetches += 1
            fetch_id = self._unanswered[consumer] = f"{self._fetch_ids}:{self._fetches}"
        return fetch_id

    def _block_and_take(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        seconds: float,
        wake: Wake | None = None,
    ) -> tuple[float | None, list[Delivery]]:
        """Wait for a publish, then take, in one round trip: the server runs the fetch
        script right after the blocking pop returns (or times out), since it serves
        one connection's commands in order. On a connection of its own, so the held
        one is never tied up while waiting.

        A ``wake`` set meanwhile ends the blocking pop at once (``CLIENT UNBLOCK``,
        sent on the held connection): the fetch script still runs and what it takes
        is returned, so nothing is left leased to a consumer that does not know it.
        """
        seconds = max(0.01, min(seconds, self._max_block))
        if self._blocker is None:
            self._blocker = HeldLink(self.client.connection_pool)
        waking = None
        if wake is not None:
            blocked = self._blocker.client_id()
            link = self.link
            waking = (
                wake,
                lambda: link.execute("CLIENT", "UNBLOCK", blocked, timeout=_UNBLOCK_TIMEOUT),
            )
        batch = Batch()
        batch.command("BLPOP", *[self.base(q) + ":notify" for q in queues], seconds)
        keys = [*map(self.base, queues), self._revoked_key, *self._clock]
        fetch_id = self._fetch_id(consumer)
        args = fetch_args(queues, consumer, limit, self.lease_seconds, "", fetch_id)
        batch.script(_FETCH, keys, args)
        _, reply = self._blocker.run(batch, timeout=seconds + 5.0, wake=waking)
        wait, _, taken = fetched(reply)
        del self._unanswered[consumer]
        return wait, taken

    def _by_queue(self, s: Any, tags: Sequence[str], head: Callable[[str], list[Any]]) -> Any:
        """Run a per-queue script over tags grouped by queue (one round trip)."""
        groups = by_queue(tags)
        try:
            if len(groups) == 1:
                queue, group = next(iter(groups.items()))
                return self.link.call(s, (self.base(queue),), (*head(queue), *group))
            batch = Batch()
            for queue, group in groups.items():
                batch.script(s, (self.base(queue),), (*head(queue), *group))
            return self.link.run(batch) if batch else None
        except RedisError as exc:
            raise self._error(exc) from exc

    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        batch = Batch()
        self.ack_into(batch, tags)
        if batch:
            try:
                self.link.run(batch)
            except RedisError as exc:
                raise self._error(exc) from exc

    def ack_into(self, batch: Batch, tags: Sequence[str]) -> None:
        """Add the acks of these tags to a batch (to share its round trip).

        An ack is one plain ``HDEL`` of the tags from their holder's hash per
        holder and queue, not a script: the message is gone once it ran, and
        the holder's lease (one per consumer and queue) covers what else it
        holds. Unknown tags are ignored."""
        for queue, group in by_queue(tags).items():
            base = self.base(queue)
            holders: dict[str, list[str]] = {}
            for tag in group:
                holders.setdefault(consumer_of(tag), []).append(tag)
            for holder, held in holders.items():
                batch.command("HDEL", f"{base}:held:{holder}", *held)

    def complete(
        self, consumer: str, tags: Sequence[str], backend: Backend | None, metas: Sequence[TaskMeta]
    ) -> None:
        """Store results and ack in one round trip when the backend is this same Redis.

        With nothing to store, the ack is posted (:meth:`HeldLink.post`): sent
        now, its answer read by this object's next call, so a worker starts its
        next task without waiting a round trip."""
        if not metas and isinstance(self.link, HeldLink):
            batch = Batch()
            self.ack_into(batch, tags)
            try:
                self.link.post([args for _, args in batch.commands], "ack")
            except RedisError as exc:
                raise self._error(exc) from exc
            return
        if not metas or not self._same_store(backend):
            return super().complete(consumer, tags, backend, metas)
        batch = Batch()
        backend.store_into(batch, metas, from_db=self.target.db)
        self.ack_into(batch, tags)
        try:
            self.link.run(batch)
        except RedisError as exc:
            raise self._error(exc) from exc

    def ack_soon(self, consumer: str, tags: Sequence[str]) -> None:
        """Deferred on the held link (:meth:`HeldLink.defer`): written in front of this
        broker's next command, usually the fetch of the next batch."""
        if not isinstance(self.link, HeldLink):
            return self.ack(consumer, tags)
        batch = Batch()
        self.ack_into(batch, tags)
        self.link.defer([args for _, args in batch.commands], "ack")
        return None

    def flush_acks(self) -> None:
        if isinstance(self.link, HeldLink):
            try:
                self.link.flush()
            except RedisError as exc:
                raise self._error(exc) from exc

    def _same_store(self, backend: Backend | None) -> TypeGuard[RedisBackend]:
        """Whether ``backend`` is a Redis backend keeping its records on this server
        (decided once per backend)."""
        known = self._shared
        if known is not None and known[0] is backend:
            return known[1]
        if not isinstance(backend, RedisBackend):
            shared = False
        else:
            try:
                shared = backend.same_server(self.target, lambda: run_id(self.client))
            except RedisError:
                return False  # asked again next time: the two round trips work meanwhile
        self._shared = (backend, shared)
        return shared

    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        flag = "1" if count else "0"
        self._by_queue(
            _RELEASE,
            tags,
            lambda q: [max(0.0, delay), flag, self._channel(q), self.max_deliveries],
        )

    def _per_queue(self, s: Any, args: Callable[[str], list[Any]]) -> list[Any]:
        """Run a script on every known queue: one round trip unless new queues appeared."""
        try:
            known = self._known
            batch = Batch()
            batch.command("SMEMBERS", self._queues_key)
            for queue in known:
                batch.script(s, (self.base(queue),), args(queue))
            results = self.link.run(batch)
            current = sorted(m.decode() for m in results[0])
            self._known = current
            results = results[1:]
            new = sorted(set(current) - set(known))
            if new:
                batch = Batch()
                for queue in new:
                    batch.script(s, (self.base(queue),), args(queue))
                results += self.link.run(batch)
            return results
        except RedisError as exc:
            raise self._error(exc) from exc

    def release_all(self, consumer: str) -> int:
        return sum(
            self._per_queue(
                _RELEASE_ALL, lambda q: [consumer, self.max_deliveries, self._channel(q)]
            )
        )

    def renew(self, consumers: Sequence[str]) -> None:
        if consumers:
            self._per_queue(_RENEW, lambda q: [self.lease_seconds, *consumers])

    def recover(self) -> int:
        total = 0
        for _ in range(100):  # bounded: a huge backlog is finished by the next call
            counts = self._per_queue(
                _RECOVER, lambda q: [self.max_deliveries, RECOVER_BATCH, self._channel(q)]
            )
            total += sum(counts)
            if max(counts, default=0) < RECOVER_BATCH:
                break
        return total

    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        if queue_of(tag):
            self._admin.run(_DEAD_LETTER, queue_of(tag), (tag, reason))

    def forget_queue(self, queue: str) -> bool:
        return self._admin.forget_queue(queue)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        if self._blocker is not None:
            self._blocker.close()
            self._blocker = None
        self.link.close()
        disconnect(self.client)


__all__ = ["RedisBroker", "queue_of"]
