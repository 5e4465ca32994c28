"""Tasks every app has: ``celeriac.map`` and ``celeriac.starmap`` (behind map, starmap, chunks).

Each runs the named task's function in this worker for every item, as Celery's
``celery.map`` and ``celery.starmap`` do; the signature's own partial arguments
follow each item's.
"""

from __future__ import annotations

from typing import Any

from ..current import shared_task
from .signature import Signature


def _calls(self: Any, task: dict[str, Any]) -> tuple[Signature, Any]:
    sig = Signature.from_dict(task, self.app)
    return sig, sig.type


def xmap(self: Any, task: dict[str, Any], it: list[Any]) -> list[Any]:
    """``[task(item) for item in it]``, in this worker."""
    sig, fun = _calls(self, task)
    results = []
    for item in it:
        args, kwargs = sig.merged((item,))
        results.append(fun(*args, **kwargs))
    return results


def xstarmap(self: Any, task: dict[str, Any], it: list[Any]) -> list[Any]:
    """``[task(*item) for item in it]``, in this worker."""
    sig, fun = _calls(self, task)
    results = []
    for item in it:
        args, kwargs = sig.merged(tuple(item))
        results.append(fun(*args, **kwargs))
    return results


BUILTIN_TASKS = ("celeriac.map", "celeriac.starmap")
# Registered with every app, now and later, as shared tasks are.
shared_task(name="celeriac.map", bind=True)(xmap)
shared_task(name="celeriac.starmap", bind=True)(xstarmap)

__all__ = ["BUILTIN_TASKS"]
