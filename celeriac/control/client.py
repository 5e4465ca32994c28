"""``app.control``: broadcast commands to workers and collect their replies.

The shapes are Celery's: ``app.control.ping()`` returns
``[{"w1@host": {"ok": "pong"}}, ...]``; ``app.control.inspect().active()``
returns ``{"w1@host": [...]}``, or None when no worker answered.

Replies are collected until ``timeout``, or sooner once every expected worker
answered: the named ``destination``, or else every worker whose heartbeat
says it is alive. So a healthy cluster answers in milliseconds, and only a
dead or stuck worker costs the whole timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..brokers.capabilities import Streams, require
from ..events.worker import read_presence
from ..exceptions import CapabilityUnavailable
from ..rate import parse_rate
from .pause import pause_queue, paused_queues, resume_queue
from .protocol import CONTROL_MAXLEN, CONTROL_STREAM, Command, ProtocolError, Reply, reply_stream
from .revoked import record_waiting, running_in

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.control")

DEFAULT_TIMEOUT = 1.0
Destination = Sequence[str] | str | None


class Control:
    """Remote control of an app's workers."""

    def __init__(self, app: Celeriac) -> None:
        self.app = app

    # -- the channel ------------------------------------------------------------------
    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Send ``command`` to the workers; with ``reply``, their answers as ``[{host: value}]``."""
        message = Command.create(command, arguments, destination, reply)
        streams = self._streams()
        expected = self._expected(message) if reply else set()
        streams.add(CONTROL_STREAM, [message.encode()], maxlen=CONTROL_MAXLEN)
        if not reply:
            return []
        return self._collect(message, expected, timeout, limit)

    def _streams(self) -> Streams:
        broker = self.app.broker
        return require(broker, broker.streams, "streams", "remote control")

    def _expected(self, message: Command) -> set[str]:
        if message.destination is not None:
            return set(message.destination)
        broker = self.app.broker
        if broker.flags is None:
            return set()  # no presence on this broker: wait for the whole timeout
        return {w.hostname for w in read_presence(broker) if w.alive}

    def _collect(
        self, message: Command, expected: set[str], timeout: float, limit: int | None
    ) -> list[dict[str, Any]]:
        streams = self._streams()
        stream = reply_stream(message.id)
        position = "0"
        replies: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            items = streams.read(stream, position, 1000, remaining)
            if items:
                position = items[-1][0]
            for _, data in items:
                try:
                    answer = Reply.decode(data)
                except ProtocolError:
                    continue
                if answer.hostname not in seen:
                    seen.add(answer.hostname)
                    replies.append({answer.hostname: answer.value})
            if (limit is not None and len(replies) >= limit) or (expected and expected <= seen):
                break
        return replies

    def inspect(self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT) -> Inspect:
        """Queries: ``.active()``, ``.reserved()``, ``.stats()``, ``.registered()``..."""
        return Inspect(self, destination, timeout)

    def _action(
        self,
        command: str,
        arguments: dict[str, Any],
        destination: Destination,
        reply: bool,
        timeout: float,
    ) -> list[dict[str, Any]]:
        return self.broadcast(command, arguments, destination, reply, timeout)

    # -- actions -----------------------------------------------------------------------
    def ping(
        self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        return self.broadcast("ping", destination=destination, reply=True, timeout=timeout)

    def revoke(
        self, task_id: str | Sequence[str], terminate: bool = False, signal: str = "SIGTERM"
    ) -> None:
        """Revoke durably in the broker and tell every worker; ``terminate`` stops it if it runs."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        self.app.revoke(ids, terminate=terminate, signal=signal)  # calls on_revoke below

    def terminate(self, task_id: str | Sequence[str], signal: str = "SIGTERM") -> None:
        self.revoke(task_id, terminate=True, signal=signal)

    def on_revoke(
        self,
        task_ids: Sequence[str],
        terminate: bool,
        signal: str,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Tell the workers (``app.revoke`` already stored the revocation in the broker).

        The live workers answer with the tasks they run; the others of ``task_ids``
        wait, and are recorded REVOKED in the backend now (see :mod:`.revoked`).
        """
        arguments = {"task_ids": list(task_ids), "terminate": terminate, "signal": signal}
        broker = self.app.broker
        try:
            alive = (
                {w.hostname for w in read_presence(broker) if w.alive}
                if broker.flags is not None
                else None
            )
            ask = reply or bool(alive)
            replies = self.broadcast("revoke", arguments, reply=ask, timeout=timeout)
        except CapabilityUnavailable:  # no control channel on this broker: the durable part holds
            logger.debug("broker has no control channel; revocation is stored only")
            return []
        answered = {host for answer in replies for host in answer}
        if alive is not None and alive <= answered:  # every live worker said what it runs
            record_waiting(self.app, task_ids, running_in(replies))
        return replies

    def rate_limit(
        self,
        task_name: str,
        rate_limit: str | float | None,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        parse_rate(rate_limit)  # refuse a bad rate here, not on every worker
        return self._action(
            "rate_limit",
            {"task_name": task_name, "rate_limit": rate_limit},
            destination,
            reply,
            timeout,
        )

    def time_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        return self._action(
            "time_limit",
            {"task_name": task_name, "soft": soft, "hard": hard},
            destination,
            reply,
            timeout,
        )

    def pool_grow(
        self,
        n: int = 1,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        return self._action("pool_grow", {"n": n}, destination, reply, timeout)

    def pool_shrink(
        self,
        n: int = 1,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        return self._action("pool_shrink", {"n": n}, destination, reply, timeout)

    def add_consumer(
        self,
        queue: str,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        return self._action("add_consumer", {"queue": queue}, destination, reply, timeout)

    def cancel_consumer(
        self,
        queue: str,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        return self._action("cancel_consumer", {"queue": queue}, destination, reply, timeout)

    def shutdown(
        self, destination: Destination = None, reply: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Warm shutdown: workers finish their running tasks and give back the rest."""
        return self._action("shutdown", {}, destination, reply, timeout)

    def enable_events(self, destination: Destination = None) -> None:
        self.broadcast("enable_events", destination=destination)

    def disable_events(self, destination: Destination = None) -> None:
        self.broadcast("disable_events", destination=destination)

    # -- queues: cluster-wide state in the broker, no worker needs to answer ------------
    def pause(self, queue: str, by: str = "") -> None:
        """Stop every worker fetching from ``queue`` (durable; see :mod:`.pause`)."""
        pause_queue(self.app.broker, queue, by)

    def resume(self, queue: str) -> bool:
        """Let workers fetch from ``queue`` again; False when it was not paused."""
        return resume_queue(self.app.broker, queue)

    def paused(self) -> dict[str, dict[str, Any]]:
        """The paused queues: name -> {"since": ..., "by": ...}."""
        return paused_queues(self.app.broker)


class Inspect:
    """Read-only queries, answered by each worker: ``{hostname: answer}`` or None."""

    def __init__(self, control: Control, destination: Destination, timeout: float) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout

    def _request(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        replies = self.control.broadcast(
            command, arguments, self.destination, reply=True, timeout=self.timeout
        )
        merged = {host: value for reply in replies for host, value in reply.items()}
        return merged or None

    def ping(self) -> dict[str, Any] | None:
        return self._request("ping")

    def active(self) -> dict[str, Any] | None:
        return self._request("active")

    def reserved(self) -> dict[str, Any] | None:
        return self._request("reserved")

    def scheduled(self) -> dict[str, Any] | None:
        return self._request("scheduled")

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        """Task names per worker; with items (``"rate_limit"``, ``"time_limit"``...), Celery's
        ``"name [rate_limit=10/m]"`` lines."""
        if taskinfoitems:
            return self._request("registered", taskinfoitems=list(taskinfoitems))
        return self._request("registered")

    def stats(self) -> dict[str, Any] | None:
        return self._request("stats")

    def active_queues(self) -> dict[str, Any] | None:
        return self._request("active_queues")

    def conf(self) -> dict[str, Any] | None:
        return self._request("conf")

    def revoked(self) -> dict[str, Any] | None:
        return self._request("revoked")

    def query(self, what: str) -> dict[str, Any] | None:
        """Any query by name (``"active"``, ``"stats"``...)."""
        return self._request(what)
