"""Fixtures for the Django integration, run against the example project (examples/django).

Django is set up once, in this process, with the example's settings: a SQLite
database in a temporary directory and the in-process ``memory://`` broker.
Tests that start real workers give them the same settings through the
environment, with the SQLite broker instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.needs import need_module

django = need_module("django", "django", module_level=True)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django"
BROKER_URL = "memory://django-tests"


@pytest.fixture(scope="package")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The example project, set up in this process; returns its environment."""
    import celeriac.current as celeriac_current

    tmp = tmp_path_factory.mktemp("djcelery")
    env = {
        "DJANGO_SETTINGS_MODULE": "djcelery.settings",
        "SQLITE_PATH": str(tmp / "db.sqlite3"),
        "BROKER_URL": BROKER_URL,
    }
    saved_env = {name: os.environ.get(name) for name in env}
    previous_app, shared_before = celeriac_current._current, len(celeriac_current._shared_tasks)
    os.environ.update(env)
    sys.path.insert(0, str(EXAMPLE))
    try:
        from django.core.management import call_command
        from django.test.utils import setup_test_environment, teardown_test_environment

        django.setup()
        setup_test_environment()
        call_command("migrate", verbosity=0)
        from djcelery.celeriac import app

        yield {"app": app, "dir": tmp, "env": env}
        teardown_test_environment()
    finally:
        # Django stays set up (it cannot be undone), but the tests of other packages
        # get back the environment, celeriac app and shared tasks they had.
        celeriac_current._current = previous_app
        del celeriac_current._shared_tasks[shared_before:]
        sys.path.remove(str(EXAMPLE))
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def app(project: dict[str, Any]) -> Iterator[Any]:
    """The example's celeriac app, current, with its queues empty and the results table clear."""
    from celeriac.contrib.django.models import ChordPart, GroupResult, TaskResult

    application = project["app"]
    application.set_current()
    for queue in application.broker.queues():
        application.broker.purge(queue)
    for model in (TaskResult, GroupResult, ChordPart):
        model.objects.all().delete()
    yield application
