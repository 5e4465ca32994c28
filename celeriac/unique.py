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

Debounce (``debounce=`` seconds, with a key): the last send wins. Each send takes
the key from its holder (the key names the newest send) and is published to run
``debounce`` seconds later; when its time comes a worker runs it only if it still
holds the key, else records it revoked, superseded. So a burst of sends whose gaps
are shorter than ``debounce`` runs once, the last send's arguments, ``debounce``
after it. A debounced key is held for ``debounce`` plus :data:`DEBOUNCE_GRACE`, so
that a superseded send that waits in a backlog for longer than that may run too.
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
#: The message header naming a debounced send's key.
DEBOUNCE_HEADER = "debounce_key"
#: How long past its ``debounce`` a debounced key is held (seconds).
DEBOUNCE_GRACE = 3600.0

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


def debounce_delay(task_name: str, debounce: Any) -> float | None:
    """``debounce`` checked: seconds, or None."""
    if debounce is None:
        return None
    if isinstance(debounce, bool) or not isinstance(debounce, (int, float)):
        raise ConfigurationError(f"debounce of {task_name} must be seconds, not {debounce!r}")
    if not 0 < debounce <= MAX_HOLD - DEBOUNCE_GRACE:
        raise ConfigurationError(
            f"debounce of {task_name} must be above 0 and at most "
            f"{MAX_HOLD - DEBOUNCE_GRACE:.0f} seconds, not {debounce!r}"
        )
    return float(debounce)


def take_over(task: Task[Any, Any], key: str, task_id: str, debounce: float) -> None:
    """Make ``task_id`` the key's holder, whoever held it (the newest debounced send)."""
    broker = task.app.broker
    uniques = require(broker, broker.uniques, "uniques", f"debounced sending of {task.name}")
    hold = debounce + DEBOUNCE_GRACE
    holder = uniques.claim(key, task_id, hold)
    while holder != task_id:  # each turn fails only when another send took it meanwhile
        uniques.release(key, holder)
        holder = uniques.claim(key, task_id, hold)


def release(task: Task[Any, Any], key: str, task_id: str) -> None:
    """Free ``key`` when ``task_id`` holds it."""
    uniques = task.app.broker.uniques
    if uniques is not None:
        uniques.release(key, task_id)


__all__ = [
    "DEBOUNCE_GRACE",
    "DEBOUNCE_HEADER",
    "HEADER",
    "MAX_HOLD",
    "claim",
    "debounce_delay",
    "key_of_call",
    "release",
    "store_key",
    "take_over",
    "window",
]
