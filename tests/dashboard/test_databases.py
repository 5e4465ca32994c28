"""Opening the store's database: URLs, drivers, and PostgreSQL without pg_trgm."""

from __future__ import annotations

import importlib
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from celeriac.dashboard.database import SQLiteDatabase, engine_url, open_database, sqlite_path
from celeriac.dashboard.queries import TaskFilter, list_tasks
from celeriac.dashboard.store import Store
from celeriac.events.event import Event
from celeriac.exceptions import ConfigurationError, MissingExtraError
from tests.needs import need_database

from .stores import POSTGRES_URL, StoreEnv, store_env

__all__ = ["store_env"]  # the fixture, parametrised over SQLite, PostgreSQL and MariaDB


def test_sqlite_paths_and_urls_open_a_file(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/a.sqlite3") == f"{tmp_path}/a.sqlite3"
    assert sqlite_path("sqlite:///relative.sqlite3") == "relative.sqlite3"
    assert sqlite_path("sqlite://") == ":memory:"
    database = open_database(tmp_path / "b.sqlite3")
    assert isinstance(database, SQLiteDatabase)
    database.close()


def test_other_schemes_are_refused_with_what_to_give() -> None:
    with pytest.raises(ConfigurationError, match=r"postgresql\+psycopg://.*mysql\+pymysql://"):
        open_database("oracle://scott:tiger@db/orcl")


def test_a_missing_driver_says_what_to_install() -> None:
    assert engine_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("mariadb://u@h/db").drivername == "mariadb+pymysql"
    with pytest.raises(ConfigurationError, match=r"psycopg2 driver: pip install 'psycopg2'"):
        engine_url("postgresql+psycopg2://u:secret@h/db")


@pytest.fixture
def unprivileged_url() -> Iterator[str]:
    """A fresh PostgreSQL database without pg_trgm, and a role that may create tables in it
    but not extensions."""
    need_database(POSTGRES_URL)
    import sqlalchemy as sa

    from tests.django.pg import server_lock

    name = f"celeriac_dash_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with server_lock():
        try:
            with admin.connect() as db:
                db.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
                db.execute(sa.text(f"CREATE DATABASE {name}"))
            inside = admin.url.set(database=name)
            schema = sa.create_engine(inside, isolation_level="AUTOCOMMIT")
            with schema.connect() as db:
                db.execute(sa.text(f"GRANT USAGE, CREATE ON SCHEMA public TO {name}"))
            schema.dispose()
            yield inside.set(username=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as db:
                db.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                db.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
            admin.dispose()


def test_postgresql_without_pg_trgm_warns_and_searches_by_scanning(
    unprivileged_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Given a role that may not create the pg_trgm extension, When the store opens,
    Expect a warning saying what to run, and searches that still find their rows."""
    with caplog.at_level(logging.WARNING, logger="celeriac.dashboard"):
        store = Store(unprivileged_url)
    try:
        assert store.search_index == ""
        assert "CREATE EXTENSION pg_trgm" in caplog.text
        sent = Event.from_dict(
            {"type": "task-sent", "uuid": "t1", "name": "proj.add", "args": ["needle-in-hay"]}
        )
        store.apply([sent])
        found = list_tasks(store, TaskFilter(search="NEEDLE-in"))
        assert [t["id"] for t in found] == ["t1"]
        assert list_tasks(store, TaskFilter(search="absent-term")) == []
    finally:
        store.close()


def test_without_sqlalchemy_the_store_names_the_dashboard_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given SQLAlchemy not installed, Expect importing the store (on any database, SQLite
    too) refused with the extra to install."""
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    for name in [m for m in sys.modules if m.startswith("celeriac.dashboard")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtraError, match=r"celeriac\[dashboard\]"):
        importlib.import_module("celeriac.dashboard.store")


def test_a_statement_the_database_refuses_leaves_the_store_working(store_env: StoreEnv) -> None:
    """Given a read and a batch that the database refuses, Expect each error raised and
    the store reading and writing as before afterwards (the shared SQLite connection too)."""
    store = store_env.open()
    with pytest.raises(sa.exc.DBAPIError):
        store.query(sa.select(sa.column("nope")).select_from(sa.table("no_such_table")))
    with pytest.raises(sa.exc.DBAPIError), store.db.transaction() as connection:
        connection.execute(sa.select(sa.column("nope")).select_from(sa.table("no_such_table")))
    store.apply([Event.from_dict({"type": "task-sent", "uuid": "t1", "name": "proj.add"})])
    assert [t["id"] for t in list_tasks(store, TaskFilter())] == ["t1"]
