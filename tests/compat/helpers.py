"""Load an example app module from tests/compat into a sandbox directory, as a project
would have it, and forget it (and the signal receivers it connected) afterwards."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from celeriac import signals

HERE = Path(__file__).parent


@contextmanager
def project_module(name: str, directory: Path) -> Iterator[ModuleType]:
    """Copy ``tests/compat/<name>.py`` into ``directory`` and import it as ``name``."""
    shutil.copy(HERE / f"{name}.py", directory / f"{name}.py")
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(name, None)
        for value in vars(signals).values():
            if isinstance(value, signals.Signal):
                for receiver in value.receivers:
                    if getattr(receiver, "__module__", None) == name:
                        value.disconnect(receiver)


def records(path: Path) -> list[list[str]]:
    """The lines a test app recorded, split into words."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
