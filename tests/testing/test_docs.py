"""docs/testing.md, run as written: its examples become the tests of this module.

Each ```python block of the page carries a marker in the line above it:
``<!-- test: module NAME -->`` becomes the importable module NAME (the page's
``proj.tasks``), ``<!-- test: run -->`` blocks run here in order, in one module
(their fixtures and tests become this module's), ``<!-- test: django -->`` blocks
run in ``tests/django/test_docs_testing.py``, and ``<!-- test: shown -->`` blocks
are compiled only. Tracebacks point at the page's own lines.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

import celeriac.current as celeriac_current

from .docpage import EACH_EXAMPLE_WITHIN, PAGE, Block, blocks


def _as_module(name: str, block: Block) -> None:
    """Make ``name`` importable, its parent packages too, from the block's code."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if package not in sys.modules:
            module = types.ModuleType(package)
            module.__path__ = []
            sys.modules[package] = module
    module = types.ModuleType(name)
    module.__file__ = str(PAGE)
    sys.modules[name] = module
    previous = celeriac_current._current  # the page's app makes itself current
    try:
        exec(block.compiled(), module.__dict__)
    finally:
        celeriac_current._current = previous
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)


def _load(namespace: dict[str, Any]) -> None:
    names: set[str] = set()
    for block in blocks():
        kind, _, name = block.kind.partition(" ")
        if kind == "module":
            _as_module(name, block)
        elif kind == "run":
            scope: dict[str, Any] = {"__name__": __name__}
            exec(block.compiled(), scope)
            for attr, value in scope.items():
                if attr.startswith("test_"):
                    assert attr not in names, f"two examples of the page are named {attr}"
                    names.add(attr)
                    namespace[attr] = value
                elif attr.startswith("celeriac_"):  # fixtures: a later block may override
                    namespace[attr] = value
        else:
            assert kind in ("django", "shown"), f"unknown marker {block.kind!r}"
            block.compiled()


_load(globals())


@pytest.fixture(autouse=True)
def _under_a_second() -> Iterator[None]:
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < EACH_EXAMPLE_WITHIN, f"the example took {took:.2f}s"


def test_the_page_has_its_examples() -> None:
    kinds = [b.kind for b in blocks()]
    assert kinds.count("run") >= 7 and "django" in kinds and "module proj.tasks" in kinds
