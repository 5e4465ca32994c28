"""The beat: any number run, one leads, and each due run of each entry is sent once.

Every beat process tries to hold the lease in the broker (``broker.beat``);
the one that holds it renews it every third of ``beat_lease_seconds`` and sends
the runs that fall due. The others try again every sixth of a lease, so when
the leader dies one of them takes over within a lease and a sixth.

A run is named by (entry, due time). Sending it and recording it as the entry's
last run is one atomic step in the broker, which records only a due time later
than the last: a run is sent once even if two processes both think they lead.
The message carries its due time (header ``beat``: entry and due ms) and a task
id derived from both.

Runs missed while nobody led (after the last lease ended, before this leader
took over) follow the entry's ``catch_up``: ``"once"`` sends the latest of them,
``"skip"`` none. Runs that fell due while a leader held its lease, which a dead
leader could not send, are sent each, late, by its successor.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..brokers.capabilities import BeatRun, BeatState, Lease
from ..events.dispatcher import EventDispatcher
from ..events.forksafe import guarded
from ..exceptions import BrokerUnavailable, CapabilityUnavailable, CeleriacError
from ..message import Envelope, Message
from ..urls import redact
from .entries import CHANGES, Entry, app_timezone, load_entries

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from ..task import Task

logger = logging.getLogger("celeriac.beat")

BEAT_SENT, BEAT_SKIPPED, BEAT_LEADER = "beat-sent", "beat-skipped", "beat-leader"
REFRESH_SECONDS = 0.5  # runtime changes reach the leader within this
_ID_KEY = b"celeriac.beat.run"
_MAX_BACKLOG = 10_000  # due times enumerated per entry and round at most
RECORD_BATCH = 500  # runs recorded (and sent) per broker call
PREPARE_AHEAD = 1.0  # seconds before their due time the leader builds runs' messages


def run_id(entry: str, due_ms: int) -> str:
    """The task id of a run: the same in every process for one (entry, due time), shaped
    as a UUID (a keyed BLAKE2 hash: a quarter of ``uuid5``'s cost, which counts at 10,000
    runs a second)."""
    h = hashlib.blake2b(f"{entry}\0{due_ms}".encode(), digest_size=16, key=_ID_KEY).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def beat_state(broker: Broker) -> BeatState:
    """The broker's beat state, or an error saying which brokers keep one."""
    if broker.beat is None:
        raise CapabilityUnavailable(
            f"broker {redact(broker.url)} ({type(broker).__name__}) cannot record periodic "
            "runs atomically with their messages, so celeriac beat cannot run on it: use a "
            "Redis (not Cluster), RabbitMQ, SQLite or memory:// broker as broker_url"
        )
    return broker.beat


