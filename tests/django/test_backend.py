"""The django-db:// result backend: the backend contract on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import states
from celeriac.backends.base import TaskMeta
from celeriac.exceptions import ConfigurationError

from .pg import throwaway_database


@pytest.fixture(scope="module")
def postgres_alias(project: dict[str, Any]) -> Iterator[str]:
    """A second database, ``pg``, on PostgreSQL, migrated."""
    from django.core.management import call_command
    from django.db import connections

    with throwaway_database() as settings_dict:
        both = {"default": connections.settings["default"], "pg": settings_dict}
        connections.settings["pg"] = connections.configure_settings(both)["pg"]
        try:
            call_command("migrate", "celeriac", database="pg", verbosity=0)
            yield "pg"
        finally:
            connections["pg"].close()
            del connections.settings["pg"]
            delattr(connections._connections, "pg")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, app: Any) -> Iterator[Any]:
    from celeriac.contrib.django.backend import DjangoBackend

    url = "django-db://"
    if request.param == "postgresql":
        url = f"django-db://{request.getfixturevalue('postgres_alias')}"
    found = DjangoBackend(app.codec, url, expires=60.0)
    yield found
    from celeriac.contrib.django.models import ChordPart, GroupResult, TaskResult

    for model in (TaskResult, GroupResult, ChordPart):
        model.objects.using(found.alias).all().delete()


def test_store_then_read_back(backend: Any) -> None:
    meta = TaskMeta(
        "t-1",
        states.SUCCESS,
        result={"answer": 42},
        name="proj.add",
        worker="w@h",
        date_done=time.time(),
    )
    backend.store([meta])
    got = backend.get("t-1")
    assert (got.state, got.result, got.name, got.worker) == (
        states.SUCCESS,
        {"answer": 42},
        "proj.add",
        "w@h",
    )
    assert backend.get("unknown").state == states.PENDING


def test_a_later_record_replaces_the_earlier_one(backend: Any) -> None:
    backend.store([TaskMeta("t-2", states.STARTED)])
    backend.store([TaskMeta("t-2", states.SUCCESS, result=3), TaskMeta("t-3", states.FAILURE)])
    assert backend.get_many(["t-2", "t-3"])["t-2"].result == 3
    assert backend.get("t-3").state == states.FAILURE


def test_forget_deletes(backend: Any) -> None:
    backend.store([TaskMeta("t-4", states.SUCCESS, result=1)])
    backend.forget(["t-4"])
    assert backend.get("t-4").state == states.PENDING


def test_wait_returns_when_ready(backend: Any) -> None:
    def finish_later() -> None:
        from django.db import connections

        time.sleep(0.1)  # the waiter must see the record appear, not find it there
        try:
            backend.store([TaskMeta("t-5", states.SUCCESS, result="done")])
        finally:
            connections.close_all()

    writer = threading.Thread(target=finish_later)
    writer.start()
    try:
        assert backend.wait("t-5", timeout=10).result == "done"
    finally:
        writer.join()


def test_results_expire_without_any_other_process(backend: Any) -> None:
    from celeriac.contrib.django.models import TaskResult

    backend.expires = 0.2
    backend.sweep_interval = 0.1
    backend.store([TaskMeta("old", states.SUCCESS, result=1)])
    deadline = time.monotonic() + 10
    while backend.get("old").state != states.PENDING:  # unreadable once expired
        assert time.monotonic() < deadline, "an expired result was still readable"
        time.sleep(0.05)
    assert TaskResult.objects.using(backend.alias).filter(pk="old").exists()
    while TaskResult.objects.using(backend.alias).filter(pk="old").exists():
        assert time.monotonic() < deadline, "the expired row was never deleted by writes"
        backend.store([TaskMeta("new", states.SUCCESS, result=2)])  # writes sweep now and then
        time.sleep(0.05)
    assert TaskResult.objects.using(backend.alias).filter(pk="new").exists()


def test_groups(backend: Any) -> None:
    backend.save_group("g-1", ["a", "b", "c"])
    assert backend.get_group("g-1") == ["a", "b", "c"]
    assert backend.get_group("nope") is None


def test_chord_joins_once_despite_redeliveries(backend: Any) -> None:
    fired = [backend.chord_part_done("c-1", i, 3) for i in (0, 1, 1, 0)]
    assert fired == [False, False, False, False]
    assert backend.chord_part_done("c-1", 2, 3) is True
    assert backend.chord_part_done("c-1", 2, 3) is False  # the last part, redelivered


def test_chord_joins_exactly_once_under_concurrency(backend: Any) -> None:
    # Given 8 threads (8 connections) reporting 40 parts, each part twice,
    # expect exactly one caller told the chord is complete.
    size, results, barrier = 40, [], threading.Barrier(8)

    def report(thread: int) -> None:
        from django.db import connections

        barrier.wait()
        try:
            for index in [i for i in range(size) if i % 8 == thread] * 2:
                results.append(backend.chord_part_done("c-2", index, size))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == size * 2
    assert results.count(True) == 1


def test_an_unknown_database_alias_is_a_clear_error(app: Any) -> None:
    from celeriac.contrib.django.backend import DjangoBackend

    with pytest.raises(ConfigurationError, match="'reports'.*not in DATABASES"):
        DjangoBackend(app.codec, "django-db://reports")
