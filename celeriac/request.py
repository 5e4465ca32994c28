"""What a running task knows about its own invocation, and which invocation is running.

``task.request`` reads :func:`current_request`; the worker sets it around each
task (:func:`set_current_request`), and messages sent from inside a task take
it as their parent.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from .message import Message


@dataclass
class Request:
    """What a running task knows about its own invocation (``self.request``)."""

    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: float | None = None
    expires: float | None = None
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    hostname: str | None = None
    is_eager: bool = False
    delivery_info: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    message: Message | None = None
    children: list[str] = field(default_factory=list)  # ids of tasks it sent, stored with it

    @classmethod
    def from_message(
        cls,
        message: Message,
        hostname: str | None = None,
        deliveries: int = 1,
        is_eager: bool = False,
    ) -> Request:
        return cls(
            id=message.id,
            task=message.task,
            args=message.args,
            kwargs=message.kwargs,
            retries=message.retries,
            eta=message.eta,
            expires=message.expires,
            parent_id=message.parent_id,
            root_id=message.root_id,
            group_id=message.group_id,
            group_index=message.group_index,
            hostname=hostname,
            is_eager=is_eager,
            delivery_info={
                "queue": message.queue,
                "priority": message.priority,
                "redelivered": deliveries > 1,
                "deliveries": deliveries,
            },
            headers=message.headers,
            message=message,
        )


_current_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "celeriac_request", default=None
)


def current_request() -> Request | None:
    """The invocation running in this thread or coroutine, if any."""
    return _current_request.get()


def set_current_request(request: Request) -> contextvars.Token[Request | None]:
    return _current_request.set(request)


def reset_current_request(token: contextvars.Token[Request | None]) -> None:
    _current_request.reset(token)


__all__ = ["Request", "current_request", "reset_current_request", "set_current_request"]
