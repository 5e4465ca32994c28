"""Sending events without slowing tasks down.

``send`` encodes the event (one ``orjson.dumps``, well under a microsecond)
and appends the bytes to an in-memory deque (atomic under the GIL, no lock, no
I/O); a daemon thread per process writes what has gathered to the broker's
``"events"`` stream in one ``streams.add`` every ``FLUSH_INTERVAL`` seconds, or
sooner when a batch fills. So a task never waits for a broker round trip to be
seen. Encoding at once, rather than in the thread, keeps the buffer free of
objects the garbage collector would have to walk, and records the arguments as
they were when the event happened.

The events of one flush travel as one stream item, a JSON array compressed
with zlib (a "pack", up to ``PACK_MAX`` entries; a lone event is a plain
object). Storing an item costs the broker far more than encoding an event does
(a SQLite row, a Redis ``XADD``), so a worker running thousands of tasks a
second writes a few items a second instead of thousands, and compressed they
take a tenth of the room in the broker. :class:`~celeriac.events.EventReceiver`
unpacks them. ``event_queue_maxlen`` still counts events: each write trims the
stream to that many events' worth of items, at the events per item of this
process's writes that make up its newest ``event_queue_maxlen`` events
(:class:`~celeriac.events.budget.StreamBudget`).

A task's first events (received, started) are encoded when they happen but
held (:meth:`EventDispatcher.hold`) until its outcome joins them as one entry,
a group, whose later events need not repeat the task id, name and worker the
first one carries: one buffer entry per task instead of three. The writer
takes whatever is still held at every write, so a task seen running is never
held back longer than ``FLUSH_INTERVAL``; it takes groups only after the
buffer, so an outcome that finds its group gone is written after it.

While the broker is away the buffer keeps the newest ``MAX_BUFFER`` events and
counts the ones it drops; events are a view of the cluster, not part of the
delivery contract. A forked child starts with an empty buffer and its own
thread (the parent still owns what it had buffered).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from ..brokers.capabilities import require
from ..exceptions import CapabilityUnavailable
from .budget import StreamBudget
from .event import encode_event, show
from .forksafe import guarded

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.events")

EVENTS_STREAM = "events"
FLUSH_INTERVAL = 0.2  # seconds: how stale a live view may be
BATCH_SIZE = 1000  # entries per streams.add; a full batch wakes the thread at once
PACK_MAX = 500  # entries per stream item
MAX_BUFFER = 100_000  # entries (events, tasks' groups) kept while the broker is away
_RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0)
FAILING_FLUSH_TIMEOUT = 0.2  # how long a flush waits while the broker is failing
_GROUP = ord("[")  # the first byte of an entry that is a task's group of events

_ALL: weakref.WeakSet[EventDispatcher] = weakref.WeakSet()
_BY_APP: weakref.WeakKeyDictionary[Celeriac, EventDispatcher] = weakref.WeakKeyDictionary()
_BY_APP_LOCK = threading.Lock()


def default_hostname() -> str:
    """``pid@host``: names a producer process in its events."""
    return f"{os.getpid()}@{socket.gethostname()}"


class EventDispatcher:
    """Buffers events and writes them to the broker's event stream in batches."""

    def __init__(
        self, app: Celeriac, hostname: str | None = None, flush_interval: float = FLUSH_INTERVAL
    ) -> None:
        self.app = app
        self._named = hostname is not None  # else named after the process, renamed on fork
        self.hostname = hostname or default_hostname()
        self.flush_interval = flush_interval
        self.sent = 0  # events written to the broker
        self.dropped = 0  # events lost because the buffer overflowed
        self.budget = StreamBudget()  # how many items hold event_queue_maxlen events
        self.unsupported = False  # the broker has no streams: events are dropped
        self.max_size = int(app.conf.event_args_max_size)  # re-read by the thread each round
        self._init_process_state()
        _ALL.add(self)

    def _init_process_state(self) -> None:
        self._buffer: deque[bytes] = deque()
        self._held: dict[str, bytes] = {}  # task id -> its first events, encoded
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._writing = False
        self._stopping = False
        self._failing = False  # the last write failed: flushes do not wait long for the next
        self._pid = os.getpid()

    # -- the hot path --------------------------------------------------------------
    def send(self, type: str, **fields: Any) -> None:
        """Queue one event; ``timestamp`` defaults to now, ``hostname`` to this dispatcher's."""
        fields["type"] = type
        if "timestamp" not in fields:
            fields["timestamp"] = time.time()
        if "hostname" not in fields:
            fields["hostname"] = self.hostname
        self.put(fields)

    def put(self, fields: dict[str, Any], task_id: str | None = None) -> None:
        """Queue one event given whole (``type``, ``timestamp``, ``hostname`` set): the
        task middleware's form of :meth:`send`, with nothing to fill in. With ``task_id``,
        the event joins that task's :meth:`hold` group when it is still held; it must be
        whole all the same, as the group may have been written already."""
        if self.unsupported:
            return
        group = None if task_id is None else self._held.pop(task_id, None)
        if group is not None:
            data = group[:-1] + b"," + self._encode(fields) + b"]"
        else:
            fields["pid"] = self._pid
            data = self._encode(fields)
            # A copy: orjson's own result keeps a large allocation alive, and holding
            # thousands of those costs the allocator ~20 us each; a copy costs 0.1 us.
            data = memoryview(data).tobytes()
        self._buffer.append(data)
        if self._thread is None:
            self._start()
        elif len(self._buffer) == BATCH_SIZE:
            self._wake.set()

    def hold(self, task_id: str, events: list[dict[str, Any]]) -> None:
        """Keep a task's first events (received, started) to be written as one group with
        its outcome (:meth:`put` with ``task_id``), or at the next write, whichever comes
        first: a task seen running is never held past one ``flush_interval``."""
        if self.unsupported:
            return
        events[0]["pid"] = self._pid
        try:
            group = orjson.dumps(events)
        except (orjson.JSONEncodeError, TypeError):
            group = b""
        if not group or len(group) > self.max_size:  # rare: let each event be cut alone
            group = b"[" + b",".join(self._encode(fields) for fields in events) + b"]"
        earlier = self._held.pop(task_id, None)
        if earlier is not None:  # the same task id running twice here: keep both
            self._buffer.append(earlier)
        self._held[task_id] = group
        if self._thread is None:
            self._start()

    def _encode(self, fields: dict[str, Any]) -> bytes:
        try:
            data = orjson.dumps(fields)  # plain JSON types: half the cost of the options below
        except (orjson.JSONEncodeError, TypeError):
            try:  # other types as their repr, keys that are not strings as strings
                data = orjson.dumps(fields, default=show, option=orjson.OPT_NON_STR_KEYS)
            except (orjson.JSONEncodeError, TypeError):
                data = encode_event(fields, self.max_size)  # a huge int, a cycle: the slow way
        if len(data) > self.max_size:
            data = encode_event(fields, self.max_size)  # cut what is too large
        return data

    # -- the background thread -------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="celeriac-events", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        broker: Broker | None = None
        failures = 0
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping
            # Only what was there on waking: events sent meanwhile wait for the next round,
            # so writes stay few and large rather than chasing each new event.
            due = len(self._buffer)
            held = bool(self._held)
            while due > 0 or held:
                try:
                    broker = broker or guarded(self.app.connect_broker)
                    due -= self._write_batch(broker, min(due, BATCH_SIZE), held)
                    held = False
                    failures = 0
                    self._failing = False
                except CapabilityUnavailable as exc:
                    self._unsupported(exc)  # drops what is buffered and held: round over
                    due, held = 0, False
                except Exception as exc:  # any broker trouble: keep events, retry later
                    self._on_failure(broker, exc, failures)
                    broker = None
                    failures += 1
                    self._failing = True
                    if stopping or self._stopping:
                        break
                    self._wake.wait(_RETRY_BACKOFF[min(failures, len(_RETRY_BACKOFF)) - 1])
                    due = len(self._buffer)
            if len(self._buffer) >= BATCH_SIZE:
                self._wake.set()  # a full batch is waiting already: no pause
            with self._idle:
                self._idle.notify_all()
            if stopping:
                break
        if broker is not None:
            broker.close()

    def _write_batch(self, broker: Broker, limit: int, held: bool) -> int:
        """Write up to ``limit`` buffered entries, packed, and with ``held`` the groups of
        tasks still running; returns how many buffered entries."""
        streams = require(broker, broker.streams, "streams", "sending events")
        conf = self.app.conf
        self.max_size = int(conf.event_args_max_size)
        batch: list[bytes] = []
        buffer = self._buffer
        while buffer and len(batch) < limit:
            batch.append(buffer.popleft())
        taken = len(batch)
        if held:
            # Only now, after the buffer: a task whose group is taken here puts its outcome
            # in the buffer after this, so the outcome is written after the group.
            for task_id in list(self._held):
                group = self._held.pop(task_id, None)
                if group is not None:
                    batch.append(group)
        if not batch:  # emptied meanwhile (a fork, a broker without streams): round over
            return limit
        self._writing = True
        try:
            items = [pack(batch[i : i + PACK_MAX]) for i in range(0, len(batch), PACK_MAX)]
            # A buffered group is a task's three events (two for a rerun's first run), a
            # group still held its two so far: its outcome is counted when it is written.
            groups = sum(entry[0] == _GROUP for entry in batch[:taken])
            events = taken + 2 * groups + 2 * (len(batch) - taken)
            maxlen = self.budget.maxlen(len(items), events, int(conf.event_queue_maxlen))
            streams.add(EVENTS_STREAM, items, maxlen=maxlen)
        except BaseException:
            buffer.extendleft(reversed(batch))  # in order, ahead of newer events
            raise
        finally:
            self._writing = False
        self.sent += events
        return taken

    def _unsupported(self, exc: CapabilityUnavailable) -> None:
        if not self.unsupported:
            logger.info("events are off: %s", exc)
        self.unsupported = True
        self.dropped += len(self._buffer) + len(self._held)
        self._buffer.clear()
        self._held.clear()

    def _on_failure(self, broker: Broker | None, exc: Exception, failures: int) -> None:
        if failures == 0:
            logger.warning("cannot write events to the broker, will retry: %r", exc)
        overflow = len(self._buffer) - MAX_BUFFER
        for _ in range(max(0, overflow)):
            self._buffer.popleft()
        self.dropped += max(0, overflow)
        if broker is not None:
            try:
                broker.close()
            except Exception:  # the connection is already broken
                logger.debug("closing a failed broker connection", exc_info=True)

    # -- flushing and stopping ----------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far; True when the buffer emptied within ``timeout``."""
        if self._thread is None:
            if not self._buffer and not self._held:
                return True
            self._start()
        deadline = time.monotonic() + timeout
        cut = False
        with self._idle:
            while self._buffer or self._held or self._writing:
                if self._failing and not cut:  # the broker is down: it will not take them soon
                    deadline, cut = min(deadline, time.monotonic() + FAILING_FLUSH_TIMEOUT), True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush and stop the thread (it starts again if another event is sent)."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        with self._start_lock:
            self._thread = None


