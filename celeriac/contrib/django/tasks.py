"""``TASKS = {"default": {"BACKEND": "celeriac.contrib.django.tasks.CeleriacBackend"}}``.

The backend lives in :mod:`celeriac.contrib.django.taskbackend` and is loaded on
first use, so this module (which task discovery imports, like every installed
app's ``tasks`` module) works without the Tasks framework installed.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = ("CeleriacBackend", "CeleriacTask", "celeriac_priority", "result_from_meta")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from . import taskbackend

        return getattr(taskbackend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)
