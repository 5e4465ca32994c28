"""Fixtures every test directory may use; keep them small and generic.

* ``eventually(condition, timeout=..., what=...)``: poll a condition with a
  bounded deadline (never a sleep that hopes), returning its first truthy value.
* A missing server, tool or package: ``tests.needs.missing(reason)`` skips locally
  and fails when ``CI`` is set.
* ``sqlite_url``: a ``sqlite:////abs/path`` URL of a fresh file in ``tmp_path``.
* ``rabbitmq_vhosts``: the session's pool of fresh RabbitMQ virtual hosts
  (``.lend(request)`` one; see ``tests/vhosts.py``).
* At the start of a session, celeriac's modules are byte-compiled (see
  ``pytest_sessionstart``).
"""

from __future__ import annotations

import compileall
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

import celeriac
from tests.vhosts import Vhosts


def pytest_sessionstart(session: pytest.Session) -> None:
    """Byte-compile celeriac once, so that the hundreds of interpreters the tests start
    (workers, beats, the command line) load its modules instead of compiling each one:
    a tenth of a second of CPU per start. Where ``PYTHONDONTWRITEBYTECODE`` is set no
    interpreter writes the cache, but each reads it; an up-to-date cache is left as is,
    and a package that cannot be written to (installed read-only) is left alone."""
    compileall.compile_dir(Path(celeriac.__file__).parent, quiet=2)


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
    """Fresh RabbitMQ virtual hosts, one per ``lend(request)``, deleted soon after its test."""
    vhosts = Vhosts()
    yield vhosts
    vhosts.close()
