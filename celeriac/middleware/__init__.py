"""Middleware shipped with celeriac; ``default_middleware()`` is what an app starts with."""

from __future__ import annotations

from .base import Middleware, MiddlewareStack, SkipMessage
from .retries import Retries
from .revocation import Expiry, Revocation


def default_middleware() -> list[Middleware]:
    """A new list of the standard middleware, in order."""
    return [Revocation(), Expiry(), Retries()]


__all__ = [
    "Expiry", "Middleware", "MiddlewareStack", "Retries", "Revocation", "SkipMessage",
    "default_middleware",
]
