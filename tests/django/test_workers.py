"""The example project with real workers started through the CLI, as its README runs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.workers import launch

from .cluster import fresh_copy, manage, workers

pytestmark = pytest.mark.slow

QUEUE1 = ("-Q", "queue1,celeriac", "-n", "queue1@%h", "-c", "2")
QUEUE2 = ("-Q", "queue2,tasks", "-n", "queue2@%h", "-c", "1")


@pytest.fixture(scope="module")
def cluster(project: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh copy of the example, the test's database, an embedded broker, two workers."""
    tmp = tmp_path_factory.mktemp("cluster")
    copy = fresh_copy(tmp / "django")
    env = {
        "DJANGO_SETTINGS_MODULE": "djcelery.settings",
        "SQLITE_PATH": project["env"]["SQLITE_PATH"],  # shared with this process: the admin
        "BROKER_URL": f"sqlite:///{tmp / 'broker.sqlite3'}",
    }
    standalone_env = {
        "BROKER_URL": env["BROKER_URL"],
        "STANDALONE_RESULT_BACKEND": f"sqlite:///{tmp / 'standalone.sqlite3'}",
        "PYTHONPATH": str(copy),  # cworker.tasks, from the project next door
    }
    env["STANDALONE_RESULT_BACKEND"] = standalone_env["STANDALONE_RESULT_BACKEND"]
    with workers(copy, env, QUEUE1, QUEUE2) as started:
        # the standalone worker, as the README starts it: no Django
        standalone = launch(
            "celerytask",
            "-Q",
            "standalone",
            "-n",
            "standalone@%h",
            "-c",
            "1",
            cwd=copy / "celeryworker",
            env=standalone_env,
        )
        try:
            yield {"dir": copy, "env": env, "workers": [*started, standalone]}
        finally:
            standalone.kill()


def test_scenarios_run_on_the_two_workers(cluster: Any, app: Any) -> None:
    # When the README's scenarios run against two real workers
    output = manage(
        cluster["dir"],
        cluster["env"],
        "scenarios",
        "routing",
        "results",
        "group",
        "chain",
        "chord",
        "on_commit",
        "tasks_framework",
        "standalone",
        "--timeout",
        "30",
    )
    # Expect task1 on the queue1 worker, task2 on the queue2 worker, every scenario passing
    # (the chord joined by the Django database, the standalone worker without Django)
    assert "chord([add(i, i) for i in 0..9], tsum) = 90" in output
    assert "send_task('cworker.tasks.t1', queue='standalone') = 'standalone: 5'" in output
    assert "cworker.tasks.task1 -> 'task1 ran', from queue queue1, run by queue1@" in output
    assert "cworker.tasks.task2 -> 'task2 ran', from queue queue2, run by queue2@" in output
    assert "all scenarios passed" in output

    # and the results, written by the workers, in this process's Django database and admin
    from django.contrib.auth.models import User
    from django.test import Client

    from celeriac.contrib.django.models import TaskResult

    rows = {row.name: row for row in TaskResult.objects.all()}
    assert rows["cworker.tasks.task1"].worker.startswith("queue1@")
    assert rows["cworker.tasks.task2"].worker.startswith("queue2@")
    assert rows["cworker.dbtasks.word_count"].state == "SUCCESS"
    User.objects.filter(username="admin").delete()
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    listing = client.get("/admin/celeriac/taskresult/", {"name": "cworker.tasks.task1"})
    assert listing.status_code == 200
    assert rows["cworker.tasks.task1"].task_id in listing.text
    assert rows["cworker.tasks.task2"].task_id not in listing.text


def test_tasks_sent_from_this_process_reach_the_right_worker(cluster: Any, app: Any) -> None:
    from cworker.tasks import task1, task2

    app.conf.broker_url = cluster["env"]["BROKER_URL"]
    try:
        one, two = task1.delay(), task2.delay()
        assert (one.get(timeout=30), two.get(timeout=30)) == ("task1 ran", "task2 ran")
    finally:
        app.conf.broker_url = "memory://django-tests"
    from celeriac.contrib.django.models import TaskResult

    assert TaskResult.objects.get(pk=one.id).worker.startswith("queue1@")
    assert TaskResult.objects.get(pk=two.id).worker.startswith("queue2@")


def test_no_worker_logged_an_error(cluster: Any) -> None:
    for worker in cluster["workers"]:
        assert "Traceback" not in worker.log and "ERROR" not in worker.log, worker.log
