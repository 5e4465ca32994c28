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
