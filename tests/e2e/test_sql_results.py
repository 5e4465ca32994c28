"""A real worker on the embedded SQLite broker keeps its results in PostgreSQL.

The pairing the RabbitMQ docs recommend when results belong in the database:
``delay().get()`` returns the value a prefork worker stored through SQLAlchemy,
and a chord joins on the SQL backend's counter, with no polling task.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from celeriac import Celeriac, chord, signature
from tests.backends.sql_env import POSTGRES_URL, fresh_sql_env
from tests.e2e.workers import StartWorker

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    from celeriac import Celeriac

    app = Celeriac("sql_results_app")  # broker, backend and tables from CELERIAC_* variables


    @app.task
    def add(a, b):
        return a + b


    @app.task
    def tsum(numbers):
        return sum(numbers)
    """
)


def test_a_worker_stores_results_and_joins_chords_in_postgresql(
    request: pytest.FixtureRequest, tmp_path: Path, start_worker: StartWorker
) -> None:
    env = fresh_sql_env(request, POSTGRES_URL)  # skips, or fails in CI, without PostgreSQL
    prefix = env.options["table_prefix"]
    (tmp_path / "sql_results_app.py").write_text(APP)
    broker = f"sqlite:///{tmp_path}/broker.sqlite3"
    client = Celeriac(
        "client",
        broker=broker,
        backend=POSTGRES_URL,
        set_as_current=False,
        database_table_prefix=prefix,
        worker_send_task_events=False,
    )
    try:
        worker = start_worker(
            "sql_results_app",
            "-c",
            "2",
            env={
                "CELERIAC_BROKER_URL": broker,
                "CELERIAC_RESULT_BACKEND": POSTGRES_URL,
                "CELERIAC_DATABASE_TABLE_PREFIX": prefix,
            },
        )

        assert client.send_task("sql_results_app.add", [2, 3]).get(timeout=30) == 5

        header = [signature("sql_results_app.add", (i, i), app=client) for i in range(10)]
        joined = chord(header, signature("sql_results_app.tsum", app=client)).apply_async()
        assert joined.get(timeout=60) == sum(i + i for i in range(10))

        backend = client.backend
        with backend.engine.connect() as conn:  # type: ignore[attr-defined]
            table = backend.tables.task  # type: ignore[attr-defined]
            stored = conn.execute(table.select().where(table.c.name == "sql_results_app.add"))
            rows = stored.all()
        assert len(rows) == 11 and {row.status for row in rows} == {"SUCCESS"}
        assert worker.stop() == 0
    finally:
        client.close()
