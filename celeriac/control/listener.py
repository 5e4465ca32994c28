"""The thread that reads the control stream inside a worker.

It starts at the stream's end (commands sent before the worker started are not
its business), remembers the position of the last command it handled, and
keeps it across broker outages, so commands sent meanwhile are handled when
the broker is back unless their time to live ran out.

A prefork child's follower starts instead where its supervisor's listener had
got to when it forked the child (:func:`handled_position`): every command up to
there is already applied in the memory the child inherited, and every later
one the follower reads itself. So a command sent while a child boots (right
after a ``pool_grow``, say) reaches it; starting from the stream's end would
miss what was sent between the fork and the follower's first read.

Two modes: with a :class:`~celeriac.control.handler.ControlHandler` (the worker's
supervisor) it runs every command addressed to the worker and replies; as a
follower (a prefork child) it only applies the commands that change how tasks
run in this process (:func:`~celeriac.control.handler.apply_local`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..brokers.capabilities import Streams, require
from ..events.forksafe import guarded
from ..exceptions import CapabilityUnavailable
from .handler import ControlHandler, apply_local
from .protocol import (
    CONTROL_MAXLEN,
    CONTROL_STREAM,
    REPLY_MAXLEN,
    Command,
    ProtocolError,
    Reply,
    reply_stream,
)

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.control")

READ_TIMEOUT = 1.0  # seconds a read blocks when nothing comes
WAKE = "_wake"  # a command a stopping listener sends itself, to end its blocking read
_BACKOFF = (0.5, 1.0, 2.0, 5.0)
#: commands after which the worker's heartbeat is sent at once, so status is current
CHANGES = frozenset({"pool_grow", "pool_shrink", "add_consumer", "cancel_consumer"})


#: worker hostname -> the stream position up to which this process has handled every
#: command (its effects are in memory). Written by the listener that has a handler, only
#: after a command is handled, so a process forked at any moment inherits a position
#: that matches the state it inherits.
_HANDLED: dict[str, str] = {}


def handled_position(hostname: str) -> str | None:
    """Where this process's listener for ``hostname`` has handled every command up to."""
    return _HANDLED.get(hostname)


def _streams(broker: Broker) -> Streams:
    return require(broker, broker.streams, "streams", "remote control")


class ControlListener:
    """Reads commands for ``hostname`` and runs them, in a daemon thread."""

    def __init__(
        self,
        app: Celeriac,
        hostname: str,
        handler: ControlHandler | None = None,
        on_change: Callable[[], None] | None = None,
        after: str | None = None,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.handler = handler  # None: follower mode, apply locally, never reply
        self.on_change = on_change  # after a command that changes what heartbeats report
        # Read the commands after this stream position; None: from the end at start.
        self.position: str | None = after
        self._broker: Broker | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> Broker:
        return guarded(self.app.connect_broker)

    def start(self) -> None:
        """Note the stream's end now (so no later command is missed), then listen.

        A listener made with ``after`` reads on from there instead. With the broker
        away, the thread notes the end once it can reach it.
        """
        try:
            self._broker = self._connect()
            if self.position is None:
                self.position = _streams(self._broker).last(CONTROL_STREAM)
                self._handled(self.position)
        except CapabilityUnavailable:
            pass  # the thread says so once, and ends
        except Exception as exc:  # an outage at start is not a reason not to start
            logger.warning("control channel not reachable yet: %r", exc)
            self._close_broker()
        name = "celeriac-control" if self.handler is not None else "celeriac-control-follower"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = READ_TIMEOUT + 2.0) -> None:
        """Stop listening; returns once the thread ended (or ``timeout`` passed)."""
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            return
        # In a thread of its own: with a broker that does not answer, the call would
        # hold the caller for the socket's timeout; the join below is bounded.
        threading.Thread(target=self._wake_up, name="celeriac-control-wake", daemon=True).start()
        thread.join(timeout)

    def _wake_up(self) -> None:
        # A blocking read ends when an item arrives: one addressed to ourselves ends it now
        # rather than at the end of READ_TIMEOUT.
        wake = Command(WAKE, destination=(self.hostname,), reply=False).encode()
        try:
            broker = self._connect()
            try:
                _streams(broker).add(CONTROL_STREAM, [wake], maxlen=CONTROL_MAXLEN)
            finally:
                broker.close()
        except Exception:  # the broker is away: the read times out by itself
            logger.debug("cannot wake the control listener", exc_info=True)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._broker = self._broker or self._connect()
                self._read_once(self._broker)
                failures = 0
            except CapabilityUnavailable as exc:  # a broker without streams: nothing to listen to
                logger.info("remote control is off: %s", exc)
                break
            except Exception as exc:  # broker trouble: reconnect with backoff, keep position
                if failures == 0:
                    logger.warning("control channel: %r; retrying", exc)
                failures += 1
                self._close_broker()
                self._stop.wait(_BACKOFF[min(failures, len(_BACKOFF)) - 1])
        self._close_broker()
        if self.handler is not None:
            self.handler.close()

    def _close_broker(self) -> None:
        if self._broker is not None:
            try:
                self._broker.close()
            except Exception:  # already broken
                logger.debug("closing the control connection", exc_info=True)
            self._broker = None

    def _handled(self, position: str) -> None:
        if self.handler is not None:
            _HANDLED[self.hostname] = position

    def _read_once(self, broker: Broker) -> None:
        streams = _streams(broker)
        if self.position is None:
            self.position = streams.last(CONTROL_STREAM)
            self._handled(self.position)
        items = streams.read(CONTROL_STREAM, self.position, 100, READ_TIMEOUT)
        for position, data in items:
            self.position = position
            try:
                self._handle_item(streams, data)
            finally:  # handled, or failed for good: either way a forked child need not redo it
                self._handled(position)

    def _handle_item(self, streams: Streams, data: bytes) -> None:
        try:
            command = Command.decode(data)
        except ProtocolError as exc:
            logger.warning("%s", exc)
            return
        if command.name == WAKE or self._stop.is_set():
            return
        if command.is_for(self.hostname) and not command.expired:
            self._dispatch(streams, command)

    def _dispatch(self, streams: Streams, command: Command) -> None:
        if self.handler is None:
            apply_local(self.app, self.hostname, command.name, command.arguments)
            return
        logger.debug("control command %s %s", command.name, command.arguments)
        value = self.handler.handle(command.name, command.arguments)
        if command.reply:
            reply = Reply(self.hostname, value).encode()
            streams.add(reply_stream(command.id), [reply], maxlen=REPLY_MAXLEN)
        self.handler.run_after_reply()
        if self.on_change is not None and command.name in CHANGES:
            self.on_change()
