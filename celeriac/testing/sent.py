"""A record of every message an app sends, for tests to assert on.

``SentRecorder`` is a middleware: it sees each message as it goes to the broker,
from the test and from the worker alike (chains, chords and retries send from
the worker), and refuses to send a task the app does not know, so a test fails
at ``delay()`` rather than waiting for a worker that would never run it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..exceptions import NotRegistered
from ..middleware.base import Middleware

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from ..task import Task


@dataclass(frozen=True)
class Sent:
    """One message as it was sent: which task, with what, where and when to run."""

    id: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    priority: int
    eta: datetime | None  # None: to run at once
    expires: datetime | None
    retries: int  # above 0 for a retry sent by the worker
    parent_id: str | None
    sent_at: datetime
    headers: dict[str, Any]
    ignore_result: bool

    @property
    def countdown(self) -> float | None:
        """Seconds between sending and the eta (None when it runs at once)."""
        return None if self.eta is None else (self.eta - self.sent_at).total_seconds()

    @classmethod
    def of(cls, message: Message) -> Sent:
        return cls(
            id=message.id,
            task=message.task,
            args=message.args,
            kwargs=dict(message.kwargs),
            queue=message.queue,
            priority=message.priority,
            eta=_when(message.eta),
            expires=_when(message.expires),
            retries=message.retries,
            parent_id=message.parent_id,
            sent_at=_when(message.sent_at) or datetime.now(timezone.utc),
            headers=dict(message.headers),
            ignore_result=message.ignore_result,
        )


def _when(timestamp: float | None) -> datetime | None:
    return None if not timestamp else datetime.fromtimestamp(timestamp, tz=timezone.utc)


class SentRecorder(Middleware):
    """Records what ``app`` sends: ``recorder.sent``, ``recorder.of(add)``.

    Use :func:`record_sent` to add one to an app and take it away afterwards.
    ``strict`` (the default) refuses, at the send, a task ``app`` has not registered.
    """

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self._lock = threading.Lock()
        self._sent: list[Sent] = []

    def before_enqueue(self, app: Celeriac, message: Message) -> Message:
        if self.strict and message.task not in app.tasks:
            raise NotRegistered(
                f"task {message.task!r} is not registered with app {app.main!r}, so its "
                "worker would never run it: import the module that defines it, or define "
                f"it on this app (registered: {', '.join(sorted(app.tasks)) or 'none'})"
            )
        return message

    def after_enqueue(self, app: Celeriac, message: Message) -> None:
        sent = Sent.of(message)
        with self._lock:
            self._sent.append(sent)

    @property
    def sent(self) -> list[Sent]:
        """Every message sent so far, in the order they were made (a worker's send can
        reach the broker before the send of the message that led to it returns)."""
        with self._lock:
            return sorted(self._sent, key=lambda s: s.sent_at)

    def of(self, task: str | Task[Any, Any]) -> list[Sent]:
        """The messages of one task (by name or task object), in order."""
        name = task if isinstance(task, str) else task.name
        return [s for s in self.sent if s.task == name]

    def names(self) -> list[str]:
        """The task name of each message sent, in order."""
        return [s.task for s in self.sent]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def __iter__(self) -> Iterator[Sent]:
        return iter(self.sent)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sent)


@contextmanager
def record_sent(app: Celeriac, strict: bool = True) -> Iterator[SentRecorder]:
    """Record what ``app`` sends during the ``with`` block: ``with record_sent(app) as sent``."""
    recorder = SentRecorder(strict)
    app.middleware.add(recorder)
    try:
        yield recorder
    finally:
        app.middleware.discard(recorder)
