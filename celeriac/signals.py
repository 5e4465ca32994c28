"""Signals with Celery's names: ``from celeriac.signals import task_success``.

A :class:`Signal` is a list of receivers; sending it calls each one as
``receiver(signal=..., sender=..., **arguments)``. Nothing here dispatches by
itself: the worker and the producer send these through the one extension
mechanism, middleware (:class:`celeriac.middleware.signals.Signals`, in
every app's default stack), so a signal fires exactly where its middleware hook
runs. Which process sends each one, as in Celery:

==========================  ============================================================
signal                      sent
==========================  ============================================================
before_task_publish         in the producer, before the message goes to the broker
after_task_publish          in the producer, after the broker took it
task_prerun                 in the process running the task, just before it runs
task_success / task_failure in that process, after the result is stored
task_retry                  in that process, when the task asked for another attempt
task_revoked                in that process, when a revoked or expired task is skipped
task_postrun                in that process, after any of the three above
worker_init                 in the worker's main process, before its pool starts
worker_ready                in the worker's main process, once every consumer is ready
worker_process_init         in each prefork child, before it consumes
worker_process_shutdown     in each prefork child, as it stops
worker_shutdown             in the worker's main process, as it stops
setup_logging               in the worker's main process, before it configures logging;
                            a receiver means "I configure logging": celeriac then does not
==========================  ============================================================

Celery's signals not listed here are not sent by celeriac, and so not defined:
importing one fails at once rather than waiting for an event that never comes
(see docs/coming-from-celery.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, overload

logger = logging.getLogger("celeriac.signals")

Receiver = Callable[..., Any]


class Signal:
    """Receivers of one event: ``signal.connect(fn)``, ``@signal.connect(sender=...)``.

    ``sender`` limits a receiver to one sender: the object itself, or, for task
    signals, the task's name. Receivers are held strongly (``weak`` is accepted
    for Celery's sake and changes nothing): a receiver defined in a function is
    never dropped behind your back. ``dispatch_uid`` connects a receiver once
    however often the connecting code runs.
    """

    def __init__(self, name: str, providing_args: Any = None) -> None:
        self.name = name
        self._receivers: list[tuple[Hashable, Any, Receiver]] = []

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    @property
    def receivers(self) -> list[Receiver]:
        """The connected receivers, in the order they connected."""
        return [receiver for _, _, receiver in self._receivers]

    @overload
    def connect(self, receiver: Receiver) -> Receiver: ...
    @overload
    def connect(
        self,
        *,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> Callable[[Receiver], Receiver]: ...
    @overload
    def connect(
        self,
        receiver: Receiver,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> Receiver: ...
    def connect(
        self,
        receiver: Receiver | None = None,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> Any:
        """Connect ``receiver``; without one, a decorator that connects what it wraps."""
        if receiver is None:
            return lambda fn: self.connect(fn, sender, weak, dispatch_uid)
        if not callable(receiver):
            raise TypeError(f"{self.name}.connect() takes a callable, not {receiver!r}")
        key: Hashable = dispatch_uid if dispatch_uid is not None else (id(receiver), id(sender))
        if not any(existing == key for existing, _, _ in self._receivers):
            self._receivers.append((key, sender, receiver))
        return receiver

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver (for ``sender`` only, when given); True if it was connected."""

        def matches(entry: tuple[Hashable, Any, Receiver]) -> bool:
            key, wanted, connected = entry
            if dispatch_uid is not None:
                return key == dispatch_uid
            return connected is receiver and (sender is None or wanted is sender)

        before = len(self._receivers)
        self._receivers = [entry for entry in self._receivers if not matches(entry)]
        return len(self._receivers) != before

    def send(self, sender: Any, **arguments: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for ``sender``; returns ``(receiver, response)`` pairs.

        A receiver that raises is logged with its traceback and its exception is its
        response: one broken receiver stops neither the others nor the task.
        """
        responses: list[tuple[Receiver, Any]] = []
        for _, wanted, receiver in list(self._receivers):
            if wanted is not None and not _matches(wanted, sender):
                continue
            try:
                response = receiver(signal=self, sender=sender, **arguments)
            except Exception as exc:
                logger.exception("signal %s: receiver %r raised", self.name, receiver)
                response = exc
            responses.append((receiver, response))
        return responses

    def __bool__(self) -> bool:
        """True when any receiver is connected (cheap to test before building arguments)."""
        return bool(self._receivers)


def _matches(wanted: Any, sender: Any) -> bool:
    if wanted is sender:
        return True
    if isinstance(wanted, str):
        return wanted == sender or wanted == getattr(sender, "name", None)
    return False


# -- tasks: producer side ----------------------------------------------------------
before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
# -- tasks: where they run -------------------------------------------------------
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
# -- workers ---------------------------------------------------------------------
worker_init = Signal("worker_init")
worker_ready = Signal("worker_ready")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_shutdown = Signal("worker_shutdown")
setup_logging = Signal("setup_logging")

__all__ = [
    "Signal",
    "after_task_publish",
    "before_task_publish",
    "setup_logging",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_retry",
    "task_revoked",
    "task_success",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
]
