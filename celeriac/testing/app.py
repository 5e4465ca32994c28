"""Apps on the in-process memory broker and backend, fresh for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..app import Celeriac
from ..backends.memory import discard_memory_backend
from ..brokers.memory import discard_memory_broker
from ..current import current_app, set_current_app


def memory_url(label: str = "test") -> str:
    """A ``memory://`` URL no other test shares: queues and results start empty."""
    return f"memory://{label}-{uuid.uuid4().hex}"


def discard_memory(app: Celeriac) -> None:
    """Close ``app``'s connections and forget its in-memory queues and results."""
    app.close()
    for url in (app.conf.broker_url, app.conf.result_backend):
        if isinstance(url, str) and url.startswith("memory://"):
            discard_memory_broker(url)
            discard_memory_backend(url)


def memory_app(main: str = "tests", **settings: Any) -> Celeriac:
    """A new app on a fresh memory broker and backend (settings as keywords).

    It is not made current: shared tasks are registered with it all the same.
    :func:`discard_memory` forgets its queues and results once the test is done.
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
        discard_memory(app)
        app.conf.update(saved)
        set_current_app(previous)
