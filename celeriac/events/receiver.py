"""Reading the event stream: for the CLI, the dashboard, and any tool.

::

    receiver = EventReceiver(app, checkpoint="monitor.position")
    for event in receiver:              # blocks; Ctrl-C or receiver.stop() ends it
        print(event.type, event.task_id, event.state)

With ``checkpoint`` the receiver writes the position of the last event it
handed out to that file after each batch (and when a loop over it ends), and
resumes after it when started again. Events trimmed from the stream meanwhile
(it keeps the newest ``event_queue_maxlen`` events) are gone; everything after is
seen. If the process dies mid-batch, that batch is handed out again: at least
once, so a tool that counts should key its records by ``position``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..brokers.capabilities import require
from .dispatcher import EVENTS_STREAM
from .event import Event, decode_item

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.events")

OLDEST = "0"  # start with the oldest event the stream still keeps
NEWEST = "$"  # start with events sent from now on


def position_key(position: str) -> tuple[int, ...] | None:
    """Positions as comparable numbers (``"17"``, ``"1712-3"``), None for foreign forms."""
    try:
        return tuple(int(part) for part in position.partition(":")[0].split("-"))
    except ValueError:
        return None


def _before(item: str) -> str | None:
    """The position just before stream item ``item`` (to read it again), if we can tell."""
    key = position_key(item)
    if key is None or not 1 <= len(key) <= 2:
        return None
    if len(key) == 1:
        return str(key[0] - 1)
    ms, seq = key  # a Redis stream id
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


def _cursor(position: str) -> tuple[str, tuple[str, int] | None]:
    """Where to read from for "after ``position``": (read after, (pack, skip up to index))."""
    item, colon, index = position.partition(":")
    if not colon:
        return item, None
    before = _before(item)
    if before is None:  # cannot re-read the pack: resume after all of it
        return item, None
    return before, (item, int(index))


class EventReceiver:
    """Iterates events from a position of the broker's event stream."""

    def __init__(
        self,
        app: Celeriac,
        after: str = NEWEST,
        checkpoint: str | os.PathLike[str] | None = None,
        types: Iterable[str] | None = None,
        stream: str = EVENTS_STREAM,
        broker: Broker | None = None,
    ) -> None:
        self.app = app
        self.stream = stream
        self.types = frozenset(types) if types is not None else None
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._broker = broker or app.connect_broker()
        self._own_broker = broker is None
        self._streams = require(self._broker, self._broker.streams, "streams", "reading events")
        self._stop = threading.Event()
        saved = self._read_checkpoint()
        self._skip: tuple[str, int] | None = None
        self._after = ""
        self._move(self._start_position(saved if saved is not None else after))

    def _move(self, position: str) -> None:
        """Resume after ``position``: an item's, or ``"P:k"``, the k-th event of pack P."""
        self.position = position
        self._after, self._skip = _cursor(position)

    def _read_checkpoint(self) -> str | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        text = self.checkpoint.read_text().strip()
        return text or None

    def _start_position(self, after: str) -> str:
        last = self._streams.last(self.stream)
        if after == NEWEST:
            return last
        if after == OLDEST:
            return OLDEST
        mine, theirs = position_key(after), position_key(last)
        if mine is not None and theirs is not None and mine > theirs:
            logger.warning(
                "event position %s is beyond the stream's newest (%s): the stream was reset; "
                "reading from its oldest event",
                after,
                last,
            )
            return OLDEST
        return after

    # -- reading -------------------------------------------------------------------
    def poll(self, timeout: float = 1.0, limit: int = 1000) -> list[Event]:
        """The next events (from at most ``limit`` stream items), waiting up to ``timeout``."""
        items = self._streams.read(self.stream, self._after, limit, timeout)
        if not items:
            return []
        events: list[Event] = []
        for position, data in items:
            decoded = decode_item(position, data)
            if self._skip is not None and self._skip[0] == position:
                decoded = decoded[self._skip[1] + 1 :]  # handed out before a restart
            self._skip = None
            events.extend(decoded)
        self._move(items[-1][0])
        if self.types is not None:
            events = [e for e in events if e.type in self.types]
        return events

    def __iter__(self) -> Iterator[Event]:
        return self.iter()

    def iter(self, timeout: float | None = None) -> Iterator[Event]:
        """Events as they come; ends after ``timeout`` seconds without one (None: never)."""
        wait = 1.0 if timeout is None else min(timeout, 1.0)
        idle = 0.0
        while not self._stop.is_set():
            before = self.position
            events = self.poll(wait)
            if self.position == before:
                idle += wait
                if timeout is not None and idle >= timeout:
                    return
                continue
            idle = 0.0
            handed = before
            try:
                for event in events:
                    handed = event.position  # counted as seen once handed out
                    yield event
                handed = self.position  # filtered-out events count as seen too
            finally:
                self._move(handed)  # a loop left early resumes after its last event
                self._save(handed)

    def stop(self) -> None:
        """End an ``iter()`` loop running in another thread, within about a second."""
        self._stop.set()

    # -- resuming ------------------------------------------------------------------
    def _save(self, position: str) -> None:
        if self.checkpoint is None:
            return
        partial = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        partial.write_text(position)
        partial.replace(self.checkpoint)  # atomic: a crash leaves the old or the new

    def save(self) -> None:
        """Write the current position to the checkpoint file now."""
        self._save(self.position)

    def close(self) -> None:
        if self._own_broker:
            self._broker.close()

    def __enter__(self) -> EventReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
