"""Confirmed publishing on RabbitMQ: one connection per process, owned by an I/O thread.

Every thread that publishes hands its messages to the I/O thread and waits for
its own publisher confirms. The I/O thread writes them at once, so the
messages of many threads are in flight on one channel together, and it
matches each confirm (``basic.ack`` or ``basic.nack``, ``multiple`` or not) to
the messages it covers by delivery tag as it arrives. Nothing holds a lock over
a round trip: a thread waits on its own messages only.

A caller learns, per message, one of: confirmed; returned (``mandatory`` and
routed nowhere: RabbitMQ acks it too, after the return); refused
(``basic.nack``); or unknown, when the connection or channel went away first.
Only the first is a success; :meth:`Link.publish <celeriac.rabbitmq.connection.Link.publish>`
turns the rest into a retry or an error, so no caller is told "confirmed" for a
message RabbitMQ did not confirm.

Why this shape, measured on one 2-core machine shared with other work (the
figures are noisy; ``bench/amqp_publish.py`` and docs/rabbitmq.md have them):
RabbitMQ confirms a persistent message once it is on disk, so one thread's
sequential ``delay()`` is bounded by the server's fsync, whichever client
sends it; what a client changes is whether several threads' messages share one
fsync. pika's ``BlockingConnection`` needs a lock around each round trip; its
``SelectConnection`` on a thread of its own (public API only) pipelines, as
aiormq on an asyncio loop does, for less code than a second client library.
Confirmed persistent publishes per second, 1 thread / 8 threads, ranges of
three runs: pika blocking behind a lock 480-910 / 650-900, this pipeline
520-730 / 1,100-2,700, py-amqp (a connection per thread) 310-920 /
1,750-2,150, aiormq 490-560 / 830-1,600, amqpstorm 85-95 / 630-760. The
hand-over to the I/O thread costs one thread about 0.15 ms a call, which the
disk flush hides.

The connection is shared by every broker object of the process with the same
parameters (counted references: the last one to close closes it). A
connection that broke is never reused: the next publish opens a new one.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions as pe
from pika.adapters.select_connection import SelectConnection

from ..exceptions import BrokerError, BrokerRefused, BrokerUnavailable
from ..urls import redact

if TYPE_CHECKING:
    from .connection import Outgoing

logger = logging.getLogger("celeriac.rabbitmq.broker")


class Publishing:
    """One caller's messages on their way: which ones RabbitMQ acked, refused or returned."""

    __slots__ = ("_done", "acked", "error", "left", "nacked", "returned")

    def __init__(self, count: int) -> None:
        self.left = count
        self.acked: set[int] = set()  # indexes in the caller's batch
        self.nacked: set[int] = set()
        self.returned: set[int] = set()  # acked too, but routed nowhere
        self.error: BaseException | None = None  # why the others have no answer
        # Set once every message has its answer, or an error came; setting it again (a late
        # answer after an error) is harmless, from whichever thread.
        self._done = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Whether every message got its answer (or an error came) within ``timeout``."""
        return self._done.wait(timeout)

    def _finish(self, error: BaseException | None = None) -> None:
        if self.error is None and error is not None:
            self.error = error
        self._done.set()


class Pipeline:
    """One connection with one confirming channel, served by a daemon thread."""

    def __init__(self, params: pika.ConnectionParameters, url: str, open_timeout: float) -> None:
        self.url = url
        self.pid = os.getpid()
        self._lock = threading.Lock()  # guards _failure and _waiting, shared with callers
        self._failure: BaseException | None = None  # set once: the pipeline is done
        self._waiting: set[Publishing] = set()  # submitted and not finished
        self._inflight: collections.deque[tuple[int, Publishing, int, Any]] = collections.deque()
        self._seq = 0  # delivery tag of the last message published on the channel
        self._channel: Any = None
        self._opened = threading.Event()
        self._conn = SelectConnection(
            params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        self._thread = threading.Thread(
            target=self._run, name="celeriac-amqp-publisher", daemon=True
        )
        self._thread.start()
        if not self._opened.wait(open_timeout):
            self.close()
            raise BrokerUnavailable(
                f"cannot connect to RabbitMQ at {redact(url)}: no answer within {open_timeout:.0f}s"
            )
        if self._failure is not None:
            raise self._failure

    @property
    def usable(self) -> bool:
        return self._failure is None and self.pid == os.getpid()

    # -- callers' side ------------------------------------------------------------------
    def submit(self, batch: Sequence[Outgoing]) -> Publishing:
        """Hand ``batch`` to the I/O thread; wait on the returned handle for the answers."""
        publishing = Publishing(len(batch))
        with self._lock:
            if self._failure is not None:
                raise _again(self._failure)
            self._waiting.add(publishing)
            # Under the lock: the loop stops only after _fail took it, so it runs this.
            self._conn.ioloop.add_callback_threadsafe(lambda: self._send(publishing, batch))
        return publishing

    def abandon(self, why: str) -> None:
        """Give the connection up (a confirm that never came): everything in flight fails."""
        self._fail(BrokerUnavailable(f"RabbitMQ connection for publishing given up: {why}"))
        with contextlib.suppress(Exception):
            self._conn.ioloop.add_callback_threadsafe(self._close_connection)

    def close(self) -> None:
        """Close the connection; waits for it (briefly) unless it broke already, since a
        broken one may wait for a server that does not answer, and nobody needs it."""
        healthy = self._failure is None
        with contextlib.suppress(Exception):
            self._conn.ioloop.add_callback_threadsafe(self._close_connection)
        if healthy and threading.current_thread() is not self._thread:
            self._thread.join(5.0)

    # -- the I/O thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._conn.ioloop.start()
        except Exception as exc:  # pragma: no cover - pika's loop does not raise by itself
            logger.warning("RabbitMQ publisher thread stopped: %s", exc)
        finally:
            self._fail(BrokerUnavailable("RabbitMQ connection for publishing closed"))
            self._inflight.clear()  # touched by this thread only
            self._opened.set()
            with contextlib.suppress(Exception):
                self._conn.ioloop.close()

    def _on_open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_selected)
        self._channel = channel

    def _on_selected(self, _frame: Any) -> None:
        self._opened.set()

    def _on_open_error(self, _conn: Any, error: BaseException | str) -> None:
        self._fail(connect_error(self.url, error))
        self._opened.set()
        self._conn.ioloop.stop()

    def _on_closed(self, _conn: Any, reason: BaseException) -> None:
        self._fail(BrokerUnavailable(f"RabbitMQ connection lost ({describe(reason)})"))
        self._opened.set()
        self._conn.ioloop.stop()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        if isinstance(reason, pe.ChannelClosedByBroker):
            error: BaseException = BrokerError(
                f"RabbitMQ refused publish: {reason.reply_code} {reason.reply_text}"
            )
        else:
            error = BrokerUnavailable(f"RabbitMQ publishing channel closed ({describe(reason)})")
        self._fail(error)  # a new pipeline takes over; this one only closes
        self._close_connection()

    def _close_connection(self) -> None:
        conn = self._conn
        if conn.is_closed:
            conn.ioloop.stop()
        elif not conn.is_closing:
            try:
                conn.close()  # also aborts one still opening; its callbacks stop the loop
            except Exception:  # pragma: no cover - a state pika does not close from
                conn.ioloop.stop()

    def _send(self, publishing: Publishing, batch: Sequence[Outgoing]) -> None:
        channel = self._channel
        if self._failure is not None or channel is None or not channel.is_open:
            publishing._finish(_again(self._failure or BrokerUnavailable("channel closed")))
            return
        for index, out in enumerate(batch):
            try:
                channel.basic_publish(
                    out.exchange, out.routing_key, out.body, out.properties, out.mandatory
                )
            except Exception as exc:  # bad properties or headers: nothing of it was sent
                publishing.left -= len(batch) - index
                self._settled(publishing, BrokerError(f"cannot publish: {describe(exc)}"))
                return
            # Counted only once sent: RabbitMQ numbers what reached it, from 1 per channel.
            self._seq += 1
            self._inflight.append((self._seq, publishing, index, out.properties.message_id))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        refused = isinstance(method, pika.spec.Basic.Nack)
        tag, inflight = method.delivery_tag, self._inflight
        if method.multiple:
            while inflight and inflight[0][0] <= tag:
                self._answer(inflight.popleft(), refused)
        elif inflight and inflight[0][0] == tag:
            self._answer(inflight.popleft(), refused)
        else:  # out of order (RabbitMQ may confirm one queue's messages before another's)
            for position, entry in enumerate(inflight):
                if entry[0] == tag:
                    del inflight[position]
                    self._answer(entry, refused)
                    break

    def _answer(self, entry: tuple[int, Publishing, int, Any], refused: bool) -> None:
        _seq, publishing, index, _message_id = entry
        (publishing.nacked if refused else publishing.acked).add(index)
        publishing.left -= 1
        self._settled(publishing)

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        # RabbitMQ sends basic.return before the basic.ack of the same message, so it
        # is still in flight: the earliest one with that id not returned yet.
        for _seq, publishing, index, message_id in self._inflight:
            if message_id == properties.message_id and index not in publishing.returned:
                publishing.returned.add(index)
                return

    def _settled(self, publishing: Publishing, error: BaseException | None = None) -> None:
        if publishing.left <= 0 or error is not None:
            if publishing.left <= 0:
                with self._lock:
                    self._waiting.discard(publishing)
            publishing._finish(error)

    def _fail(self, error: BaseException) -> None:
        """Stop taking publishes; every one without its answers fails with ``error``."""
        with self._lock:
            if self._failure is None:
                self._failure = error
            waiting, self._waiting = self._waiting, set()
        for publishing in waiting:
            publishing._finish(_again(error))


def _again(error: BaseException) -> BaseException:
    """A fresh exception of the same kind and message, for another caller to raise."""
    return type(error)(str(error))


def describe(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def connect_error(url: str, exc: BaseException | str) -> BaseException:
    """What a failed connection attempt means to the user, with what to do about it."""
    if isinstance(exc, (pe.ProbableAuthenticationError, pe.AuthenticationError)):
        return BrokerRefused(
            f"RabbitMQ refused the login of {redact(url)}: check user and password"
        )
    if isinstance(exc, pe.ProbableAccessDeniedError):
        return BrokerRefused(
            f"RabbitMQ refused access to the virtual host of {redact(url)}: create it or "
            "grant permissions (rabbitmqctl add_vhost, set_permissions)"
        )
    return BrokerUnavailable(f"cannot connect to RabbitMQ at {redact(url)}: {describe(exc)}")


# -- one pipeline per process and connection parameters ---------------------------------
_shared: dict[tuple[Any, ...], tuple[Pipeline, int]] = {}
_shared_lock = threading.Lock()


def acquire(
    key: tuple[Any, ...], params: pika.ConnectionParameters, url: str, timeout: float
) -> Pipeline:
    """The live pipeline for ``key``, opened if there is none; release it when done."""
    with _shared_lock:
        found = _shared.get(key)
        if found is not None and found[0].usable:
            _shared[key] = (found[0], found[1] + 1)
            return found[0]
    # Open outside the lock: a connection attempt can take a while, and other keys wait.
    params = copy.copy(params)  # named apart from the links: what operators see per connection
    params.client_properties = {"connection_name": f"celeriac-publisher-{os.getpid()}"}
    pipeline = Pipeline(params, url, timeout)
    with _shared_lock:
        found = _shared.get(key)
        if found is not None and found[0].usable:  # another thread opened one meanwhile
            _shared[key] = (found[0], found[1] + 1)
            extra, pipeline = pipeline, found[0]
        else:
            _shared[key] = (pipeline, 1)
            extra = None
    if extra is not None:
        extra.close()
    return pipeline


def release(key: tuple[Any, ...], pipeline: Pipeline) -> None:
    """One user fewer; the last one closes it (a broken one is closed already)."""
    if pipeline.pid != os.getpid():
        return  # the parent's, inherited by a fork: its thread and socket are the parent's
    with _shared_lock:
        found = _shared.get(key)
        if found is None or found[0] is not pipeline:
            last = True  # replaced after it broke: nobody else shares it
        else:
            last = found[1] <= 1
            if last:
                del _shared[key]
            else:
                _shared[key] = (pipeline, found[1] - 1)
    if last:
        pipeline.close()


def _after_fork_in_child() -> None:
    """The parent's publisher thread does not exist here: the child opens its own."""
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
