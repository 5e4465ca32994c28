"""The result backend contract, and the record it stores.

A backend stores one :class:`TaskMeta` per task id, each expiring
``result_expires`` seconds after it was written, with no extra process to clean
up. ``wait`` returns as soon as a task is ready: backends that can be notified
(memory, Redis) block on a notification; the others poll with a short backoff.
What a backend is beyond that it declares in attributes (``stores_results``,
``fork_sensitive``), so callers ask the object, never its URL.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .. import states
from ..backoff import Backoff
from ..exceptions import RemoteError, TimeoutError
from ..serialization import Codec, from_wire, to_wire

if TYPE_CHECKING:
    from ..config import Settings

DEFAULT_RESULT_EXPIRES = 86400.0


@dataclass(slots=True)
class TaskMeta:
    """Everything known about one task's outcome."""

    task_id: str
    state: str = states.PENDING
    result: Any = None  # the return value, or for failures the exception as a dict
    traceback: str | None = None
    name: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    queue: str | None = None
    worker: str | None = None
    retries: int = 0
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    children: list[str] = field(default_factory=list)
    #: The queue of the client that waits for this result (``rpc://``); never stored.
    reply_to: str | None = None
    date_received: float | None = None
    date_started: float | None = None
    date_done: float | None = None

    @property
    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def to_bytes(self, codec: Codec) -> bytes:
        # A shallow dict: dataclasses.asdict deep-copies and was a fifth of a task's CPU.
        data = {name: getattr(self, name) for name in _META_FIELDS}
        if codec.needs_tags:
            for key in ("result", "args", "kwargs"):
                data[key] = to_wire(data[key], key)
        return codec.dumps(data)

    @classmethod
    def from_bytes(cls, data: bytes, codec: Codec) -> TaskMeta:
        values = codec.loads(data)
        return cls(**values)


_META_FIELDS = tuple(f.name for f in fields(TaskMeta) if f.name != "reply_to")


def exception_to_dict(exc: BaseException) -> dict[str, Any]:
    """A failure as plain data: type, module, message and (when plain) the arguments."""
    try:
        args = to_wire(list(exc.args))
    except Exception:
        args = [str(exc)]
    return {
        "exc_type": type(exc).__qualname__,
        "exc_module": type(exc).__module__,
        "exc_message": str(exc),
        "exc_args": args,
    }


def exception_from_dict(data: Any) -> BaseException:
    """Rebuild a task's exception: its own type when importable, else ``RemoteError``."""
    if not isinstance(data, dict) or "exc_type" not in data:
        return RemoteError("Exception", repr(data))
    name, module = data["exc_type"], data.get("exc_module", "builtins")
    try:
        obj: Any = __import__(module, fromlist=["_"])
        for part in name.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            try:
                return obj(*from_wire(data.get("exc_args", [])))
            except Exception:
                return obj(data.get("exc_message", ""))
    except Exception:
        pass
    return RemoteError(f"{module}.{name}", data.get("exc_message", ""))


class Backend(ABC):
    """A result store: one connection per process or thread that uses it."""

    url: str
    expires: float = DEFAULT_RESULT_EXPIRES
    poll_interval: float = 0.001  # first poll interval for backends that cannot notify
    max_poll_interval: float = 0.05
    #: Whether records are kept (False for the stand-in used when none is configured:
    #: what needs results to meet, a chord's join, cannot work on it).
    stores_results: bool = True
    #: Whether a fork in the middle of one of its calls can leave the child stuck
    #: (SQLite): see ``Broker.fork_sensitive``.
    fork_sensitive: bool = False

    #: Whether results go back to the client that sent the task, which must then name
    #: itself in each message (``reply_to``): Celery's ``rpc://``.
    replies_to_sender: bool = False

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    @property
    def reply_to(self) -> str | None:
        """Where a worker sends this client's results (``replies_to_sender`` backends)."""
        return None

    @classmethod
    def options_from(cls, conf: Settings) -> dict[str, Any]:
        """Keyword arguments for the constructor from an app's settings (none by default)."""
        return {}

    @abstractmethod
    def store(self, metas: Sequence[TaskMeta]) -> None:
        """Write task records, each expiring ``expires`` seconds from now."""

    @abstractmethod
    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        """The records that exist (and have not expired) for these ids."""

    @abstractmethod
    def forget(self, task_ids: Sequence[str]) -> None:
        """Delete records."""

    def get(self, task_id: str) -> TaskMeta:
        """The record of one task; PENDING when none exists."""
        return self.get_many([task_id]).get(task_id) or TaskMeta(task_id)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        """Block until the task is ready; raise ``TimeoutError`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pauses = Backoff(self.poll_interval, cap=self.max_poll_interval)
        while True:
            meta = self.get(task_id)
            if meta.ready:
                return meta
            remaining = math.inf
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout}s")
            pauses.sleep(remaining)

    # -- groups and chords -------------------------------------------------
    @abstractmethod
    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Remember the members of a group, in order."""

    @abstractmethod
    def get_group(self, group_id: str) -> list[str] | None:
        """The members of a group, or None when unknown or expired."""

    @abstractmethod
    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        """Record header task ``index`` of a chord as finished, atomically.

        Returns True exactly once per chord: for the call that completes the
        set, however many times each index is reported (redeliveries).
        """

    def close(self) -> None:
        """Release connections and files."""
