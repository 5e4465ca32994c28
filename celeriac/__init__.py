"""celeriac: a distributed task queue that loses nothing."""

from __future__ import annotations

from . import states
from .app import Celeriac
from .canvas import Signature, chain, chord, chunks, group, signature
from .current import current_app, shared_task
from .middleware import Middleware
from .result import AsyncResult, EagerResult, GroupResult
from .task import Task
from .version import __version__

__all__ = [
    "AsyncResult",
    "Celeriac",
    "EagerResult",
    "GroupResult",
    "Middleware",
    "Signature",
    "Task",
    "__version__",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "group",
    "shared_task",
    "signature",
    "states",
]
