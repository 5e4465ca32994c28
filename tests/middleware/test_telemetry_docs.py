"""docs/telemetry.md's Sentry receiver, run as written against a stand-in ``sentry_sdk``."""

from __future__ import annotations

import contextlib
import re
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.signals import task_failure
from celeriac.worker.job import Executor

DOC = Path(__file__).parents[2] / "docs" / "telemetry.md"


class Scope:
    def __init__(self) -> None:
        self.tags: dict[str, Any] = {}
        self.contexts: dict[str, Any] = {}

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value

    def set_context(self, key: str, value: Any) -> None:
        self.contexts[key] = value


@pytest.fixture
def sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[BaseException, Scope]]]:
    captured: list[tuple[BaseException, Scope]] = []
    current: list[Scope] = []
    module = types.ModuleType("sentry_sdk")

    @contextlib.contextmanager
    def new_scope() -> Iterator[Scope]:
        current.append(Scope())
        yield current[-1]

    def capture_exception(exc: BaseException) -> None:
        captured.append((exc, current[-1]))

    module.new_scope = new_scope  # type: ignore[attr-defined]
    module.capture_exception = capture_exception  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentry_sdk", module)
    yield captured


def test_the_sentry_receiver_reports_a_failure_once(
    sentry: list[tuple[BaseException, Scope]],
) -> None:
    (block,) = [
        b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "sentry" in b
    ]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    url = f"memory://telemetry-docs-{uuid.uuid4().hex}"
    app = Celeriac("docs", broker=url, backend=url, set_as_current=False)

    @app.task(name="t.broken", bind=True, max_retries=1)
    def broken(self: Any) -> None:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        raise ValueError("broken")

    try:
        result = broken.delay()
        executor = Executor(app, "w", "c", app.broker, app.backend)
        for _ in range(2):
            for delivery in app.broker.fetch(["celeriac"], "c", 10, 2.0):
                executor.process(delivery)
        executor.close()
    finally:
        task_failure.disconnect(namespace["report_to_sentry"])
        app.close()

    assert len(sentry) == 1  # the retry is not a failure
    exception, scope = sentry[0]
    assert isinstance(exception, ValueError)
    assert scope.tags == {"celeriac.task": "t.broken", "celeriac.task_id": result.id}
    assert scope.contexts == {"celeriac": {"retries": 1}}
