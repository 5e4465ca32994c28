"""``@app.task(pydantic=True)``, as Celery 5.5: given its documented example
(tests/compat/pydantic_app.py), a real worker validates the dict into the model and
stores the returned model as a dict; a value that does not validate fails the task."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from celeriac import Celeriac
from tests.compat.helpers import project_module
from tests.e2e.workers import StartWorker


def test_celerys_pydantic_example_on_a_real_worker(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    with project_module("pydantic_app", tmp_path) as module:
        module.app.conf.update(broker_url=url, result_backend=url)
        start_worker("pydantic_app", "-P", "threads", "-c", "1", env=env)
        assert module.x.delay({"value": 1}).get(timeout=20) == {"value": "example: 1"}
        failed = module.x.delay({"value": "not a number"})
        with pytest.raises(Exception, match="validation error"):
            failed.get(timeout=20)
        module.app.close()


class Point(BaseModel):
    x: int


def test_options_and_eager_runs() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False, task_always_eager=True)

    @app.task(pydantic=True, pydantic_strict=True)
    def shift(point: Point, by: int = 1) -> Point:
        return Point(x=point.x + by)

    assert shift.delay({"x": 1}, by=2).get() == {"x": 3}
    assert shift(Point(x=1)) == {"x": 2}  # a model passes as it is
    with pytest.raises(ValidationError):
        shift.delay({"x": "1"})  # strict: no str -> int
