"""``rpc://`` results: sent back to the client that sent the task, over RabbitMQ.

As Celery's rpc backend: nothing is stored. Each client process declares its own
reply queue (exclusive, deleted with its connection) when it first sends a task;
the task's message names that queue (``reply_to``), and the worker publishes the
task's states to it (``update_state`` progress, then the outcome). ``get()``,
``ready()``, ``state`` and groups read them. Its documented limits are Celery's:

* only the client that sent a task sees its result, and only while its
  connection lives (a result sent to a queue that is gone is dropped);
* nothing is kept for other processes: ``GroupResult.save/restore`` and chords,
  which need results a worker can read, are refused with an error that says to
  use a result backend that stores (``redis://``, ``db+...``).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..backends import rpc_needs_rabbitmq
from ..backends.base import Backend, TaskMeta
from ..brokers import broker_class
from ..exceptions import BackendError, ConfigurationError, TimeoutError
from ..urls import redact
from .connection import connection_parameters
from .pipeline import describe

if TYPE_CHECKING:
    from ..config import Settings
    from ..serialization import Codec

#: Reply queues are named ``celeriac.rpc.<random>``.
REPLY_PREFIX = "celeriac.rpc."
_NO_STATE = (
    "rpc:// results go only to the client that sent the task and are kept nowhere, so {what} "
    "cannot work: use a result backend that stores results (redis://, db+postgresql://...)"
)


class RPCBackend(Backend):
    """Results as messages to the sending client's reply queue."""

    replies_to_sender = True
    stores_results = False  # nothing another process (a chord's last worker) could read

    def __init__(
        self, codec: Codec, url: str = "rpc://", expires: float = 86400.0, broker_url: str = ""
    ) -> None:
        super().__init__(codec)
        self.url = url
        self._expires_ms = str(max(1, int(expires * 1000)))
        self._params = connection_parameters(broker_url, heartbeat=60, connect_timeout=4.0)
        self._broker_url = broker_url
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._queue: str | None = None
        self._results: dict[str, TaskMeta] = {}
        self._lock = threading.Lock()

    @classmethod
    def options_from(cls, conf: Settings) -> dict[str, Any]:
        return {"broker_url": check_rpc_broker(conf.broker_url)}

    # -- the connection and this client's reply queue -------------------------------
    def _open(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        try:
            self._connection = BlockingConnection(self._params)
            self._channel = self._connection.channel()
        except (pe.AMQPError, OSError) as exc:
            raise BackendError(
                f"rpc:// results: cannot connect to RabbitMQ at {redact(self._broker_url)}: "
                f"{describe(exc)}"
            ) from exc
        self._queue = None  # an exclusive queue dies with its connection
        return self._channel

    @property
    def reply_to(self) -> str:
        """This client's reply queue, declared on first use."""
        with self._lock:
            channel = self._open()
            if self._queue is None:
                name = f"{REPLY_PREFIX}{uuid.uuid4().hex}"
                channel.queue_declare(name, exclusive=True, auto_delete=True)
                channel.basic_consume(name, self._on_reply, auto_ack=True)
                self._queue = name
            return self._queue

    def _on_reply(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        meta = TaskMeta.from_bytes(body, self.codec)
        known = self._results.get(meta.task_id)
        if known is None or not known.ready:  # an outcome is not undone by a late progress
            self._results[meta.task_id] = meta

    def _drain(self, seconds: float) -> None:
        """Take what replies have arrived, waiting up to ``seconds`` for one."""
        if self._queue is None:
            return  # this process sent nothing: nothing can come back to it
        assert self._connection is not None
        try:
            self._connection.process_data_events(time_limit=seconds)
        except (pe.AMQPError, OSError) as exc:
            self._channel = None
            raise BackendError(
                f"rpc:// results: the connection to RabbitMQ was lost, and with it the "
                f"results on their way to this client: {describe(exc)}"
            ) from exc

    # -- the result contract ------------------------------------------------------------
    def store(self, metas: Sequence[TaskMeta]) -> None:
        """Send each state to the reply queue its task's message named."""
        replies = [m for m in metas if m.reply_to]
        if not replies:
            return
        with self._lock:
            channel = self._open()
            for meta in replies:
                channel.basic_publish(
                    "",
                    str(meta.reply_to),
                    meta.to_bytes(self.codec),
                    pika.BasicProperties(
                        correlation_id=meta.task_id,
                        delivery_mode=1,
                        expiration=self._expires_ms,
                    ),
                )

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        with self._lock:
            self._drain(0)
            return {i: self._results[i] for i in task_ids if i in self._results}

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                meta = self._results.get(task_id)
                if meta is not None and meta.ready:
                    return meta
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout}s")
                if self._queue is None:
                    raise ConfigurationError(
                        f"task {task_id} was not sent from this thread (rpc:// results come "
                        "back to the connection that sent the task): "
                        + _NO_STATE.format(what="reading its result here")
                    )
                self._drain(min(remaining, 1.0))

    def forget(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            self._results.pop(task_id, None)

    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        raise ConfigurationError(_NO_STATE.format(what="saving a group or sending a chord"))

    def get_group(self, group_id: str) -> list[str] | None:
        raise ConfigurationError(_NO_STATE.format(what="restoring a group"))

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        raise ConfigurationError(_NO_STATE.format(what="a chord"))

    def close(self) -> None:
        connection, self._connection, self._channel, self._queue = (
            self._connection,
            None,
            None,
            None,
        )
        if connection is not None and connection.is_open:
            with contextlib.suppress(pe.AMQPError, OSError):
                connection.close()


def check_rpc_broker(broker_url: str | None) -> str:
    """The broker URL rpc:// results travel over, or why it cannot."""
    if not broker_url or not broker_class(broker_url).carries_replies:
        raise ConfigurationError(rpc_needs_rabbitmq(broker_url))
    return broker_url
