"""What a test needs from the machine: a server, a tool, an optional package.

When it is missing the test skips locally, with the reason, and fails when
``CI`` is set: CI has everything installed, so a skip there would hide a test
that did not run.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def missing(reason: str, module_level: bool = False) -> NoReturn:
    """Skip (locally) or fail (in CI) because something the test needs is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing server, tool or package is a failure)")
    pytest.skip(reason, allow_module_level=module_level)


def need_module(name: str, extra: str, module_level: bool = False) -> ModuleType:
    """Import ``name``, or :func:`missing` naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} is not installed: pip install 'celeriac[{extra}]'", module_level)


_unreachable: dict[str, str | None] = {}  # database URL -> why it cannot be reached (None: it can)


def need_database(url: str) -> None:
    """A SQLAlchemy URL's database must answer (checked once per URL and test process)."""
    sa = need_module("sqlalchemy", "sql")
    if url not in _unreachable:
        from celeriac.urls import redact

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect():
                _unreachable[url] = None
        except Exception as exc:
            _unreachable[url] = f"{redact(url)} is not reachable: {exc}"
        finally:
            engine.dispose()
    reason = _unreachable[url]
    if reason is not None:
        missing(reason)
