"""How many items of the event stream to keep so that ``event_queue_maxlen`` events stay.

A stream is trimmed by items, but items carry a varying number of events: a
lone event when a worker is quiet, a pack of hundreds when it is busy. The
items a process wrote last are the newest in the stream, so the events per item
of the writes that make up its newest ``event_queue_maxlen`` events say how
many items hold that many events. An average weighted towards the latest write
would not: after a quiet spell (one event per item) a busy write (hundreds per
item) would trim the stream far below ``event_queue_maxlen`` events, dropping
events that readers had not seen yet.

Several processes write to one stream, each trimming by its own writes, so the
bound is approximate; one writer alone never trims below it.
"""

from __future__ import annotations

from collections import deque


class StreamBudget:
    """The writes (items, events) that make up a process's newest events, oldest first."""

    def __init__(self) -> None:
        self._writes: deque[tuple[int, int]] = deque()
        self._items = 0
        self._events = 0

    def maxlen(self, items: int, events: int, max_events: int) -> int:
        """Record a write of ``items`` holding ``events``; the items to trim the stream to."""
        writes = self._writes
        writes.append((items, events))
        self._items += items
        self._events += events
        while len(writes) > 1 and self._events - writes[0][1] >= max_events:
            old_items, old_events = writes.popleft()
            self._items -= old_items
            self._events -= old_events
        return max(1, round(max_events * self._items / max(1, self._events)))
