"""Apps on the in-process memory broker and backend, fresh for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..app import Celeriac
from ..current import current_app, set_current_app


def memory_url(label: str = "test") -> str:
    """A ``memory://`` URL no other test shares: queues and results start empty."""
    return f"memory://{label}-{uuid.uuid4().hex}"


def memory_app(main: str = "tests", **settings: Any) -> Celeriac:
    """A new app on a fresh memory broker and backend (settings as keywords).

    It is not made current: shared tasks are registered with it all the same.
    """
    url = memory_url(main)
    settings.setdefault("broker_url", url)
    settings.setdefault("result_backend", url)
    return Celeriac(main, set_as_current=False, **settings)


#: the settings use_memory replaces, and puts back afterwards
_SWAPPED = ("broker_url", "result_backend", "task_always_eager")


@contextmanager
def use_memory(app: Celeriac, **settings: Any) -> Iterator[Celeriac]:
    """Run your own app on a fresh memory broker and backend for the ``with`` block.

    Tasks defined on ``app`` in your code are then sent where the test's worker
    consumes; eager mode is off (set ``task_always_eager=True`` to keep it). The
    app is current during the block; its settings and the current app are put
    back afterwards.
    """
    saved = {name: app.conf[name] for name in (*_SWAPPED, *settings)}
    previous = current_app()
    url = memory_url(app.main or "app")
    app.conf.update({"broker_url": url, "result_backend": url, "task_always_eager": False})
    app.conf.update(settings)
    app.set_current()
    try:
        yield app
    finally:
        app.close()
        app.conf.update(saved)
        set_current_app(previous)
