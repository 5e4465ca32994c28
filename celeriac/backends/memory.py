"""The in-process result store: for tests and eager runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..exceptions import TimeoutError
from ..serialization import Codec
from .base import Backend, TaskMeta

SWEEP_EVERY = 1024  # writes between two sweeps of expired entries
SWEEP_SECONDS = 60.0  # or this long, whichever comes first


@dataclass
class _Chord:
    expires: float
    parts: set[int] = field(default_factory=set)
    fired: bool = False


@dataclass
class _Store:
    lock: threading.Condition = field(default_factory=threading.Condition)
    results: dict[str, tuple[float, bytes]] = field(default_factory=dict)  # id -> (expires, meta)
    groups: dict[str, tuple[float, list[str]]] = field(default_factory=dict)
    chords: dict[str, _Chord] = field(default_factory=dict)
    writes: int = 0  # since the last sweep
    swept_at: float = field(default_factory=time.monotonic)


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


class MemoryBackend(Backend):
    """Results in this process's memory, shared by every ``memory://`` backend of a URL."""

    def __init__(self, codec: Codec, url: str = "memory://", expires: float = 86400.0) -> None:
        super().__init__(codec)
        self.url = url
        self.expires = expires
        with _STORES_LOCK:
            self._s = _STORES.setdefault(url, _Store())

    def store(self, metas: Sequence[TaskMeta]) -> None:
        until = time.time() + self.expires
        encoded = [(meta.task_id, meta.to_bytes(self.codec)) for meta in metas]
        with self._s.lock:
            for task_id, data in encoded:
                self._s.results[task_id] = (until, data)
            self._expire(len(encoded))
            self._s.lock.notify_all()

    def _expire(self, writes: int) -> None:
        """Drop expired entries now and then (not on every write), so memory stays bounded."""
        s = self._s
        s.writes += writes
        if s.writes < SWEEP_EVERY and time.monotonic() - s.swept_at < SWEEP_SECONDS:
            return
        s.writes, s.swept_at, now = 0, time.monotonic(), time.time()
        for table in (s.results, s.groups):
            for key in [k for k, (until, _) in table.items() if until < now]:
                del table[key]
        for key in [k for k, chord in s.chords.items() if chord.expires < now]:
            del s.chords[key]

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        now = time.time()
        found: dict[str, TaskMeta] = {}
        with self._s.lock:
            for task_id in task_ids:
                entry = self._s.results.get(task_id)
                if entry is not None and entry[0] >= now:
                    found[task_id] = TaskMeta.from_bytes(entry[1], self.codec)
        return found

    def forget(self, task_ids: Sequence[str]) -> None:
        with self._s.lock:
            for task_id in task_ids:
                self._s.results.pop(task_id, None)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._s.lock:
            while True:
                meta = self.get(task_id)
                if meta.ready:
                    return meta
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout}s")
                self._s.lock.wait(remaining)

    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        with self._s.lock:
            self._s.groups[group_id] = (time.time() + self.expires, list(task_ids))
            self._expire(1)

    def get_group(self, group_id: str) -> list[str] | None:
        with self._s.lock:
            entry = self._s.groups.get(group_id)
        return entry[1] if entry and entry[0] >= time.time() else None

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        with self._s.lock:
            chord = self._s.chords.get(group_id)
            if chord is None:
                chord = self._s.chords[group_id] = _Chord(time.time() + self.expires)
                self._expire(1)
            chord.parts.add(index)
            if len(chord.parts) >= size and not chord.fired:
                chord.fired = True
                return True
            return False


def discard_memory_backend(url: str) -> None:
    """Forget the results stored under one URL (for tests)."""
    with _STORES_LOCK:
        _STORES.pop(url, None)
