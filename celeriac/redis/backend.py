"""The Redis result backend: records with a time to live, waiters told by pub/sub.

Keys (``P`` is ``global_keyprefix``, default ``celeriac``, settable in the
URL's query like every Redis option)::

    P:result:{<task id>}            the task's record, expiring after result_expires
    P:result:{<task id>}:waiters    channels of the processes waiting for it (short TTL)
    P:group:{<group id>}            a group's member ids, expiring with the results
    P:chord:{<group id>}:done       indexes of the finished header tasks of a chord
    P:chord:{<group id>}:fired      set once, by the call that completed the chord

How ``wait`` blocks without polling, and why many waiters share one
connection: each backend (one per process that uses it) has one pub/sub
connection subscribed to its own channel ``P:waiter:<random>``. A waiting
thread adds that channel to the task's waiters set and reads the record in
one atomic script; if the record is not ready yet, the script that stores it
later publishes the record itself to every channel in the set, and whichever
waiter is reading the connection hands it to the thread waiting for it
(``waiters.py``). So a thousand threads (or ``aget`` calls) waiting in
one process use one connection between them, and a result reaches its waiter
without another read. As a safety net for messages lost while the connection was down, a
waiter looks again every ``RECHECK_SECONDS`` and whenever the connection
comes back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..backends.base import Backend, TaskMeta
from ..exceptions import BackendError, TimeoutError
from ..serialization import Codec
from .client import (
    RedisError,
    RedisTarget,
    connect,
    disconnect,
    is_unavailable,
    may_share,
    parse_url,
    run_id,
    translate,
)
from .scripts import Batch, HeldLink, PooledLink, script
from .waiters import Slot, WaitHub

logger = logging.getLogger("celeriac.redis")

RECHECK_SECONDS = 10.0
_STORE, _WATCH, _CHORD = script("result_store"), script("result_watch"), script("chord_part")


class RedisBackend(Backend):
    """Task records in Redis, Redis Sentinel or Redis Cluster."""

    def __init__(
        self,
        codec: Codec,
        url: str = "redis://localhost:6379/0",
        expires: float = 86400.0,
        **options: Any,
    ) -> None:
        super().__init__(codec)
        self.url = url
        self.expires = expires
        self.target = parse_url(url, options)
        self.client = connect(self.target)
        cluster = self.target.kind == "cluster"
        self.link = PooledLink(self.client) if cluster else HeldLink(self.client.connection_pool)
        self.prefix = self.target.prefix
        self._hub: WaitHub | None = None
        self._hub_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.target.url}>"

    def _error(self, exc: BaseException) -> Exception:
        return translate(exc, self.target, "Redis result backend", BackendError, BackendError)

    def _keys(self, task_id: str) -> tuple[str, str]:
        key = f"{self.prefix}:result:{{{task_id}}}"
        return key, key + ":waiters"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.expires * 1000))

    # -- storing -------------------------------------------------------------------
    def same_server(
        self, target: RedisTarget, their_run_id: Callable[[], str] | None = None
    ) -> bool:
        """Whether a connection to ``target`` can also write this backend's records.

        The same URL host, port and login say so at once. Given ``their_run_id``
        (the server id as ``target``'s side sees it), a host spelled another way
        (``localhost``, ``127.0.0.1``, a DNS name) is recognised by comparing
        server ids: one ``INFO`` each (a ``RedisError`` when asking fails).
        """
        if target.server == self.target.server:
            return True
        if their_run_id is None or not may_share(target, self.target):
            return False
        return their_run_id() == run_id(self.client)

    def store_into(
        self, batch: Batch, metas: Sequence[TaskMeta], from_db: int | None = None
    ) -> None:
        """Add the writes of these records to a batch sent on a connection to ``from_db``."""
        db = "" if from_db is None or from_db == self.target.db else str(self.target.db)
        ttl = self._ttl_ms
        for meta in metas:
            batch.script(
                _STORE,
                self._keys(meta.task_id),
                (meta.to_bytes(self.codec), ttl, "1" if meta.ready else "0", meta.task_id, db),
            )

    def store(self, metas: Sequence[TaskMeta]) -> None:
        if not metas:
            return
        batch = Batch()
        self.store_into(batch, metas)
        try:
            self.link.run(batch)
        except RedisError as exc:
            raise self._error(exc) from exc

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        if not task_ids:
            return {}
        batch = Batch()
        for task_id in task_ids:
            batch.command("GET", self._keys(task_id)[0])
        try:
            found = self.link.run(batch)
        except RedisError as exc:
            raise self._error(exc) from exc
        return {
            task_id: TaskMeta.from_bytes(data, self.codec)
            for task_id, data in zip(task_ids, found, strict=True)
            if data is not None
        }

    def forget(self, task_ids: Sequence[str]) -> None:
        batch = Batch()
        for task_id in task_ids:
            batch.command("DEL", self._keys(task_id)[0])
        try:
            if batch:
                self.link.run(batch)
        except RedisError as exc:
            raise self._error(exc) from exc

    # -- waiting -------------------------------------------------------------------
    def _wait_hub(self) -> WaitHub:
        with self._hub_lock:
            if self._hub is None or self._hub.pid != os.getpid():
                self._hub = WaitHub(self.client, self.prefix)
            return self._hub

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        """Block until the task's record is ready (see the module docstring)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            hub = self._wait_hub()
            slot = hub.expect(task_id)
            try:
                return self._wait(hub, slot, task_id, deadline, timeout)
            finally:
                hub.forget(task_id, slot)
        except RedisError as exc:
            raise self._error(exc) from exc

    def _wait(
        self,
        hub: WaitHub,
        slot: Slot,
        task_id: str,
        deadline: float | None,
        timeout: float | None,
    ) -> TaskMeta:
        keys = self._keys(task_id)
        ttl = int((RECHECK_SECONDS * 3) * 1000)
        while True:
            pause = RECHECK_SECONDS
            try:
                data = self.link.call(_WATCH, keys, (hub.channel, ttl))
            except RedisError as exc:
                # an outage is not an answer: the hub wakes us when the server is back
                if not is_unavailable(exc) or _left(deadline) <= 0:
                    raise
                data, pause = None, 1.0
            while True:
                meta = self._ready(data)
                if meta is not None:
                    return meta
                remaining = min(_left(deadline), pause)
                if remaining <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout}s")
                data = hub.wait(slot, remaining)
                if data is None:
                    break  # look again, renewing the request to be told

    def _ready(self, data: bytes | None) -> TaskMeta | None:
        if data is None:
            return None
        meta = TaskMeta.from_bytes(data, self.codec)
        return meta if meta.ready else None

    # -- groups and chords ---------------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        try:
            self.client.set(
                f"{self.prefix}:group:{{{group_id}}}",
                self.codec.dumps({"ids": list(task_ids)}),
                px=self._ttl_ms,
            )
        except RedisError as exc:
            raise self._error(exc) from exc

    def get_group(self, group_id: str) -> list[str] | None:
        try:
            data = self.client.get(f"{self.prefix}:group:{{{group_id}}}")
        except RedisError as exc:
            raise self._error(exc) from exc
        return None if data is None else list(self.codec.loads(data)["ids"])

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        key = f"{self.prefix}:chord:{{{group_id}}}"
        try:
            fired = self.link.call(
                _CHORD, (key + ":done", key + ":fired"), (index, size, self._ttl_ms)
            )
        except RedisError as exc:
            raise self._error(exc) from exc
        return bool(fired)

    def close(self) -> None:
        if self._hub is not None and self._hub.pid == os.getpid():
            self._hub.close()
        self._hub = None
        self.link.close()
        disconnect(self.client)


def _left(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.monotonic()


__all__ = ["RedisBackend"]
