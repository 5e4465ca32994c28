"""The collector and its store: task rows from events, resuming, retention, queries."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.dashboard import queries
from celeriac.dashboard.collector import Collector
from celeriac.dashboard.queries import TaskFilter, get_task, list_tasks, overview, workers
from celeriac.dashboard.store import Store

from .helpers import emit, lifecycle
from .stores import StoreEnv, store_env

__all__ = ["store_env"]  # the fixture, parametrised over SQLite, PostgreSQL and MariaDB


def _app(tmp_path: Path) -> Celeriac:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    return Celeriac("t", broker=url, backend=url, set_as_current=False)


def test_a_task_row_follows_its_events_even_out_of_order(
    tmp_path: Path, store_env: StoreEnv
) -> None:
    app = _app(tmp_path)
    store = store_env.open()
    now = time.time()
    # Given the worker's events arrive before the producer's task-sent
    emit(app, "task-received", uuid="t1", name="proj.add", hostname="w1", timestamp=now + 1)
    emit(app, "task-succeeded", uuid="t1", hostname="w1", result=3, runtime=0.5, timestamp=now + 2)
    emit(
        app,
        "task-sent",
        uuid="t1",
        name="proj.add",
        args=[1, 2],
        kwargs={"k": 1},
        queue="q1",
        timestamp=now,
    )
    # When the collector reads them
    assert Collector(app, store).drain() == 3
    # Expect SUCCESS with the arguments, the result, and the timeline in time order
    task = get_task(store, "t1")
    assert task is not None
    assert (task["state"], task["args"], task["kwargs"], task["result"]) == (
        "SUCCESS",
        [1, 2],
        {"k": 1},
        3,
    )
    assert (task["worker"], task["queue"], task["runtime"]) == ("w1", "q1", 0.5)
    assert [e[0] for e in task["timeline"]] == ["task-sent", "task-received", "task-succeeded"]
    app.close()


def test_a_restarted_collector_resumes_after_the_stored_position(
    tmp_path: Path, store_env: StoreEnv
) -> None:
    app = _app(tmp_path)
    store = store_env.open()
    lifecycle(app, "a")
    Collector(app, store).drain()
    store.close()
    # Given a new store on the same file and more events meanwhile
    lifecycle(app, "b", outcome="task-failed")
    store = store_env.open()
    # When a new collector starts, Expect it reads only the new events
    assert Collector(app, store).drain() == 4
    assert [t["id"] for t in list_tasks(store, TaskFilter())] == ["b", "a"]
    assert len(get_task(store, "a")["timeline"]) == 4  # type: ignore[index]
    app.close()


def test_lists_filter_and_search(tmp_path: Path, store_env: StoreEnv) -> None:
    app = _app(tmp_path)
    store = store_env.open()
    base = time.time() - 100
    for i in range(30):
        outcome = "task-failed" if i % 3 == 0 else "task-succeeded"
        lifecycle(
            app,
            f"t{i}",
            name=f"proj.n{i % 2}",
            outcome=outcome,
            at=base + i,
            worker=f"w{i % 5}",
            args=[f"needle{i}"],
        )
    Collector(app, store).drain()
    failed = list_tasks(store, TaskFilter(state="FAILURE", limit=100))
    assert {t["id"] for t in failed} == {f"t{i}" for i in range(0, 30, 3)}
    named = list_tasks(store, TaskFilter(name="proj.n1", worker="w1", limit=100))
    assert {t["id"] for t in named} == {"t1", "t11", "t21"}
    assert [t["id"] for t in list_tasks(store, TaskFilter(search="needle17"))] == ["t17"]
    assert list_tasks(store, TaskFilter(search="100%")) == []  # LIKE wildcards are literal
    page = list_tasks(store, TaskFilter(limit=10, offset=10))
    assert [t["id"] for t in page] == [f"t{i}" for i in range(19, 9, -1)]
    stats = overview(store)
    assert (stats["succeeded"], stats["failed"]) == (20, 10)
    assert stats["runtime"]["p50"] == 0.5
    app.close()


def test_retention_by_age_and_count_keeps_failures_longer(
    tmp_path: Path, store_env: StoreEnv
) -> None:
    app = _app(tmp_path)
    store = store_env.open(max_age=1000, max_tasks=5, failure_max_age=5000, max_failures=3)
    now = time.time()
    lifecycle(app, "old-ok", at=now - 2000)
    lifecycle(app, "old-fail", outcome="task-failed", at=now - 2000)
    for i in range(8):
        lifecycle(app, f"ok{i}", at=now - 100 + i)
        lifecycle(app, f"fail{i}", outcome="task-failed", at=now - 100 + i)
    Collector(app, store).drain()
    store.prune(now)
    kept = {t["id"] for t in list_tasks(store, TaskFilter(limit=100))}
    assert kept == {f"ok{i}" for i in range(3, 8)} | {f"fail{i}" for i in range(5, 8)}
    app.close()


def test_workers_from_heartbeats_go_offline_and_expire(tmp_path: Path, store_env: StoreEnv) -> None:
    app = _app(tmp_path)
    store = store_env.open(worker_forget_after=60)
    now = time.time()
    emit(
        app,
        "worker-heartbeat",
        hostname="w1",
        freq=2.0,
        active=1,
        pool_size=4,
        queues=["celeriac"],
        timestamp=now,
    )
    emit(app, "worker-heartbeat", hostname="w2", freq=2.0, timestamp=now - 30)
    emit(app, "worker-offline", hostname="w3", freq=2.0, timestamp=now)
    emit(app, "worker-heartbeat", hostname="w4", freq=2.0, timestamp=now - 120)
    Collector(app, store).drain()
    store.prune(now)
    seen = {w["hostname"]: w["alive"] for w in workers(store, now)}
    assert seen == {"w1": True, "w2": False, "w3": False}
    app.close()


def _found(store: Store, term: str) -> set[str]:
    return {t["id"] for t in list_tasks(store, TaskFilter(search=term, limit=100))}


def test_search_index_follows_the_rows_through_updates_and_retention(
    tmp_path: Path, store_env: StoreEnv
) -> None:
    """Given tasks whose searched text changes (result, exception) and old tasks pruned,
    When searching, Expect exactly the rows that match now: no stale or missing hits."""
    app = _app(tmp_path)
    store = store_env.open(max_age=1000)
    indexes = {"sqlite": "fts5", "postgresql": "pg_trgm", "mariadb": "grams"}
    assert store.search_index == indexes[store_env.kind]
    now = time.time()
    lifecycle(app, "gone", at=now - 2000, args=["ancient-arg"])
    emit(app, "task-sent", uuid="pending", name="proj.mul", args=["Mixed-Case"], kwargs={"k": 7})
    lifecycle(app, "ok", at=now - 50, args=["alpha-beta"])
    lifecycle(app, "bad", outcome="task-failed", at=now - 40, args=['quo"te'])
    lifecycle(app, "long", at=now - 30, args=["the_quick_brown_fox_jumps_over_the_lazy_dog"])
    lifecycle(app, "split", at=now - 20, args=["xyz-yzw"])  # the trigrams of xyzw, apart
    Collector(app, store).drain()
    assert _found(store, "ancient-arg") == {"gone"}
    store.prune(now)
    assert _found(store, "ancient-arg") == set()  # the pruned row left the index too
    assert _found(store, "mixed-case") == {"pending"}  # case-insensitive, like LIKE
    assert _found(store, "proj.mul") == {"pending"}  # the name is searched
    assert _found(store, "ha-be") == {"ok"}  # any substring of three or more
    assert _found(store, "ValueError('bo") == {"bad"}  # the exception is searched
    assert _found(store, 'quo\\"te') == {"bad"}  # JSON-encoded quote in the args
    assert _found(store, "pending") == {"pending"}  # the id, exactly
    assert _found(store, "-b") == {"ok"}  # under three characters: a scan, same answer
    assert _found(store, "Quick_Brown_Fox_Jumps_Over") == {"long"}  # more trigrams than asked
    assert _found(store, "quick_brown_fox_jumps_over_a") == set()  # all of it must match
    assert _found(store, "xyzw") == set()  # every trigram in one row is not enough
    emit(app, "task-succeeded", uuid="pending", hostname="w1", result="fresh-result")
    Collector(app, store).drain()
    assert _found(store, "fresh-result") == {"pending"}
    assert _found(store, "nothing-like-this") == set()
    app.close()


def test_a_store_written_before_the_index_is_indexed_when_opened(tmp_path: Path) -> None:
    """Given a store whose search index is missing, When it is opened, Expect it searchable."""
    app = _app(tmp_path)
    path = tmp_path / "d.sqlite3"
    store = Store(path)
    lifecycle(app, "t1", args=["older-store"])
    Collector(app, store).drain()
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE tasks_fts")
    store = Store(path)
    assert _found(store, "older-store") == {"t1"}
    store.close()
    app.close()


def test_a_frequent_term_pages_the_same_from_the_newest_rows_or_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: StoreEnv
) -> None:
    """Given 30 tasks all matching and a window of the newest 10 rows, Expect every page
    of the search (in the window, across it, beyond it) to be the true newest-first page."""
    monkeypatch.setattr(queries, "RECENT_WINDOW", 10)
    app = _app(tmp_path)
    store = store_env.open()
    base = time.time() - 100
    for i in range(30):
        lifecycle(app, f"t{i:02d}", at=base + i, args=[f"common-{i % 2}"])
    Collector(app, store).drain()
    newest = [f"t{i:02d}" for i in range(29, -1, -1)]
    for offset, limit in ((0, 5), (5, 5), (8, 5), (20, 5), (25, 10)):
        page = list_tasks(store, TaskFilter(search="common", limit=limit, offset=offset))
        assert [t["id"] for t in page] == newest[offset : offset + limit], (offset, limit)
    odd = list_tasks(store, TaskFilter(search="common-1", limit=10))
    assert [t["id"] for t in odd] == [n for n in newest if int(n[1:]) % 2][:10]
    app.close()


def test_a_time_range_bounds_when_tasks_were_first_seen(
    tmp_path: Path, store_env: StoreEnv
) -> None:
    """Given tasks first seen a second apart, Expect since inclusive, until exclusive,
    with the other filters and search, newest first."""
    app = _app(tmp_path)
    store = store_env.open()
    base = time.time() - 1000
    for i in range(10):
        lifecycle(app, f"t{i}", at=base + i * 10, args=[f"range-{i % 2}"])
    Collector(app, store).drain()
    window = TaskFilter(since=base + 20, until=base + 60, limit=100)
    assert [t["id"] for t in list_tasks(store, window)] == ["t5", "t4", "t3", "t2"]
    odd = TaskFilter(since=base + 20, until=base + 60, search="range-1", limit=100)
    assert [t["id"] for t in list_tasks(store, odd)] == ["t5", "t3"]
    assert list_tasks(store, TaskFilter(since=base + 100)) == []
    app.close()


def test_a_failing_batch_stores_nothing_not_even_its_position(
    tmp_path: Path, store_env: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a batch whose worker rows fail after its task rows were written, Expect the
    whole batch rolled back: no task row, the old position, and the next try stores it."""
    app = _app(tmp_path)
    store = store_env.open()
    lifecycle(app, "first")
    Collector(app, store).drain()
    position = store.position()
    lifecycle(app, "second")
    emit(app, "worker-heartbeat", hostname="w1", freq=2.0)

    def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "_apply_workers", broken)
    with pytest.raises(RuntimeError):
        Collector(app, store).drain()
    assert get_task(store, "second") is None
    assert store.position() == position
    monkeypatch.undo()
    assert Collector(app, store).drain() == 5
    assert get_task(store, "second") is not None
    assert [w["hostname"] for w in workers(store)] == ["w1"]
    app.close()


