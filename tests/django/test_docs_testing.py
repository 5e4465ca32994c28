"""The Django example of docs/testing.md, run as written (``<!-- test: django -->``)."""

from __future__ import annotations

import time
from typing import Any

from tests.testing.docpage import EACH_EXAMPLE_WITHIN, blocks


def test_the_django_example_of_the_testing_page(app: Any) -> None:
    examples = [b for b in blocks() if b.kind == "django"]
    assert examples, "docs/testing.md has no Django example"
    for block in examples:
        scope: dict[str, Any] = {"__name__": "docs_testing_django"}
        exec(block.compiled(), scope)
        tests = [value for name, value in scope.items() if name.startswith("test_")]
        assert tests, f"the block at docs/testing.md:{block.line} defines no test"
        for test in tests:
            started = time.monotonic()
            test()
            assert time.monotonic() - started < EACH_EXAMPLE_WITHIN, test.__name__
