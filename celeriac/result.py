"""Results: ``AsyncResult`` for one task, ``GroupResult`` for many."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import states
from .backends.base import TaskMeta, exception_from_dict
from .current import current_app
from .exceptions import IncompleteStream, TaskRevokedError, TimeoutError

if TYPE_CHECKING:
    from .app import Celeriac

R = TypeVar("R")
_GROUP_WAIT_SLICE = 1.0  # seconds a group waits on one member before looking at all again
_PROPAGATE = frozenset({states.FAILURE, states.REVOKED})


def _raise_failure(meta: TaskMeta) -> None:
    if meta.state == states.REVOKED:
        reason = meta.result.get("exc_message") if isinstance(meta.result, dict) else None
        raise TaskRevokedError(f"task {meta.task_id} was revoked: {reason or 'revoked'}")
    exc = exception_from_dict(meta.result)
    if meta.traceback and sys.version_info >= (3, 11):
        exc.add_note(f"\nRemote traceback (task {meta.task_id}):\n{meta.traceback}")
    raise exc


class AsyncResult(Generic[R]):
    """A handle on one task's outcome, by id."""

    def __init__(self, id: str, app: Celeriac | None = None, task_name: str | None = None) -> None:
        if app is None:
            app = current_app()
        self.id = id
        self.app = app
        self.task_name = task_name
        self._meta: TaskMeta | None = None  # cached once ready
        self.parent: AsyncResult[Any] | GroupResult | None = None  # the previous step in a chain

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def task_id(self) -> str:
        return self.id

    def _fetch(self) -> TaskMeta:
        if self._meta is not None:
            return self._meta
        meta = self.app.backend.get(self.id)
        if meta.ready:
            self._meta = meta
        return meta

    @property
    def state(self) -> str:
        """PENDING, STARTED, RETRY, SUCCESS, FAILURE or REVOKED."""
        return self._fetch().state

    status = state

    def ready(self) -> bool:
        return self._fetch().ready

    def successful(self) -> bool:
        return self._fetch().state == states.SUCCESS

    def failed(self) -> bool:
        return self._fetch().state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value; the exception when the task failed; None while pending."""
        meta = self._fetch()
        if meta.state in states.EXCEPTION_STATES and meta.result is not None:
            return exception_from_dict(meta.result)
        return meta.result

    info = result

    @property
    def traceback(self) -> str | None:
        return self._fetch().traceback

    @property
    def date_done(self) -> datetime | None:
        done = self._fetch().date_done
        return None if done is None else datetime.fromtimestamp(done, tz=timezone.utc)

    @property
    def retries(self) -> int:
        return self._fetch().retries

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float | None = None
    ) -> R:
        """Wait for the task and return its value, or raise its exception."""
        meta = self._meta or self.app.backend.wait(self.id, timeout)
        self._meta = meta
        if meta.state == states.SUCCESS:
            return meta.result  # type: ignore[no-any-return]
        if propagate:
            _raise_failure(meta)
        return self.result  # type: ignore[no-any-return]

    wait = get

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """The async twin of :meth:`get`."""
        return await asyncio.to_thread(self.get, timeout, propagate)

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Stop the task: before it starts anywhere, or (``terminate``) while it runs."""
        self.app.revoke([self.id], terminate=terminate, signal=signal)

    def forget(self) -> None:
        """Delete the stored result."""
        self._meta = None
        self.app.backend.forget([self.id])

    def as_tuple(self) -> tuple[str, None]:
        return (self.id, None)

    @property
    def children(self) -> list[AsyncResult[Any]]:
        """The tasks this task sent while it ran, once it has finished (stored with it)."""
        return [AsyncResult(child, self.app) for child in self._fetch().children]

    def iterdeps(
        self, intermediate: bool = False
    ) -> Iterator[tuple[AsyncResult[Any] | None, AsyncResult[Any]]]:
        """``(parent, result)`` for this task and everything it sent, breadth first."""
        pending: deque[tuple[AsyncResult[Any] | None, AsyncResult[Any]]] = deque([(None, self)])
        while pending:
            parent, node = pending.popleft()
            yield parent, node
            if node.ready():
                pending.extend((node, child) for child in node.children)
            elif not intermediate:
                raise IncompleteStream(
                    f"task {node.id} has not finished, so what it sends is not known yet: "
                    "wait for it, or collect(intermediate=True)"
                )

    def collect(
        self, intermediate: bool = False, **get_options: Any
    ) -> Iterator[tuple[AsyncResult[Any], Any]]:
        """``(result, value)`` for this task and every task it sent, recursively, as
        Celery's ``collect()``; ``get_options`` go to each ``get()``."""
        for _, node in self.iterdeps(intermediate=intermediate):
            yield node, node.get(**get_options)


