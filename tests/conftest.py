"""Fixtures every test directory may use; keep them small and generic.

* ``eventually(condition, timeout=..., what=...)``: poll a condition with a
  bounded deadline (never a sleep that hopes), returning its first truthy value.
* A missing server, tool or package: ``tests.needs.missing(reason)`` skips locally
  and fails when ``CI`` is set.
* ``sqlite_url``: a ``sqlite:////abs/path`` URL of a fresh file in ``tmp_path``.
* ``rabbitmq_vhosts``: the session's pool of fresh RabbitMQ virtual hosts
  (``.take()`` one; see ``tests/vhosts.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.vhosts import Vhosts


class Eventually(Protocol):
    def __call__(
        self, condition: Callable[[], Any], timeout: float = ..., what: str = ...
    ) -> Any: ...


def _eventually(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    interval = 0.001
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)
        interval = min(interval * 2, 0.02)


@pytest.fixture
def eventually() -> Eventually:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    return _eventually


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file, as a broker or backend URL."""
    return f"sqlite:///{tmp_path}/celeriac.sqlite3"


@pytest.fixture(scope="session")
def rabbitmq_vhosts() -> Iterator[Vhosts]:
    """Fresh RabbitMQ virtual hosts, one per ``take()``, all deleted when the session ends."""
    vhosts = Vhosts()
    yield vhosts
    vhosts.close()
