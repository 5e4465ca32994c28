"""Middleware: the one way to extend celeriac.

A middleware subclasses :class:`Middleware` and overrides the hooks it needs;
hooks it does not override cost nothing (the stack calls only overridden ones).

Producer side: ``before_enqueue`` may change or refuse a message;
``after_enqueue`` sees what was sent.

Worker side, for each delivered message, in this order:
``before_process`` (raise :class:`SkipMessage` to not run it), the task runs,
``after_process`` (in reverse order; may turn a failure into a retry by setting
``job.retry_at``), the result is stored, ``after_result`` (publish follow-up
work such as callbacks: it runs before the ack, so a crash repeats it rather
than loses it), the message is acked, ``after_ack``.
``worker_start`` / ``worker_stop`` run once per consuming process (each prefork
child; the worker's own process for the other pools). ``worker_init``,
``worker_ready`` and ``worker_shutdown`` run once per worker, in its main
process: before the pool starts, once every consumer is ready, as it stops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import MethodType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from ..worker.job import Job


class SkipMessage(Exception):
    """Raised by ``before_process``: do not run the task; record ``state`` with ``reason``.

    With ``later`` (a replacement message, usually with an ``eta``) nothing is
    recorded: the replacement is published to the broker's delayed set and the
    original acked (a rate-limited task waiting for its slot). With ``parked``
    nothing is recorded or published: the broker keeps the message already (a
    task waiting for a slot of its concurrency limit) and the original is acked.
    With ``exception``, that is the task's outcome (a task stopped from outside).
    """

    def __init__(
        self,
        state: str | None,
        reason: str,
        later: Message | None = None,
        exception: BaseException | None = None,
        parked: bool = False,
    ) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.later = later
        self.exception = exception
        self.parked = parked

    @property
    def waits(self) -> bool:
        """The task runs later (a slot of a rate or concurrency limit): not an outcome."""
        return self.later is not None or self.parked


class Middleware:
    """Override any of the hooks below."""

    #: Whether ``after_result`` runs for a task run here and now too (``apply()``,
    #: ``task_always_eager``), after each attempt: for hooks a user expects there
    #: (signals, a task class's ``on_success``...), not for work that sends messages.
    runs_eagerly: bool = False

    def before_enqueue(self, app: Celeriac, message: Message) -> Message:
        return message

    def after_enqueue(self, app: Celeriac, message: Message) -> None:
        pass

    def before_process(self, job: Job) -> None:
        pass

    def after_process(self, job: Job) -> None:
        pass

    def after_result(self, job: Job) -> None:
        pass

    def wants_after_result(self, job: Job) -> bool:
        """Whether ``after_result`` has work for this job.

        Only asked when ``after_result`` is overridden. When no middleware wants
        it, the worker stores the result and acks in one broker round trip.
        """
        return True

    def after_ack(self, job: Job) -> None:
        pass

    def worker_start(self, app: Celeriac, worker: Any) -> None:
        pass

    def worker_stop(self, app: Celeriac, worker: Any) -> None:
        pass

    def worker_init(self, app: Celeriac, worker: Any) -> None:
        pass

    def worker_ready(self, app: Celeriac, worker: Any) -> None:
        pass

    def worker_shutdown(self, app: Celeriac, worker: Any) -> None:
        pass


Hook = TypeVar("Hook", bound=Callable[..., Any])


def _overrides(hook: Callable[..., Any], base: object) -> bool:
    """Whether a middleware's bound ``hook`` is its own, not ``base`` (a no-op of
    :class:`Middleware`): hooks left as no-ops are never called."""
    return not (isinstance(hook, MethodType) and hook.__func__ is base)


def _overriding(
    items: Iterable[Middleware], hook: Callable[[Middleware], Hook], base: object
) -> list[Hook]:
    """Each middleware's ``hook`` where it overrides ``base``."""
    return [bound for bound in map(hook, items) if _overrides(bound, base)]


class MiddlewareStack:
    """The app's middleware, with each hook pre-resolved to the overriding methods."""

    before_enqueue: list[Callable[[Celeriac, Message], Message]]
    after_enqueue: list[Callable[[Celeriac, Message], None]]
    before_process: list[Callable[[Job], None]]
    after_process: list[Callable[[Job], None]]
    #: The middleware whose ``after_result`` has work; each is asked ``wants_after_result``.
    after_result: list[Middleware]
    after_ack: list[Callable[[Job], None]]
    worker_start: list[Callable[[Celeriac, Any], None]]
    worker_stop: list[Callable[[Celeriac, Any], None]]
    worker_init: list[Callable[[Celeriac, Any], None]]
    worker_ready: list[Callable[[Celeriac, Any], None]]
    worker_shutdown: list[Callable[[Celeriac, Any], None]]

    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self._items: list[Middleware] = list(middleware)
        self._resolve()

    def _resolve(self) -> None:
        items, base = self._items, Middleware
        self.before_enqueue = _overriding(items, lambda m: m.before_enqueue, base.before_enqueue)
        self.after_enqueue = _overriding(items, lambda m: m.after_enqueue, base.after_enqueue)
        self.before_process = _overriding(items, lambda m: m.before_process, base.before_process)
        self.after_process = _overriding(items, lambda m: m.after_process, base.after_process)
        self.after_result = [m for m in items if _overrides(m.after_result, base.after_result)]
        self.after_ack = _overriding(items, lambda m: m.after_ack, base.after_ack)
        self.worker_start = _overriding(items, lambda m: m.worker_start, base.worker_start)
        self.worker_stop = _overriding(items, lambda m: m.worker_stop, base.worker_stop)
        self.worker_init = _overriding(items, lambda m: m.worker_init, base.worker_init)
        self.worker_ready = _overriding(items, lambda m: m.worker_ready, base.worker_ready)
        self.worker_shutdown = _overriding(items, lambda m: m.worker_shutdown, base.worker_shutdown)

    def add(self, middleware: Middleware, before: type[Middleware] | None = None) -> None:
        """Add a middleware, at the end or before the first one of type ``before``."""
        index = len(self._items)
        if before is not None:
            index = next((i for i, m in enumerate(self._items) if isinstance(m, before)), index)
        self._items.insert(index, middleware)
        self._resolve()

    def remove(self, kind: type[Middleware]) -> None:
        """Remove every middleware of this type."""
        self._items = [m for m in self._items if not isinstance(m, kind)]
        self._resolve()

    def discard(self, middleware: Middleware) -> None:
        """Remove this one middleware object, if it is there."""
        self._items = [m for m in self._items if m is not middleware]
        self._resolve()

    def __iter__(self) -> Iterator[Middleware]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
