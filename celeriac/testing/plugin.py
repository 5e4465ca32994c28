"""pytest fixtures for testing your tasks through real workers.

Installed with celeriac, pytest loads this module by itself (the ``pytest11``
entry point ``celeriac``). Without that (``-p no:celeriac``, or to pick names),
import the fixtures into a ``conftest.py``::

    from celeriac.testing.plugin import celeriac_app, celeriac_worker  # noqa: F401

Fixtures:

* ``celeriac_config``: settings for ``celeriac_app`` (override it: ``{}`` here).
* ``celeriac_app``: a new app on a fresh in-memory broker and backend, current
  for the test. Override it to test your own app: ``with use_memory(my_app) as
  app: yield app``.
* ``celeriac_worker``: an :class:`~celeriac.testing.InProcessWorker` consuming the
  app's queues, stopped after the test; ``celeriac_worker_options`` (override it)
  gives its keywords: ``{"pool": "asyncio", "queues": ["celeriac", "reports"]}``.
* ``celeriac_sent``: a :class:`~celeriac.testing.SentRecorder` of what the app sent.
* ``celeriac_prefork_worker``: starts real prefork worker processes
  (:class:`~celeriac.testing.PreforkWorker`'s arguments), killed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..app import Celeriac
from ..current import current_app, set_current_app
from .app import discard_memory, memory_app
from .prefork import PreforkWorker
from .sent import SentRecorder, record_sent
from .worker import InProcessWorker


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    """Settings of ``celeriac_app``, as keywords of ``Celeriac(...)``."""
    return {}


@pytest.fixture
def celeriac_app(celeriac_config: dict[str, Any]) -> Iterator[Celeriac]:
    """A new app on a fresh memory broker and backend, the current app during the test."""
    previous = current_app()
    app = memory_app("tests", **celeriac_config)
    app.set_current()
    try:
        yield app
    finally:
        discard_memory(app)
        set_current_app(previous)


@pytest.fixture
def celeriac_worker_options() -> dict[str, Any]:
    """Keywords of ``celeriac_worker``: queues, concurrency, pool (``{}`` here)."""
    return {}


@pytest.fixture
def celeriac_worker(
    celeriac_app: Celeriac, celeriac_worker_options: dict[str, Any]
) -> Iterator[InProcessWorker]:
    """A worker running in this process on ``celeriac_app``; ``.join()`` to wait for it."""
    with InProcessWorker(celeriac_app, **celeriac_worker_options) as worker:
        yield worker


@pytest.fixture
def celeriac_sent(celeriac_app: Celeriac) -> Iterator[SentRecorder]:
    """What ``celeriac_app`` sends: ``celeriac_sent.sent``, ``celeriac_sent.of(task)``."""
    with record_sent(celeriac_app) as recorder:
        yield recorder


class StartPreforkWorker:
    """Starts :class:`PreforkWorker` processes; kills them all at the end of the test."""

    def __init__(self) -> None:
        self.started: list[PreforkWorker] = []

    def __call__(self, app: str, broker_url: str, *args: Any, **kwargs: Any) -> PreforkWorker:
        worker = PreforkWorker(app, broker_url, *args, **kwargs)
        self.started.append(worker)
        return worker.start()

    def close(self) -> None:
        for worker in self.started:
            worker.kill()


@pytest.fixture
def celeriac_prefork_worker() -> Iterator[StartPreforkWorker]:
    """``celeriac_prefork_worker("proj.celery:app", "sqlite:///...")``: a real worker."""
    starter = StartPreforkWorker()
    try:
        yield starter
    finally:
        starter.close()