class EagerResult(AsyncResult[R]):
    """The result of a task run here by ``apply()``: already known, never stored."""

    def __init__(self, meta: TaskMeta, app: Celeriac | None = None) -> None:
        super().__init__(meta.task_id, app, meta.name)
        self._meta = meta

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float | None = None
    ) -> R:
        assert self._meta is not None
        if self._meta.state == states.SUCCESS:
            return self._meta.result  # type: ignore[no-any-return]
        if propagate:
            _raise_failure(self._meta)
        return self.result  # type: ignore[no-any-return]

    def forget(self) -> None:
        pass


class GroupResult:
    """The results of a group, in the order the group was written."""

    def __init__(
        self, id: str, results: Sequence[AsyncResult[Any]], app: Celeriac | None = None
    ) -> None:
        self.id = id
        self.results = list(results)
        self.app = app or current_app()
        self.parent: AsyncResult[Any] | GroupResult | None = None

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} ({len(self.results)} tasks)>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]

    def _metas(self) -> list[TaskMeta]:
        pending = [r.id for r in self.results if r._meta is None]
        found = self.app.backend.get_many(pending) if pending else {}
        for r in self.results:
            meta = found.get(r.id)
            if meta is not None and meta.ready:
                r._meta = meta
        return [r._meta or found.get(r.id) or TaskMeta(r.id) for r in self.results]

    def ready(self) -> bool:
        return all(m.ready for m in self._metas())

    def successful(self) -> bool:
        return all(m.state == states.SUCCESS for m in self._metas())

    def failed(self) -> bool:
        return any(m.state == states.FAILURE for m in self._metas())

    def completed_count(self) -> int:
        return sum(m.state == states.SUCCESS for m in self._metas())

    def waiting(self) -> bool:
        return not self.ready()

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float | None = None
    ) -> list[Any]:
        """Every result in order; raises a failure as soon as one is known, unless
        ``propagate=False``, which returns exceptions in place.

        Reads all pending results in one backend call per wake-up, and between
        reads waits on the last pending one (the one most likely to finish last).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            metas = self._metas()
            if propagate:
                failure = next((m for m in metas if m.state in _PROPAGATE), None)
                if failure is not None:
                    _raise_failure(failure)
            pending = [m.task_id for m in metas if not m.ready]
            if not pending:
                return [self._value(m) for m in metas]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"group {self.id}: {len(pending)} of {len(metas)} tasks not ready "
                    f"after {timeout}s"
                )
            wait = _GROUP_WAIT_SLICE if remaining is None else min(remaining, _GROUP_WAIT_SLICE)
            with contextlib.suppress(TimeoutError):  # look again: one may have failed meanwhile
                self.app.backend.wait(pending[-1], wait)

    @staticmethod
    def _value(meta: TaskMeta) -> Any:
        if meta.state in states.EXCEPTION_STATES and meta.result is not None:
            return exception_from_dict(meta.result)
        return meta.result

    join = get

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        return await asyncio.to_thread(self.get, timeout, propagate)

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        self.app.revoke([r.id for r in self.results], terminate=terminate, signal=signal)

    def forget(self) -> None:
        self.app.backend.forget([r.id for r in self.results])

    def save(self) -> None:
        self.app.backend.save_group(self.id, [r.id for r in self.results])

    @classmethod
    def restore(cls, group_id: str, app: Celeriac | None = None) -> GroupResult | None:
        app = app or current_app()
        ids = app.backend.get_group(group_id)
        return None if ids is None else cls(group_id, [AsyncResult(i, app) for i in ids], app)