class Beat:
    """One beat process (or thread): campaigns for the lease, and sends due runs while leading."""

    def __init__(self, app: Celeriac, name: str | None = None, events: bool = True) -> None:
        self.app = app
        self.name = name or f"beat-{os.getpid()}@{socket.gethostname()}"
        self.holder = f"{self.name}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = float(app.conf.beat_lease_seconds)
        self.tz = app_timezone(app)
        self.events = EventDispatcher(app, hostname=self.name) if events else None
        self.leading = False
        self.sent = 0
        self._stop = threading.Event()
        self._broker: Broker | None = None
        self._entries: dict[str, Entry] = {}
        self._flags_seen: dict[str, str] | None = None
        self._last: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._templates: dict[str, tuple[Entry, Message]] = {}  # entry name -> its message
        self._prepared: dict[tuple[str, int], Envelope] = {}  # (entry, due ms) -> built early
        self._owed_until_ms = 0  # runs due up to here were a leader's to send
        self._led_since_ms = 0
        self._lease_until = 0.0
        self._refresh_due = 0.0  # monotonic time of the next look at runtime changes

    # -- lifecycle -------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end (from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> None:
        """Campaign and lead until :meth:`stop`; gives the lease up on the way out."""
        load_entries(self.app, {})  # a bad beat_schedule fails here, not in every round
        # guarded: a worker with an embedded beat (-B) forks children while it runs
        broker = self._broker = guarded(self.app.connect_broker)
        state = beat_state(broker)
        logger.info("beat %s started on %s", self.name, redact(broker.url))
        try:
            while not self._stop.is_set():
                try:
                    pause = self.step(state)
                except BrokerUnavailable as exc:  # an outage: try again, the lease may hold
                    logger.warning("beat %s: the broker is unavailable (%s)", self.name, exc)
                    pause = 1.0
                except CeleriacError:
                    logger.exception("beat %s: a round failed; it gives up the lead", self.name)
                    self._step_down(state)
                    pause = 1.0
                self._stop.wait(pause)
        finally:
            if self.leading:
                self._step_down(state)
                self._leader_changed(self.name)
            if self.events is not None:
                self.events.close()
            broker.close()

    def step(self, state: BeatState) -> float:
        """One round: hold or take the lease, send what is due; seconds until the next."""
        now = time.time()
        if self.leading and now < self._lease_until - self.lease_seconds * 2 / 3:
            self._send_round(state)  # renewed less than a third of a lease ago
            return self._pause()
        previous = None if self.leading else state.lease()
        if self.leading and now >= self._lease_until:
            # our lease ran out unrenewed (a broker outage, a stalled process): the time
            # since counts as time no beat led, as if we were elected anew
            self.leading = False
            previous = Lease("", self._lease_until)
        lease = state.hold(self.holder, self.lease_seconds)
        now = time.time()
        if lease.holder != self.holder:
            if self.leading:
                self.leading = False
                logger.warning("beat %s lost the lead to %s", self.name, lease.holder)
            return max(0.05, min(self.lease_seconds / 6, lease.until - now + 0.01))
        self._lease_until = lease.until
        if not self.leading:
            self._elected(state, previous, now)
        self._send_round(state)
        return self._pause()

    def _send_round(self, state: BeatState) -> None:
        if time.monotonic() >= self._refresh_due:
            self._refresh(state)
            self._refresh_due = time.monotonic() + REFRESH_SECONDS
        self._send_due(state)
        self._prepare()

    def _prepare(self) -> None:
        """Build the messages of runs due within :data:`PREPARE_AHEAD` seconds now, while
        waiting, so that at their due time there is only the recording left to do."""
        if not self._heap:
            return
        now = time.time()
        first_due = self._heap[0][0] / 1000
        horizon_ms = int((now + PREPARE_AHEAD) * 1000)
        for due, name in list(self._heap):
            if due > horizon_ms or (name, due) in self._prepared:
                continue
            if time.time() >= first_due:  # a run is due: sending it comes first
                return
            entry = self._entries[name]
            if not entry.paused:
                self._prepared[(name, due)] = self._envelope(entry, due, False)

    def _step_down(self, state: BeatState) -> None:
        """Give the lead up after an error, so a beat that can send takes it."""
        if not self.leading:
            return
        self.leading = False
        try:
            state.release(self.holder)
        except CeleriacError:
            logger.warning("beat %s could not give up its lease; it runs out", self.name)

    # -- leading ---------------------------------------------------------------
    def _elected(self, state: BeatState, previous: Lease | None, now: float) -> None:
        # A lease that ended by expiry was a live leader's until it died, and its successor
        # may need one more lease to notice: runs due until then are owed, each of them.
        # Our own lease that ran out (an outage) was ours until it ended: no slack.
        if previous is None:
            owed_until = 0.0
        elif previous.holder and previous.holder != self.holder:
            owed_until = previous.until + self.lease_seconds
        else:
            owed_until = previous.until
        self._owed_until_ms = int(owed_until * 1000)
        self._led_since_ms = int(now * 1000)
        self.leading = True
        self._flags_seen = None
        self._refresh_due = 0.0
        self._last = state.last_runs()
        logger.info("beat %s leads now (after %s)", self.name, previous and previous.holder)
        self._leader_changed(previous.holder if previous else None)

    def _leader_changed(self, previous: str | None) -> None:
        if self.events is not None:
            leader = self.name if self.leading else None
            self.events.send(BEAT_LEADER, leader=leader, previous=previous, beat=self.name)

    def _refresh(self, state: BeatState) -> None:
        """Re-read runtime changes (every :data:`REFRESH_SECONDS` at most)."""
        flags = self._broker.flags if self._broker is not None else None
        found = flags.read(CHANGES) if flags is not None else {}
        if found == self._flags_seen:
            return
        self._flags_seen = found
        entries = load_entries(self.app, found)
        now_ms = int(time.time() * 1000)
        self._heap = []
        for entry in entries.values():
            last = self._last.get(entry.name)
            after = last if last is not None else now_ms
            heapq.heappush(self._heap, (entry.schedule.next_due(after, self.tz), entry.name))
        for gone in set(self._last) - set(entries):
            state.forget(gone)
            del self._last[gone]
        self._entries = entries
        self._templates = {n: t for n, t in self._templates.items() if n in entries}
        self._prepared.clear()  # built from entries that may have changed

    def _send_due(self, state: BeatState) -> None:
        """Send what is due, recording a batch at a time so the first runs leave early."""
        now_ms = int(time.time() * 1000)
        runs: list[BeatRun] = []
        skipped: list[BeatRun] = []
        while self._heap and self._heap[0][0] <= now_ms:
            due, name = heapq.heappop(self._heap)
            entry = self._entries[name]
            chosen, latest, catch_up = self._runs_of(entry, due, now_ms)
            for run_due in chosen:
                envelope = self._prepared.pop((name, run_due), None)
                if envelope is None or run_due == catch_up:
                    envelope = self._envelope(entry, run_due, run_due == catch_up)
                runs.append(BeatRun(name, run_due, envelope))
            if latest not in chosen:  # skipped: recorded, so no successor sends it
                skipped.append(BeatRun(name, latest, None))
            heapq.heappush(self._heap, (entry.schedule.next_due(latest, self.tz), name))
            if len(runs) + len(skipped) >= RECORD_BATCH:
                self._record(state, runs, skipped)
                runs, skipped = [], []
        if runs or skipped:
            self._record(state, runs, skipped)
        if self._prepared and next(iter(self._prepared))[1] <= now_ms:
            # built for runs that were skipped or paused since: forget them
            self._prepared = {k: v for k, v in self._prepared.items() if k[1] > now_ms}

    def _record(self, state: BeatState, runs: list[BeatRun], skipped: list[BeatRun]) -> None:
        taken = state.record(runs + skipped)
        for run, ok in zip(runs + skipped, taken, strict=True):
            if ok:
                self._last[run.entry] = max(run.due_ms, self._last.get(run.entry, 0))
        if not all(taken):  # another process recorded some: follow the broker's record
            self._last.update(state.last_runs())
        self._report(runs, taken[: len(runs)], skipped)

    def _runs_of(self, entry: Entry, first_due: int, now_ms: int) -> tuple[list[int], int, int]:
        """The due times to send of an entry due since ``first_due``, the latest one, and
        the catch-up run among them (0 when none)."""
        dues = [first_due]
        while len(dues) < _MAX_BACKLOG:
            following = entry.schedule.next_due(dues[-1], self.tz)
            if following > now_ms:
                break
            dues.append(following)
        latest = dues[-1]
        if entry.paused:
            return [], latest, 0
        owed = [d for d in dues if d <= self._owed_until_ms or d >= self._led_since_ms]
        missed = [d for d in dues if self._owed_until_ms < d < self._led_since_ms]
        if missed and entry.catch_up == "once":
            return sorted({*owed, missed[-1]}), latest, missed[-1]
        return owed, latest, 0

    def _envelope(self, entry: Entry, due_ms: int, catch_up: bool) -> Envelope:
        """The run's message: the entry's message, built once (routed, defaults applied),
        with this run's id, time and ``beat`` header."""
        app = self.app
        made = self._templates.get(entry.name)
        if made is None or made[0] is not entry:  # new, or changed at runtime
            made = self._templates[entry.name] = (entry, self._template(entry))
        base = made[1]
        now = time.time()
        # expires and countdown count from the send, as in Celery: from the due time for a
        # message built ahead of it
        shift = max(now, due_ms / 1000) - base.sent_at
        task_id = run_id(entry.name, due_ms)
        message = base.replace(
            id=task_id,
            root_id=task_id,
            sent_at=now,
            headers={
                **base.headers,
                "beat": {"entry": entry.name, "due": due_ms, "catch_up": catch_up},
            },
            expires=None if base.expires is None else base.expires + shift,
            eta=None if base.eta is None else base.eta + shift,
        )
        for hook in app.middleware.before_enqueue:
            message = hook(app, message)
        return message.envelope(app.codec)

    def _template(self, entry: Entry) -> Message:
        options = dict(entry.options)
        headers = options.pop("headers", {})
        task = self._tasks.get(entry.task)
        if task is None:  # a stand-in made once: the beat need not import the tasks' code
            task = self._tasks[entry.task] = self.app.sendable_task(entry.task)
        return task.build_message(entry.args, entry.kwargs, headers=headers, **options)

    def _report(
        self, runs: Sequence[BeatRun], taken: Sequence[bool], skipped: Sequence[BeatRun]
    ) -> None:
        sent = [run for run, ok in zip(runs, taken, strict=True) if ok]
        self.sent += len(sent)
        if self.events is None:
            return
        for run in sent:
            entry = self._entries[run.entry]
            assert run.envelope is not None
            self.events.send(
                BEAT_SENT,
                entry=run.entry,
                due=run.due_ms / 1000,
                task=entry.task,
                uuid=run.envelope.id,
                queue=run.envelope.queue,
                lag=time.time() - run.due_ms / 1000,
            )
        for run in skipped:
            reason = "paused" if self._entries[run.entry].paused else "missed while no beat led"
            self.events.send(BEAT_SKIPPED, entry=run.entry, due=run.due_ms / 1000, reason=reason)

    def _pause(self) -> float:
        now = time.time()
        renew_in = self._lease_until - self.lease_seconds * 2 / 3 - now
        due_in = (self._heap[0][0] / 1000 - now) if self._heap else REFRESH_SECONDS
        return max(0.0, min(renew_in, due_in, REFRESH_SECONDS))
