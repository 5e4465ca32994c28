"""Celery's "First steps with Django" project (tests/compat/django_project: proj/celery.py
with ``namespace="CELERY"`` and ``autodiscover_tasks()``, ``shared_task`` in an app's
tasks.py, ``CELERY_`` settings), with only the imports changed, run by a real worker
started as Celery's documentation starts it (``celery -A proj worker -l INFO``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from celeriac import Celeriac
from tests.e2e.workers import StartWorker, wait_until

PROJECT = Path(__file__).with_name("django_project")


def test_the_django_project_runs_with_only_the_imports_changed(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    shutil.copytree(PROJECT, tmp_path, dirs_exist_ok=True)
    broker = f"sqlite:///{tmp_path}/broker.sqlite3"
    results = f"sqlite:///{tmp_path}/results.sqlite3"
    env = {
        "PROJECT_BROKER_URL": broker,
        "PROJECT_RESULT_BACKEND": results,
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
    }
    worker = start_worker("proj", "-l", "INFO", "-c", "2", env=env)
    client = Celeriac("client", broker=broker, backend=results, set_as_current=False)
    try:
        assert client.send_task("demoapp.tasks.add", [4, 4]).get(timeout=20) == 8
        assert client.send_task("demoapp.tasks.xsum", [[1, 2, 3]]).get(timeout=20) == 6
        debug = client.send_task("proj.celery.debug_task")  # ignore_result: its print shows
        wait_until(lambda: f"Request: Request(id={debug.id!r}" in worker.log, 20, "debug_task")
        assert worker.stop() == 0
    finally:
        client.close()
