"""One pika connection to RabbitMQ: confirmed publishing, error translation, heartbeats.

pika's ``BlockingConnection`` is not thread-safe, and it only answers
RabbitMQ's heartbeats while some call is inside it. A worker that runs a long
task between two fetches would therefore miss heartbeats, RabbitMQ would close
the connection and hand the running task to someone else. So each link owns a
lock that every caller takes, and a small keeper thread that, whenever the
link is idle, lets pika answer heartbeats. The heartbeat timeout is the lease:
a worker that loses power has its messages returned within about one lease.

Confirmed publishes do not go through this connection: they go through the
process's publishing pipeline (:mod:`celeriac.rabbitmq.pipeline`), a
connection of its own served by an I/O thread, so a thread waiting for its
confirms neither holds the link's lock nor waits behind another thread's round
trip. Only unconfirmed publishes (``publish_confirm`` off) use this one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, MutableSequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import quote, urlsplit

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..exceptions import BrokerError, BrokerUnavailable, ConfigurationError
from ..urls import parse_url, redact
from . import pipeline as _pipeline
from .pipeline import Pipeline, connect_error, describe

logger = logging.getLogger("celeriac.rabbitmq.broker")

_links = itertools.count(1)
T = TypeVar("T")

# pika logs every refused connection and every drop at ERROR, with tracebacks, on
# top of celeriac's own one-line warning. Quiet it unless the user set its level.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.CRITICAL)


class Retrying(Protocol):
    """Runs ``op`` under the link's lock, retried over a lost connection within a bound
    (the broker's ``_retrying``): how the broker's capabilities call RabbitMQ."""

    def __call__(self, what: str, op: Callable[[], T]) -> T: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool = False


def connection_parameters(url: str, heartbeat: int, connect_timeout: float) -> pika.URLParameters:
    """pika parameters for ``amqp://user:pass@host:port/vhost`` or ``amqps://``.

    Read as kombu reads it (:func:`celeriac.urls.parse_url`): a missing user or
    password is ``guest``, a missing host ``localhost``; the virtual host is the
    path, URL-quoted, and an empty path, ``/`` or ``//`` (kombu's spelling) all
    mean ``/``. ``pyamqp://`` and ``librabbitmq://`` mean ``amqp://``.
    """
    parsed = parse_url(url)
    if parsed.scheme not in ("amqp", "amqps"):
        raise ConfigurationError(f"{redact(url)!r} is not an amqp:// or amqps:// URL")
    # pika reads only complete URLs (a user without a password is a TypeError inside
    # urllib): give it one with every part spelled out.
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else quote(parsed.hostname)
    complete = (
        f"{parsed.scheme}://{quote(parsed.username or '', safe='')}:"
        f"{quote(parsed.password or '', safe='')}@{host}:{parsed.port}/"
        f"{quote(parsed.virtual_host, safe='')}"
    )
    query = urlsplit(url).query
    try:
        params = pika.URLParameters(f"{complete}?{query}" if query else complete)
    except ValueError as exc:
        raise ConfigurationError(f"bad RabbitMQ URL {redact(url)!r}: {exc}") from exc
    given = parsed.query
    if "heartbeat" not in given:
        params.heartbeat = heartbeat
    if "connection_attempts" not in given:
        params.connection_attempts = 1
    if "socket_timeout" not in given:
        params.socket_timeout = connect_timeout
    if "blocked_connection_timeout" not in given:
        params.blocked_connection_timeout = 60.0
    return params


class Link:
    """A lazily opened connection with a confirming publish channel and an admin channel.

    ``generation`` grows with every new connection: delivery tags and consumer
    channels of an older generation are gone (RabbitMQ requeued their messages).
    """

    def __init__(
        self, url: str, *, heartbeat: int, connect_timeout: float, confirm_timeout: float
    ) -> None:
        self.url = url
        self.params = connection_parameters(url, heartbeat, connect_timeout)
        self.params.client_properties = {"connection_name": f"celeriac-{next(_links)}"}
        self.confirm_timeout = confirm_timeout
        self.lock = threading.RLock()
        self.generation = 0
        self.conn: BlockingConnection | None = None
        self.lost: str | None = None  # why the last connection broke, until reported
        self.on_reset: list[Callable[[], None]] = []
        self.before_close: list[Callable[[BlockingConnection], None]] = []
        self._admin: BlockingChannel | None = None
        self._plain: BlockingChannel | None = None  # publishes without confirms
        # Confirmed publishes: the process's pipeline for these parameters (shared).
        self._pipeline_key = (url, self.params.heartbeat, self.params.socket_timeout)
        self._pipeline: Pipeline | None = None
        self._pipeline_lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_io = time.monotonic()
        self._keep_every = max(0.5, heartbeat / 4) if heartbeat else 0.0

    # -- connecting --------------------------------------------------------------
    def ensure(self) -> BlockingConnection:
        """The open connection, connecting if needed; reports a lost one first."""
        if self.lost is not None:
            lost, self.lost = self.lost, None
            raise BrokerUnavailable(f"connection to RabbitMQ was lost: {lost}")
        if self.conn is not None and self.conn.is_open:
            return self.conn
        self.reset(None)
        try:
            self.conn = BlockingConnection(self.params)
        except (pe.AMQPError, OSError) as exc:
            raise connect_error(self.url, exc) from exc
        self.generation += 1
        self._last_io = time.monotonic()
        self._start_keeper()
        return self.conn

    def reset(self, cause: BaseException | None) -> None:
        """Forget the connection (closing it if it is still open) and everything on it."""
        conn, self.conn = self.conn, None
        self._admin = self._plain = None
        if cause is not None and conn is not None:
            logger.warning("RabbitMQ connection lost (%s); reconnecting", describe(cause))
        if conn is not None and conn.is_open:
            for before in self.before_close:
                with contextlib.suppress(Exception):
                    before(conn)
            with contextlib.suppress(Exception):
                conn.close()
        for forget in self.on_reset:
            forget()

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            self.reset(None)
        with self._pipeline_lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            _pipeline.release(self._pipeline_key, pipeline)

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Translate pika's exceptions: a lost connection is ``BrokerUnavailable``."""
        try:
            yield
            self._last_io = time.monotonic()
        except pe.ChannelClosedByBroker as exc:
            self._drop_closed_channels()
            raise BrokerError(
                f"RabbitMQ refused {what}: {exc.reply_code} {exc.reply_text}"
            ) from exc
        except (pe.AMQPError, OSError) as exc:
            open_ = self.conn is not None and self.conn.is_open
            if open_ and not isinstance(exc, (pe.AMQPConnectionError, OSError)):
                self._drop_closed_channels()  # a channel or encoding error: the link lives
                raise BrokerError(f"{what} failed on RabbitMQ: {describe(exc)}") from exc
            self.reset(exc)
            raise BrokerUnavailable(f"{what}: RabbitMQ connection lost ({describe(exc)})") from exc

    def _drop_closed_channels(self) -> None:
        if self._admin is not None and not self._admin.is_open:
            self._admin = None
        if self._plain is not None and not self._plain.is_open:
            self._plain = None

    # -- channels ----------------------------------------------------------------
    def admin(self) -> BlockingChannel:
        """A channel for declarations and inspection (reopened after a channel error)."""
        if self._admin is None or not self._admin.is_open:
            self._admin = self.ensure().channel()
        return self._admin

    def channel(self) -> BlockingChannel:
        """A new channel on the current connection."""
        return self.ensure().channel()

    def publisher(self) -> Pipeline:
        """The process's confirming pipeline for this link's parameters, opened if needed."""
        with self._pipeline_lock:
            pipeline = self._pipeline
            if pipeline is not None and pipeline.usable:
                return pipeline
            self._pipeline = None
            if pipeline is not None:  # it broke (every caller of it was told): let it go
                _pipeline.release(self._pipeline_key, pipeline)
            self._pipeline = _pipeline.acquire(
                self._pipeline_key, self.params, self.url, float(self.params.socket_timeout or 10)
            )
            return self._pipeline

    # -- publishing ----------------------------------------------------------------
    def publish(self, batch: MutableSequence[Outgoing], confirm: bool = True) -> list[Outgoing]:
        """Publish and wait until RabbitMQ confirmed all; on failure ``batch`` keeps the rest.

        Safe from any thread without the link's lock: confirmed publishes go
        through the process's pipeline, and each caller waits for its own
        messages only. Returns the ``mandatory`` messages RabbitMQ routed
        nowhere (it confirms those too, after sending them back).

        When the connection breaks or no confirm comes within
        ``confirm_timeout``, raises ``BrokerUnavailable`` with ``batch`` cut
        down to the messages that were not confirmed, so a retry sends only
        those (they may have arrived: at least once). Messages RabbitMQ refused
        (``basic.nack``) stay in ``batch`` and raise ``BrokerError``.

        Without ``confirm``, return once the messages are written to the
        connection (RabbitMQ may still lose them, and ``mandatory`` is not
        asked: a message nothing routes is dropped); that path needs the lock.
        """
        if not batch:
            return []
        if not confirm:
            self._publish_unconfirmed(batch)
            return []
        pipeline = self.publisher()
        publishing = pipeline.submit(batch)
        if not publishing.wait(self.confirm_timeout):
            pipeline.abandon(f"no publisher confirm within {self.confirm_timeout:.0f}s")
            publishing.wait(1.0)  # the pipeline fails it now, unless the answers came meanwhile
        returned = [batch[index] for index in sorted(publishing.returned)]
        acked = publishing.acked
        if len(acked) < len(batch):
            batch[:] = [out for index, out in enumerate(batch) if index not in acked]
            if publishing.error is not None:
                raise publishing.error
            if publishing.nacked:
                raise BrokerError(
                    f"RabbitMQ refused {len(publishing.nacked)} message(s) (basic.nack: a queue "
                    "full with x-overflow=reject-publish, or a server error); they were not "
                    "enqueued: make room or publish them again"
                )
            raise BrokerUnavailable(
                f"no publisher confirm within {self.confirm_timeout:.0f}s; RabbitMQ may not "
                "have the messages"
            )
        batch[:] = []
        return returned

    def _publish_unconfirmed(self, batch: MutableSequence[Outgoing]) -> None:
        if self._plain is None or not self._plain.is_open:
            self._plain = self.ensure().channel()
        written = 0
        try:
            for out in batch:
                self._plain.basic_publish(out.exchange, out.routing_key, out.body, out.properties)
                written += 1
        finally:
            del batch[:written]

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Let pika work until ``done()``; a connection that stays silent is broken.

        A callback of an asynchronous channel that can make ``done()`` true must
        call :meth:`poke`, or the wait notices only at its next slice.
        """
        run_until(self.ensure(), done, timeout)
        if not done():
            raise pe.StreamLostError(f"no answer from RabbitMQ within {timeout:.0f}s ({what})")

    def poke(self) -> None:
        """Wake a :meth:`wait` up to look at ``done()`` again (from pika's callbacks)."""
        if self.conn is not None:
            wake(self.conn)

    # -- heartbeats ------------------------------------------------------------------
    def _start_keeper(self) -> None:
        if not self._keep_every or (self._keeper is not None and self._keeper.is_alive()):
            return
        self._keeper = threading.Thread(
            target=_keep,
            args=(weakref.ref(self), self._stop, self._keep_every),
            name="celeriac-amqp-heartbeat",
            daemon=True,
        )
        self._keeper.start()

    def service(self) -> None:
        """Answer heartbeats and take in what arrived, if nobody else is using the link."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            conn = self.conn
            if conn is None or not conn.is_open:
                return
            if time.monotonic() - self._last_io < self._keep_every:
                return
            try:
                conn.process_data_events(0)
                self._last_io = time.monotonic()
            except Exception as exc:  # reported to the owner's next call
                self.lost = describe(exc)
                self.reset(exc)
        finally:
            self.lock.release()


def _nothing() -> None:
    """A callback that only wakes pika's loop up."""


def wake(conn: BlockingConnection) -> None:
    """Make a ``process_data_events`` running on ``conn`` return (from its callbacks)."""
    if conn.is_open:
        conn.add_callback_threadsafe(_nothing)


_SLICE = 0.05  # longest a wait goes without looking at done() when nothing poked it


def run_until(conn: BlockingConnection, done: Callable[[], bool], seconds: float) -> None:
    """Let pika work until ``done()`` or ``seconds`` passed: a wait on the socket, no sleep.

    ``process_data_events`` returns as soon as a callback added with
    ``add_callback_threadsafe`` ran (see :meth:`Link.poke`), else after its slice.
    """
    if done() or seconds <= 0:
        conn.process_data_events(0)
        return
    deadline = time.monotonic() + seconds
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not conn.is_open:
            return
        conn.process_data_events(time_limit=min(remaining, _SLICE))


def _keep(ref: weakref.ref[Link], stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        link = ref()
        if link is None:
            return
        try:
            link.service()
        except Exception:  # a keeper must never die noisily
            logger.debug("heartbeat keeper error", exc_info=True)
        del link


def heartbeat_for(lease_seconds: float) -> int:
    """The AMQP heartbeat timeout that matches a lease (whole seconds, at least 5)."""
    return max(5, math.ceil(lease_seconds))
