"""Waiting for results on Redis: one pub/sub connection per process, read by its waiters.

A waiting thread names the hub's channel in its task's waiters set (see
``redis.py``); the script that stores the record publishes the record there.
Reading that connection is a role, not a thread: the first waiter to find the
role free reads the connection and hands each record to the thread waiting
for it; when its own record arrives, or its time is up, it passes the role on
to another waiter. So the common case, one ``get()`` at a time, reads its own
result off the socket with no hand-off between threads (a hand-off costs about
60 µs here, a fifth of a whole round trip), and any number of waiters
(``aget`` runs ``get`` in a thread) still share one connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from typing import Any

from ..backoff import Backoff


class Slot:
    """One waiting thread: given its record's bytes, told to look again, or to read."""

    __slots__ = ("data", "event", "recheck")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.data: bytes | None = None
        self.recheck = False


class WaitHub:
    """One pub/sub connection shared by every waiter of a backend in one process."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.channel = f"{prefix}:waiter:{uuid.uuid4().hex}"
        self.pid = os.getpid()
        self._waiting: dict[str, list[Slot]] = {}
        self._lock = threading.Lock()  # guards _waiting and every slot's fields
        self._reading = threading.Lock()  # held by the waiter reading the connection
        self._closed = False
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(self.channel)
        # The server must have the subscription before any waiter names the
        # channel, or a record stored in between would be announced to no one.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "subscribe":
                break

    def expect(self, task_id: str) -> Slot:
        slot = Slot()
        with self._lock:
            self._waiting.setdefault(task_id, []).append(slot)
        return slot

    def forget(self, task_id: str, slot: Slot) -> None:
        with self._lock:
            slots = self._waiting.get(task_id, [])
            if slot in slots:
                slots.remove(slot)
            if not slots:
                self._waiting.pop(task_id, None)

    def wait(self, slot: Slot, seconds: float) -> bytes | None:
        """The record announced for ``slot`` within ``seconds``; None when the time is
        up or the connection came back (either way: look again)."""
        end = time.monotonic() + seconds
        while True:
            answer = self._answer(slot)
            if answer is not None:
                return answer[0]
            left = end - time.monotonic()
            if left <= 0:
                return None
            if self._reading.acquire(blocking=False):
                try:
                    self._read(slot, end)
                finally:
                    self._reading.release()
                    self._pass_on(slot)
            else:
                slot.event.wait(left)  # a record, a recheck, or the reading role

    def _answer(self, slot: Slot) -> tuple[bytes | None] | None:
        """What the slot was given, consumed: (record,) or (None,) to look again."""
        with self._lock:
            if not slot.event.is_set():
                return None
            slot.event.clear()
            data, slot.data = slot.data, None
            if data is not None:
                return (data,)
            if slot.recheck:
                slot.recheck = False
                return (None,)
            return None  # told to take the reading role: the caller tries

    def _read(self, slot: Slot, end: float) -> None:
        pauses = Backoff(0.05, cap=1.0)
        while not self._closed and not slot.event.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                message = self._pubsub.get_message(timeout=left)
            except Exception:  # the connection dropped; reading again reconnects
                pauses.sleep(left)
                continue
            pauses.reset()
            if message is None:
                continue
            if message["type"] == "message":
                self._dispatch(message["data"])
            elif message["type"] == "subscribe":  # subscribed again after reconnecting
                self._recheck_all()

    def _dispatch(self, payload: bytes) -> None:
        length, _, rest = payload.partition(b":")
        size = int(length)
        task_id, data = rest[:size].decode(), rest[size:]
        with self._lock:
            for slot in self._waiting.get(task_id, ()):
                slot.data = data
                slot.event.set()

    def _recheck_all(self) -> None:
        with self._lock:
            for slots in self._waiting.values():
                for slot in slots:
                    slot.recheck = True
                    slot.event.set()

    def _pass_on(self, leaving: Slot) -> None:
        """Wake one other waiter that has nothing yet, to take the reading role."""
        with self._lock:
            for slots in self._waiting.values():
                for slot in slots:
                    if slot is not leaving and not slot.event.is_set():
                        slot.event.set()
                        return

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):  # a broken connection must not fail the caller
            self._pubsub.close()


__all__ = ["Slot", "WaitHub"]
