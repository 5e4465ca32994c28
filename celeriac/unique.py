"""Unique tasks: a second send of the same key, while the first holds it, sends nothing.

A task declares what makes a call unique with ``unique=``: an argument's name, a
callable ``(args, kwargs) -> str``, or ``True`` for the whole call (its
arguments, hashed). ``apply_async(unique_key="order-42")`` names a key for one
send. Keys are per task: the store key is ``<task name>:<key>``.

Sending claims the key in the broker's store (the ``uniques`` capability),
atomically, before publishing: the claim that wins publishes, every other send
inside the window gets the winner's :class:`~celeriac.result.AsyncResult` and
publishes nothing. The window is ``unique_for`` seconds from the winning send,
or, with ``unique_for=None`` (the default), until the winner finishes (succeeds,
fails for good or is revoked; a retry keeps the key). A key is never held longer
than :data:`MAX_HOLD` (a day): a task whose message was lost frees its key then.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .brokers.capabilities import require
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .task import Task

#: The longest a key is held, in seconds: a window's upper bound, and the hold of a
#: task kept until it finishes (RabbitMQ's token queues, unused for a day, expire).
MAX_HOLD = 86_400.0
#: The message header naming the key a task holds until it finishes.
HEADER = "unique_key"

KeyOf = bool | str | Callable[[tuple[Any, ...], dict[str, Any]], str]


def argument(task: Task[Any, Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The value of argument ``name`` in this call; a clear error when it has none."""
    if name in kwargs:
        return kwargs[name]
    names = list(task._signature.parameters)[1 if task.bind else 0 :]
    if name in names and names.index(name) < len(args):
        return args[names.index(name)]
    raise ConfigurationError(f"unique={name!r} of {task.name} is not an argument of this call")


def key_of_call(
    task: Task[Any, Any], key_of: KeyOf, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """The key of this call from the task's ``unique`` option."""
    if key_of is True:
        text = json.dumps([list(args), kwargs], sort_keys=True, default=repr)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    if callable(key_of):
        return str(key_of(args, kwargs))
    if isinstance(key_of, str):
        return str(argument(task, key_of, args, kwargs))
    raise ConfigurationError(
        f"unique of {task.name} must be True, an argument's name or a callable "
        f"(args, kwargs) -> str, not {key_of!r}"
    )


def window(task_name: str, unique_for: Any) -> float | None:
    """``unique_for`` checked: seconds, or None for "until the task finishes"."""
    if unique_for is None:
        return None
    if (
        isinstance(unique_for, bool)
        or not isinstance(unique_for, (int, float))
        or not 0 < unique_for <= MAX_HOLD
    ):
        raise ConfigurationError(
            f"unique_for of {task_name} must be seconds above 0 and at most {MAX_HOLD:.0f} "
            f"(a day), or None to hold the key until the task finishes; got {unique_for!r}"
        )
    return float(unique_for)


def store_key(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], unique_key: Any
) -> str | None:
    """The store key of this send: from ``unique_key`` when given, else from the task's
    ``unique`` option; None when the send is not unique."""
    if unique_key is not None:
        if not isinstance(unique_key, str) or not unique_key:
            raise ConfigurationError(
                f"unique_key for {task.name} must be a non-empty string, not {unique_key!r}"
            )
        return f"{task.name}:{unique_key}"
    if task.unique is None or task.unique is False:
        return None
    return f"{task.name}:{key_of_call(task, task.unique, args, kwargs)}"


def claim(task: Task[Any, Any], key: str, task_id: str, hold: float | None) -> str:
    """Claim ``key`` for ``task_id`` in the broker's store: the holder's task id."""
    broker = task.app.broker
    uniques = require(broker, broker.uniques, "uniques", f"unique sending of {task.name}")
    return uniques.claim(key, task_id, MAX_HOLD if hold is None else hold)


def release(task: Task[Any, Any], key: str, task_id: str) -> None:
    """Free ``key`` when ``task_id`` holds it."""
    uniques = task.app.broker.uniques
    if uniques is not None:
        uniques.release(key, task_id)


__all__ = ["HEADER", "MAX_HOLD", "claim", "key_of_call", "release", "store_key", "window"]
