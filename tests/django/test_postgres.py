"""PostgreSQL: a worker survives a database restart; a forked child leaves the parent's
connection alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing

from .cluster import fresh_copy, manage, workers
from .pg import HOST, PORT, USER, server_lock, throwaway_database

pytestmark = pytest.mark.slow


def _cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        missing("restarting PostgreSQL needs root and pg_ctlcluster (Debian's postgresql)")
    return versions[-1]


def _pg_ctl(version: str, action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _accepting_connections(timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(host=HOST, port=PORT, user=USER, dbname="postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def pg_project(project: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh copy of the example on a throwaway PostgreSQL database, migrated; the
    server is this test's alone (it restarts it)."""
    with server_lock(exclusive=True), throwaway_database(lock=False) as database:
        env = {
            "DJANGO_SETTINGS_MODULE": "djcelery.settings",
            "BROKER_URL": f"sqlite:///{tmp_path / 'broker.sqlite3'}",
            "POSTGRES_HOST": database["HOST"],
            "POSTGRES_PORT": database["PORT"],
            "POSTGRES_USER": database["USER"],
            "POSTGRES_DB": database["NAME"],
        }
        copy = fresh_copy(tmp_path / "django")
        manage(copy, env, "migrate", "--noinput")
        yield {"dir": copy, "env": env}


def test_a_worker_survives_a_database_restart(pg_project: dict[str, Any]) -> None:
    version = _cluster_version()
    copy, env = pg_project["dir"], pg_project["env"]
    # Given a worker whose child holds a persistent connection (CONN_MAX_AGE=600)
    with workers(copy, env, ("-Q", "celeriac", "-c", "1", "-n", "pg@%h")) as (worker,):
        manage(copy, env, "scenarios", "on_commit", "results", "--timeout", "30")
        # When PostgreSQL restarts under it
        try:
            _pg_ctl(version, "restart")
        finally:
            _accepting_connections()
        # Expect the next tasks (ORM queries in the task, results stored by the
        # worker) to reconnect rather than fail on the dead connection
        output = manage(copy, env, "scenarios", "on_commit", "results", "--timeout", "30")
        assert "all scenarios passed" in output
        log = worker.log
    assert "OperationalError" not in log and "InterfaceError" not in log, log
    assert "ERROR" not in log, log


def test_a_forked_child_leaves_the_parent_connection_working(project: dict[str, Any]) -> None:
    from django.db import connections

    from celeriac.contrib.django.middleware import register_fork_hook

    # Given this process holds an open connection to PostgreSQL
    with throwaway_database() as database:
        both = {"default": connections.settings["default"], "forktest": database}
        connections.settings["forktest"] = connections.configure_settings(both)["forktest"]
        conn = connections["forktest"]
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend_pid = cursor.fetchone()[0]
            register_fork_hook()
            # When a child process is forked and exits
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report whether the hook dropped the connection
                os.write(
                    write, b"dropped" if connections["forktest"].connection is None else b"kept"
                )
                os._exit(0)
            os.close(write)
            report = os.read(read, 16)
            os.close(read)
            os.waitpid(pid, 0)
            # Expect the child dropped its copy, and the parent's session still the same one
            assert report == b"dropped"
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                assert cursor.fetchone()[0] == backend_pid
        finally:
            conn.close()
            del connections.settings["forktest"]
            delattr(connections._connections, "forktest")
