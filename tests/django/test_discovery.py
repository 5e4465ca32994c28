"""Settings from Django, task discovery once Django is ready, and a clear error without Django."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

from .conftest import EXAMPLE


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=EXAMPLE,
        env={**os.environ, "BROKER_URL": "memory://", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_come_from_django_settings_under_the_namespace(app: Any) -> None:
    # Given the example's CELERY_* settings, expect them as celeriac settings.
    assert app.conf.result_backend == "django-db://"
    assert app.conf.task_routes["cworker.tasks.task1"] == {"queue": "queue1"}
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_of_every_installed_app_are_discovered(app: Any) -> None:
    # Given django.setup() ran after the app was created, expect cworker/tasks.py imported.
    assert {"cworker.tasks.task1", "cworker.tasks.t1", "djcelery.celeriac.t3"} <= set(app.tasks)
    from celeriac.contrib.django.middleware import DjangoConnections

    assert isinstance(next(iter(app.middleware)), DjangoConnections)


def test_importing_the_app_configures_nothing_until_django_is_ready() -> None:
    # Given a fresh process that imports the project's celeriac app, as a worker does,
    # expect no tasks module imported until import_modules() sets Django up.
    done = _python(
        """
        import sys
        from djcelery.celeriac import app
        from django.apps import apps
        assert not apps.ready, "Django was set up at import time"
        assert "cworker.tasks" not in sys.modules, "tasks imported before Django was ready"
        app.import_modules()
        assert apps.ready
        assert "cworker.tasks.task1" in app.tasks and "cworker.dbtasks.welcome" in app.tasks
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_without_django_the_error_names_the_extra() -> None:
    # Given Django cannot be imported, expect MissingExtraError naming celeriac[django].
    done = _python(
        """
        import sys
        sys.modules["django"] = None
        from celeriac import Celeriac
        from celeriac.exceptions import MissingExtraError
        try:
            Celeriac("x", broker="memory://").autodiscover_tasks()
        except MissingExtraError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "celeriac[django]" in done.stdout


def test_the_core_does_not_import_django() -> None:
    done = _python(
        """
        import sys
        import celeriac, celeriac.app, celeriac.task, celeriac.worker.job
        from celeriac import Celeriac
        app = Celeriac("x", broker="memory://", backend="memory://")
        @app.task
        def add(a, b):
            return a + b
        add.delay_on_commit(1, 2)  # no Django in this process: sent at once
        assert app.broker.stats("celeriac").total_waiting == 1
        print(sorted(m for m in sys.modules if m == "django" or m.startswith("django.")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
