"""``celeriac dashboard --db``: a SQLite file or a database URL, and clear errors."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from celeriac.cli.main import cli
from tests.needs import need_database

from .stores import URLS, StoreEnv

APP = ["-A", "tests.cli.cli_app:app", "dashboard"]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ASGI apps the command would serve (the server itself does not start)."""
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: apps.append(server.config.app))
    return apps


@pytest.mark.parametrize("kind", list(URLS))
def test_db_takes_a_file_or_a_url(kind: str, served: list[Any], tmp_path: Path) -> None:
    """Given --db naming each database, Expect the dashboard's history stored there."""
    location = str(tmp_path / "history.sqlite3") if kind == "sqlite" else URLS[kind]
    if kind != "sqlite":
        need_database(location)
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    try:
        result = CliRunner().invoke(cli, [*APP, "--db", location, "--db-table-prefix", prefix])
        assert result.exit_code == 0, result.output
        [web] = served
        store = web.state.dashboard.store
        assert store.dialect.name == {"mariadb": "mysql"}.get(kind, kind)
        assert store.tables.tasks.name == f"{prefix}tasks"
        store.close()
    finally:
        StoreEnv(kind, location, prefix).close()
    if kind == "sqlite":
        assert (tmp_path / "history.sqlite3").exists()


def test_an_unsupported_url_says_what_to_give(served: list[Any]) -> None:
    result = CliRunner().invoke(cli, [*APP, "--db", "oracle://scott@db/orcl"])
    assert result.exit_code == 2
    assert "postgresql+psycopg://" in result.output and "mysql+pymysql://" in result.output
    assert served == []


def test_an_unreachable_database_is_named_without_its_password(served: list[Any]) -> None:
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/test"
    result = CliRunner().invoke(cli, [*APP, "--db", url])
    assert result.exit_code == 1
    assert "cannot open the dashboard's database postgresql+psycopg://postgres:***@" in (
        result.output
    )
    assert "secret" not in result.output
    assert served == []


def test_a_wrong_table_prefix_is_refused(served: list[Any], tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite3")
    result = CliRunner().invoke(cli, [*APP, "--db", db, "--db-table-prefix", "a-b;"])
    assert result.exit_code == 2
    assert "letters, digits and underscores" in result.output
