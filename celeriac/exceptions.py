"""Every error celeriac raises, in one tree.

    CeleriacError
    ├── ConfigurationError          a bad setting, URL or option; says what to change
    │   └── CapabilityUnavailable   the broker lacks a capability a caller needs; says what to use
    ├── MissingExtraError           an optional dependency is not installed; names the extra
    ├── SerializationError          an argument or result cannot be encoded; names it
    ├── MessageDecodeError          bytes from the broker are not a message we can read
    ├── BrokerError                 the broker failed or cannot be reached
    │   ├── BrokerUnavailable       the broker is down; callers may retry
    │   └── BrokerRefused           credentials or access refused (also a ConfigurationError)
    ├── BackendError                the result store failed
    ├── NotRegistered               a task name no one registered
    ├── TimeoutError                get() waited too long (also builtins.TimeoutError)
    ├── TaskRevokedError            get() on a task that was revoked or expired
    ├── IncompleteStream            collect() met a task not finished yet
    ├── TaskError                   raised inside a worker, travel back as a task failure
    │   ├── SoftTimeLimitExceeded   the soft time limit; the task may catch it and clean up
    │   ├── TimeLimitExceeded       the hard time limit; the task was stopped
    │   ├── MaxRetriesExceededError retry() past max_retries, with no exc to raise
    │   └── RemoteError             a task's exception whose type cannot be imported here
    ├── Retry                       raised by Task.retry() to ask for another attempt
    ├── Ignore                      raised by a task: store no state, ack the message
    └── Reject                      raised by a task to refuse its message (dead-letter it,
                                    or with requeue=True give it back to its queue)

Driver exceptions (sqlite3, redis, pika) are translated once, at the broker or
backend boundary: ``raise BrokerError(...) from exc``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


class CeleriacError(Exception):
    """The root of every celeriac error."""


class ConfigurationError(CeleriacError):
    """A setting, URL or option is wrong; the message says what to change."""


class CapabilityUnavailable(ConfigurationError):
    """The broker offers no streams, flags, rate limits or revocations, and a caller needs them.

    The message names the broker, the capability and what to configure instead.
    """


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"{module} is not installed: install celeriac[{extra}] "
            f"(pip install 'celeriac[{extra}]')"
        )
        self.extra = extra


class SerializationError(CeleriacError, TypeError):
    """A value cannot be serialized; the message names which one."""


class MessageDecodeError(CeleriacError):
    """Bytes taken from the broker are not a message celeriac can read."""


class BrokerError(CeleriacError):
    """The broker failed an operation."""


class BrokerUnavailable(BrokerError, ConnectionError):
    """The broker cannot be reached; the operation may succeed later."""


class BrokerRefused(BrokerError, ConfigurationError):
    """The broker refused the credentials or the access (user, password, virtual host):
    a configuration to change, not an outage to wait out."""


class BackendError(CeleriacError):
    """The result backend failed an operation."""


class NotRegistered(CeleriacError, KeyError):
    """No task of that name is registered with this app."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "task not registered"


class TimeoutError(CeleriacError, builtins.TimeoutError):
    """A wait ran out of time."""


class TaskRevokedError(CeleriacError):
    """The task was revoked or expired before it ran."""


class IncompleteStream(CeleriacError):
    """``AsyncResult.collect()`` reached a task that has not finished (its children are
    not known yet): wait for it, or pass ``intermediate=True``."""


class TaskError(CeleriacError):
    """A failure of a task itself, recorded as its result."""


class SoftTimeLimitExceeded(TaskError):
    """The task ran past its soft time limit; it may catch this and clean up."""


class TimeLimitExceeded(TaskError):
    """The task ran past its hard time limit and was stopped."""


class MaxRetriesExceededError(TaskError):
    """``self.retry()`` was called past ``max_retries`` without an ``exc`` to raise."""


class RemoteError(TaskError):
    """A task failed with an exception whose type is not importable here."""

    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(f"{exc_type}: {message}")
        self.exc_type = exc_type
        self.message = message


class Retry(CeleriacError):
    """Raised by ``Task.retry`` so the current attempt ends and another is scheduled.

    ``when`` is the delay in seconds or a ``datetime``; with ``is_eta`` a number is
    the unix time to run at instead. ``new_args`` / ``new_kwargs``, when given,
    replace the arguments of the next attempt.
    """

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | datetime | None = None,
        *,
        is_eta: bool = False,
        new_args: Sequence[Any] | None = None,
        new_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message or (f"Retry in {when}s" if when is not None else "Retry"))
        self.exc = exc
        self.when = when
        self.is_eta = is_eta
        self.new_args = new_args
        self.new_kwargs = new_kwargs


class Ignore(CeleriacError):
    """Raised by a task to end without a state: nothing is stored, the message is acked
    (as Celery's ``Ignore``: the task recorded its own state, or none is wanted)."""


class Reject(CeleriacError):
    """Raised by a task to refuse its message; it goes to dead letters with the reason."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requeue = requeue


class ExceptionInfo:
    """A task's exception with its formatted traceback: the ``einfo`` of Celery's hooks.

    ``str(einfo)`` is the traceback text, as in Celery.
    """

    def __init__(self, exception: BaseException, traceback: str | None) -> None:
        self.exception = exception
        self.type = type(exception)
        self.traceback = traceback or f"{type(exception).__name__}: {exception}"

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo {self.exception!r}>"
