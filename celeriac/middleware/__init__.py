"""Middleware shipped with celeriac; ``default_middleware()`` is what an app starts with."""

from __future__ import annotations

from .base import Middleware, MiddlewareStack, SkipMessage
from .canvas import Canvas
from .concurrency import ConcurrencyLimit
from .events import TaskEvents
from .hooks import TaskHooks
from .rate_limit import RateLimit
from .retries import Retries
from .revocation import Expiry, Revocation
from .signals import Signals
from .started import TrackStarted
from .unique import UniqueRelease


def default_middleware() -> list[Middleware]:
    """A new list of the standard middleware, in order."""
    return [
        Revocation(),
        Expiry(),
        RateLimit(),
        ConcurrencyLimit(),
        TrackStarted(),
        Retries(),
        TaskEvents(),
        Canvas(),
        TaskHooks(),
        Signals(),
        UniqueRelease(),
    ]


__all__ = [
    "Canvas",
    "ConcurrencyLimit",
    "Expiry",
    "Middleware",
    "MiddlewareStack",
    "RateLimit",
    "Retries",
    "Revocation",
    "Signals",
    "SkipMessage",
    "TaskEvents",
    "TaskHooks",
    "TrackStarted",
    "UniqueRelease",
    "default_middleware",
]