def pack(entries: list[bytes]) -> bytes:
    """One stream item: a lone event as is, several entries as a JSON array, compressed.

    An entry is an event (a JSON object) or one task's group (a JSON array of its
    events, written together), whose later events may leave out the task's id, name,
    worker and pid: they share the first's (see :func:`~.event.decode_item`).
    """
    if len(entries) == 1 and entries[0][0] != _GROUP:
        return entries[0]
    return zlib.compress(b"[" + b",".join(entries) + b"]", 1)


_last: tuple[Celeriac, EventDispatcher] | None = None  # most processes have one app


def dispatcher_for(app: Celeriac) -> EventDispatcher:
    """The process's dispatcher of ``app`` (created on first use)."""
    global _last
    last = _last
    if last is not None and last[0] is app:
        return last[1]
    dispatcher = _BY_APP.get(app)
    if dispatcher is None:
        with _BY_APP_LOCK:
            dispatcher = _BY_APP.get(app)
            if dispatcher is None:
                dispatcher = _BY_APP[app] = EventDispatcher(app)
    _last = (app, dispatcher)
    return dispatcher


def close_dispatcher(app: Celeriac) -> None:
    """Flush and stop ``app``'s dispatcher in this process, if it has one; its broker
    connection closes with its thread."""
    dispatcher = _BY_APP.get(app)
    if dispatcher is not None and dispatcher._pid == os.getpid():
        dispatcher.close(timeout=2.0)


def _after_fork_in_child() -> None:
    for dispatcher in list(_ALL):
        dispatcher._init_process_state()
        if not dispatcher._named:
            dispatcher.hostname = default_hostname()


def _flush_all_at_exit() -> None:
    for dispatcher in list(_ALL):
        if dispatcher._pid == os.getpid():
            dispatcher.close(timeout=2.0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_all_at_exit)
