"""``task.map``, ``task.starmap`` and ``task.chunks`` over the built-in tasks."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac, chunks, group
from celeriac.canvas import xmap
from celeriac.canvas.builtins import BUILTIN_TASKS
from celeriac.exceptions import ConfigurationError, NotRegistered


def test_every_app_has_the_builtin_tasks(app: Celeriac) -> None:
    assert set(BUILTIN_TASKS) <= set(app.tasks)
    assert set(BUILTIN_TASKS) <= set(Celeriac("another", set_as_current=False).tasks)


def test_map_and_starmap(app: Celeriac, worker: Any) -> None:
    worker()
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    assert tsum.map([[1, 2], [3, 4]]).delay().get(timeout=10) == [3, 7]
    assert add.starmap([(1, 2), (3, 4)]).delay().get(timeout=10) == [3, 7]
    assert xmap(add.s(100), [1, 2]).delay().get(timeout=10) == [101, 102]


def test_chunks_is_a_group_of_starmaps(app: Celeriac, worker: Any) -> None:
    worker(threads=3)
    add = app.tasks["t.add"]
    job = add.chunks(zip(range(10), range(10), strict=True), 3)
    assert isinstance(job, group) and len(job) == 4
    assert [t.task for t in job.group()] == ["celeriac.starmap"] * 4
    result = job.apply_async()
    assert result.get(timeout=10) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]


def test_chunks_refuses_a_bad_size(app: Celeriac) -> None:
    with pytest.raises(ConfigurationError, match="positive int"):
        chunks(app.tasks["t.add"].s(), [(1, 2)], 0)


def test_map_of_an_unknown_task_fails_clearly(app: Celeriac, worker: Any) -> None:
    worker()
    from celeriac import signature

    with pytest.raises(NotRegistered, match="nobody.knows"):
        xmap(signature("nobody.knows", app=app), [1]).delay().get(timeout=10)
