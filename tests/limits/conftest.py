"""Fixtures of the limits' real-process tests: a worker starter, a broker per engine,
and the test's app module importable by the client and by the workers."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from celeriac import Celeriac
from tests.contract.conftest import BROKERS
from tests.e2e.workers import start_worker

__all__ = ["broker_url", "imported_app", "start_worker"]


@pytest.fixture(params=["sqlite", "redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    env = BROKERS[request.param].open(request, tmp_path)
    try:
        yield env.url
    finally:
        env.close()


@contextmanager
def imported_app(name: str, source: str, broker_url: str, tmp_path: Path) -> Iterator[Celeriac]:
    """``source`` written to ``tmp_path/<name>.py`` and imported, on ``broker_url`` (the
    workers started in ``tmp_path`` import the same file); its ``app``, closed afterwards."""
    (tmp_path / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    os.environ["CELERIAC_BROKER_URL"] = broker_url
    try:
        app: Celeriac = importlib.import_module(name).app
        try:
            yield app
        finally:
            app.close()
    finally:
        sys.modules.pop(name, None)
        os.environ.pop("CELERIAC_BROKER_URL", None)
        sys.path.remove(str(tmp_path))
