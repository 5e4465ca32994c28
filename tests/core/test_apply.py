"""``Task.apply``: a run here and now honours what makes sense for it and refuses the rest."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from celeriac import Celeriac, states
from celeriac.exceptions import ConfigurationError
from celeriac.task import Task


class Boom(Exception):
    pass


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("apply", broker=url, backend=url, set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def seen(app: Celeriac) -> list[Any]:
    """What the tasks below saw of their request, or were called with."""
    calls: list[Any] = []

    @app.task(name="t.look", bind=True, max_retries=3)
    def look(self: Task[Any, Any], a: int, b: int = 0) -> int:
        calls.append((self.request.id, self.request.headers, self.request.retries))
        return a + b

    @app.task(name="t.boom")
    def boom() -> None:
        raise Boom("boom")

    @app.task(name="t.record")
    def record(*args: Any) -> None:
        calls.append(args)

    return calls


def test_task_id_headers_and_retries_reach_the_request(app: Celeriac, seen: list[Any]) -> None:
    result = app.tasks["t.look"].apply(
        [1], MappingProxyType({"b": 2}), task_id="id-1", headers={"h": 1}, retries=2
    )
    assert (result.id, result.get()) == ("id-1", 3)
    assert seen == [("id-1", {"h": 1}, 2)]


def test_throw_says_whether_a_failure_raises_here(app: Celeriac, seen: list[Any]) -> None:
    boom = app.tasks["t.boom"]
    assert app.conf.task_eager_propagates
    result = boom.apply(throw=False)
    assert result.state == states.FAILURE and isinstance(result.result, Boom)
    app.conf.task_eager_propagates = False
    with pytest.raises(Boom):
        boom.apply(throw=True)
    assert boom.apply().state == states.FAILURE  # the setting, when throw is not given


def test_link_and_link_error_run_after_the_task(app: Celeriac, seen: list[Any]) -> None:
    record = app.tasks["t.record"]
    assert app.tasks["t.look"].apply((1, 1), link=record.s("after")).get() == 2
    failed = app.tasks["t.boom"].apply(link_error=record.si("failed"), throw=False)
    assert failed.state == states.FAILURE
    assert seen[1:] == [(2, "after"), ("failed",)]  # the result first, as from a worker


def test_apply_async_always_eager_keeps_the_headers(app: Celeriac, seen: list[Any]) -> None:
    app.conf.task_always_eager = True
    app.tasks["t.look"].apply_async((1,), headers={"h": 2}, task_id="id-2")
    assert seen == [("id-2", {"h": 2}, 0)]


def test_unknown_and_sending_options_are_refused_clearly(app: Celeriac, seen: list[Any]) -> None:
    look = app.tasks["t.look"]
    with pytest.raises(
        ConfigurationError, match=r"t.look.apply\(\).*unknown option\(s\) \['thorw'\]"
    ):
        look.apply((1,), thorw=False)
    with pytest.raises(ConfigurationError, match=r"\['countdown', 'queue'\] say how to send it"):
        look.apply((1,), queue="q", countdown=5)
    assert seen == []