def test_long_names_and_unicode_are_stored_and_found(tmp_path: Path, store_env: StoreEnv) -> None:
    """Given a worker name longer than MySQL's key columns hold and non-ASCII arguments,
    Expect the batch stored (the name cut to 255 characters there) and the text found."""
    app = _app(tmp_path)
    store = store_env.open()
    long_worker = "w" * 300
    lifecycle(app, "t1", worker=long_worker, args=["café-crème ☕"])
    Collector(app, store).drain()
    task = get_task(store, "t1")
    assert task is not None
    assert task["worker"] in (long_worker, long_worker[:255])
    assert task["args"] == ["café-crème ☕"]
    assert _found(store, "é-cr") == {"t1"}
    app.close()


def test_loaded_rows_replace_stored_ones_and_are_searchable(store_env: StoreEnv) -> None:
    """Given rows written with Store.load (an import), Expect them listed, searchable,
    and a second load of the same id to replace the row (its old text no longer found)."""
    store = store_env.open()
    now = time.time()
    rows = [
        {"id": f"imp{i}", "name": "proj.imported", "state": "SUCCESS", "args": [f"batch-{i}"],
         "seen": now - 10 + i, "updated": now - 10 + i, "rank": 4, "timeline": []}
        for i in range(3)
    ]  # fmt: skip
    store.load(rows)
    assert [t["id"] for t in list_tasks(store, TaskFilter(name="proj.imported"))] == [
        "imp2",
        "imp1",
        "imp0",
    ]
    assert _found(store, "batch-1") == {"imp1"}
    store.load([{**rows[1], "args": ["renamed"]}])
    assert _found(store, "batch-1") == set()
    assert _found(store, "renamed") == {"imp1"}
    assert get_task(store, "imp1")["args"] == ["renamed"]  # type: ignore[index]
