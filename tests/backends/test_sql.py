"""What the SQL result backend promises beyond the shared suite: its tables, its
statements, its settings, its errors, and waits told by NOTIFY on PostgreSQL."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac, states
from celeriac.backends import connect_backend
from celeriac.backends.base import TaskMeta
from celeriac.config import Settings
from celeriac.exceptions import BackendError, ConfigurationError, MissingExtraError
from celeriac.serialization import Codec
from tests.needs import need_module

from .conftest import BACKENDS
from .env import BackendEnv
from .helpers import SPAWN, connect_and_store

sa = need_module("sqlalchemy", "sql", module_level=True)
from celeriac.sql import backend as sql_backend  # noqa: E402 - after the check above
from celeriac.sql import expiry as sql_expiry  # noqa: E402

SQL_KINDS = ["sql-sqlite", "sql-postgresql", "sql-mariadb"]


@pytest.fixture(params=SQL_KINDS)
def sql_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendEnv]:
    env = BACKENDS[request.param].open(request, tmp_path)
    yield env
    env.close()


def _connect(env: BackendEnv, expires: float = 3600.0) -> sql_backend.SQLBackend:
    backend = env.connect(expires=expires)
    assert isinstance(backend, sql_backend.SQLBackend)
    return backend


def _count(backend: sql_backend.SQLBackend, table: Any) -> int:
    with backend.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _fill(backend: sql_backend.SQLBackend, batches: int, batch: int = 7) -> None:
    for _ in range(batches):
        ids = [uuid.uuid4().hex for _ in range(batch)]
        backend.store([TaskMeta(i, states.SUCCESS, result=i) for i in ids])
        backend.save_group(uuid.uuid4().hex, ids)
        backend.chord_part_done(uuid.uuid4().hex, 0, 2)


def test_expired_rows_are_swept_as_the_backend_writes(
    sql_env: BackendEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_expiry, "SWEEP_EVERY", 50)
    backend = _connect(sql_env, expires=0.05)
    _fill(backend, 20)
    time.sleep(0.1)  # everything so far has expired

    _fill(backend, 20)  # more than SWEEP_EVERY writes: at least one sweep

    tables = backend.tables
    assert _count(backend, tables.task) <= 20 * 7  # at most the second half
    assert _count(backend, tables.group) <= 20 and _count(backend, tables.chord) <= 20
    assert _count(backend, tables.chord_parts) == _count(backend, tables.chord)  # no orphans


def test_the_task_table_has_the_columns_celery_users_query(sql_env: BackendEnv) -> None:
    backend = _connect(sql_env)
    task_id = uuid.uuid4().hex
    done_at = time.time()
    backend.store(
        [
            TaskMeta(
                task_id,
                states.FAILURE,
                result={"exc_type": "KeyError"},
                traceback="Traceback ...",
                name="proj.tasks.add",
                args=[1, 2],
                kwargs={"x": 3},
                worker="w1@host",
                retries=2,
                queue="q1",
                date_done=done_at,
            )
        ]
    )
    columns = ["status", "result", "traceback", "date_done", "name"]
    columns += ["args", "kwargs", "worker", "retries", "queue"]
    table = backend.tables.task

    with backend.engine.connect() as conn:
        query = sa.select(*(table.c[name] for name in columns)).where(table.c.task_id == task_id)
        row = conn.execute(query).one()

    assert row.status == "FAILURE" and row.traceback == "Traceback ..."
    assert (row.name, row.worker, row.retries, row.queue) == ("proj.tasks.add", "w1@host", 2, "q1")
    utc_done_at = datetime.fromtimestamp(done_at, timezone.utc).replace(tzinfo=None)
    assert abs((row.date_done - utc_done_at).total_seconds()) < 0.001  # naive UTC, as Celery
    assert b"KeyError" in bytes(row.result) and b"[1,2]" in bytes(row.args).replace(b" ", b"")


def test_a_batch_of_records_is_one_upsert_execution(sql_env: BackendEnv) -> None:
    backend = _connect(sql_env)
    backend.get("connect")  # tables exist: only the store's statements are counted
    statements: list[str] = []
    sa.event.listen(
        backend.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    ids = [uuid.uuid4().hex for _ in range(200)]

    backend.store([TaskMeta(i, states.SUCCESS, result=n) for n, i in enumerate(ids)])
    backend.store([TaskMeta(i, states.SUCCESS, result=-n) for n, i in enumerate(ids)])

    writes = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 2, statements  # one per store, the second replacing every row
    assert {i: m.result for i, m in backend.get_many(ids).items()} == {
        i: -n for n, i in enumerate(ids)
    }


def test_processes_starting_together_create_the_tables_once(sql_env: BackendEnv) -> None:
    go, out = SPAWN.Event(), SPAWN.Queue()
    ids = [uuid.uuid4().hex for _ in range(4)]
    procs = [SPAWN.Process(target=connect_and_store, args=(sql_env, i, go, out)) for i in ids]
    for proc in procs:
        proc.start()
    try:
        go.set()
        stored = {out.get(timeout=60) for _ in procs}
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()

    assert stored == set(ids)
    assert all(proc.exitcode == 0 for proc in procs)
    assert set(_connect(sql_env).get_many(ids)) == set(ids)


def test_wait_on_postgresql_is_told_by_notify_not_by_polling(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = BACKENDS["sql-postgresql"].open(request, tmp_path)
    waiter, writer = _connect(env), _connect(env)
    task_id = uuid.uuid4().hex
    reads: list[float] = []
    real_get_many = waiter.get_many

    def counting_get_many(task_ids: Any) -> Any:
        reads.append(time.monotonic())
        return real_get_many(task_ids)

    waiter.get_many = counting_get_many  # type: ignore[method-assign]

    def store_later() -> None:
        time.sleep(1.0)
        writer.store([TaskMeta(task_id, states.STARTED)])  # not ready: no notice
        time.sleep(0.5)
        writer.store([TaskMeta(task_id, states.SUCCESS, result="told")])

    thread = threading.Thread(target=store_later)
    thread.start()
    try:
        meta = waiter.wait(task_id, timeout=20)
        woke_at = time.monotonic()
    finally:
        thread.join()
        env.close()

    assert meta.result == "told"
    assert len(reads) == 2  # once before listening, once when told: a poll reads ~20 times
    assert woke_at - reads[0] < 5


# -- URLs, drivers and settings ----------------------------------------------------


def test_unknown_or_unsupported_dialects_say_what_is_supported() -> None:
    with pytest.raises(ConfigurationError, match="db\\+postgresql://"):
        connect_backend("db+oracle://scott@host/db", Settings(), Codec())
    with pytest.raises(ConfigurationError, match="no driver 'nosuch'"):
        connect_backend("db+postgresql+nosuch://u@h/db", Settings(), Codec())
    with pytest.raises(ConfigurationError, match="db\\+<SQLAlchemy URL>"):
        connect_backend("postgres://u@h/db", Settings(), Codec())


def test_a_missing_driver_names_the_packages_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'psycopg\[binary\]'"):
        connect_backend("db+postgresql://u:secret@h/db", Settings(), Codec())
    with pytest.raises(ConfigurationError, match="'psycopg' package") as caught:
        connect_backend("db+postgresql+psycopg://u:secret@h/db", Settings(), Codec())
    assert "secret" not in str(caught.value)


def test_a_url_without_a_driver_uses_an_installed_one(tmp_path: Path) -> None:
    backend = sql_backend.SQLBackend(
        Codec(), "db+postgresql://u@h/db", create_tables_at_setup=False
    )
    assert backend.engine.dialect.driver in ("psycopg", "psycopg2")
    backend.close()


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="file path"):
        connect_backend("db+sqlite://", Settings(), Codec())


def test_without_sqlalchemy_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("celeriac.sql.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(MissingExtraError, match=r"celeriac\[sql\]"):
        connect_backend("db+sqlite:///x.sqlite3", Settings(), Codec())


def test_table_settings_name_the_tables(tmp_path: Path) -> None:
    app = Celeriac(
        "t",
        broker="memory://",
        backend=f"db+sqlite:///{tmp_path}/r.sqlite3",
        set_as_current=False,
        database_table_prefix="proj_",
        database_table_names={"task": "proj_results"},
        database_engine_options={"pool_size": 2},
    )
    backend = app.connect_backend()
    assert isinstance(backend, sql_backend.SQLBackend)
    backend.store([TaskMeta("t1", states.SUCCESS, result=1)])

    tables = set(sa.inspect(backend.engine).get_table_names())
    assert tables == {"proj_results", "proj_groupmeta", "proj_chord", "proj_chord_parts"}
    assert backend.engine.pool.size() == 2  # type: ignore[attr-defined]
    backend.close()


def test_tables_wait_for_first_use_when_not_created_at_setup(tmp_path: Path) -> None:
    url = f"db+sqlite:///{tmp_path}/r.sqlite3"
    backend = sql_backend.SQLBackend(Codec(), url, create_tables_at_setup=False)
    assert sa.inspect(backend.engine).get_table_names() == []

    assert backend.get("unknown").state == states.PENDING

    assert "celeriac_taskmeta" in sa.inspect(backend.engine).get_table_names()
    backend.close()


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("database_table_names", {"tasks": "x"}, "'task', 'group', 'chord'"),
        ("database_table_schemas", ["task"], "'task', 'group', 'chord'"),
        ("database_engine_options", "pool_size=2", "dict of keyword arguments"),
        ("database_create_tables_at_setup", "yes", "True or False"),
        ("database_table_prefix", "", "non-empty string"),
    ],
)
def test_bad_database_settings_say_what_is_expected(setting: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings().update({setting: value})


def test_bad_engine_options_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="database_engine_options"):
        sql_backend.SQLBackend(
            Codec(), f"db+sqlite:///{tmp_path}/r.sqlite3", engine_options={"no_such_option": 1}
        )


def _store_in_child(backend: Any, task_ids: list[str]) -> None:
    for task_id in task_ids:
        backend.store([TaskMeta(task_id, states.SUCCESS, result="child")])
    assert backend.wait(task_ids[-1], timeout=10).result == "child"
    backend.close()


def test_a_backend_made_before_a_fork_works_in_both_processes(sql_env: BackendEnv) -> None:
    import multiprocessing

    # No pre-ping: a connection the child broke would not be quietly replaced.
    sql_env.options["engine_options"] = {"pool_pre_ping": False}
    backend = _connect(sql_env)
    before = uuid.uuid4().hex
    backend.store([TaskMeta(before, states.SUCCESS, result="parent")])
    assert backend.wait(before, timeout=10).result == "parent"  # pooled and listening
    in_child = [uuid.uuid4().hex for _ in range(50)]
    in_parent = [uuid.uuid4().hex for _ in range(50)]

    child = multiprocessing.get_context("fork").Process(
        target=_store_in_child, args=(backend, in_child)
    )
    child.start()
    for task_id in in_parent:  # at the same time as the child
        backend.store([TaskMeta(task_id, states.SUCCESS, result="parent again")])
    child.join(30)

    assert child.exitcode == 0
    assert backend.get(in_child[-1]).result == "child"
    assert backend.wait(in_parent[-1], timeout=10).result == "parent again"
    assert len(backend.get_many(in_child + in_parent)) == 100


def test_an_unreachable_database_at_setup_fails_on_use_not_at_connect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "db+postgresql+psycopg://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    backend = sql_backend.SQLBackend(Codec(), url)
    assert "created on first use" in caplog.text

    with pytest.raises(BackendError, match="127.0.0.1"):
        backend.get("some-task")
    backend.close()
