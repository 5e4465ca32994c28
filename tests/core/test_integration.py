"""A web framework's integration lends the core its transactions and its tasks modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from celeriac import Celeriac
from celeriac import integration as integration_module
from celeriac.integration import Integration, register_integration


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("t", broker=url, backend=url, set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Callable[[], None], str | None]]:
    """A registered integration whose transaction never commits by itself."""
    waiting: list[tuple[Callable[[], None], str | None]] = []

    def on_commit(send: Callable[[], None], using: str | None) -> None:
        waiting.append((send, using))

    def discover(app: Celeriac, related_name: str) -> list[str]:
        return [f"found.{related_name}"]

    monkeypatch.setattr(integration_module, "_registered", None)
    register_integration(Integration("fake", on_commit=on_commit, discover_tasks=discover))
    return waiting


def test_delay_on_commit_waits_for_the_integrations_transaction(
    app: Celeriac, commits: list[tuple[Callable[[], None], str | None]]
) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    # Given an integration, when a task is sent on commit, expect nothing sent yet
    result = add.apply_async_on_commit((1, 2), using="other")
    assert app.broker.stats("celeriac").total_waiting == 0
    assert [using for _, using in commits] == ["other"]
    # When the transaction commits, expect the message, with the id given at the call
    commits[0][0]()
    assert app.broker.stats("celeriac").total_waiting == 1
    assert app.broker.fetch(["celeriac"], "c1", 1, 1.0)[0].id == result.id


def test_without_an_integration_delay_on_commit_sends_at_once(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integration_module, "_registered", None)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    assert app.integration is None
    add.delay_on_commit(1, 2)
    assert app.broker.stats("celeriac").total_waiting == 1


def test_autodiscover_without_packages_asks_the_integration(
    app: Celeriac, commits: list[tuple[Callable[[], None], str | None]]
) -> None:
    assert app.autodiscover_tasks(related_name="jobs") == ["found.jobs"]
