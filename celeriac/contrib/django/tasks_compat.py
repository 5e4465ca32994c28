"""Django's Tasks framework: ``django.tasks`` (Django 6+) or the ``django_tasks`` backport.

A project that lists ``django_tasks`` in ``INSTALLED_APPS`` decorates its tasks
with the backport's ``@task``, so the backend is built on the backport too, even
on Django 6; otherwise Django's own framework comes first.
"""

from __future__ import annotations

import importlib
from typing import Any

from ...exceptions import MissingExtraError


def _candidates() -> tuple[str, ...]:
    """The backport when the project installed it as an app, else Django's own first."""
    from django.conf import settings

    if settings.configured and "django_tasks" in getattr(settings, "INSTALLED_APPS", ()):
        return ("django_tasks", "django.tasks")
    return ("django.tasks", "django_tasks")


def _load() -> tuple[Any, Any, Any, Any]:
    for package in _candidates():
        try:
            return (
                importlib.import_module(f"{package}.base"),
                importlib.import_module(f"{package}.backends.base"),
                importlib.import_module(f"{package}.exceptions"),
                importlib.import_module(f"{package}.signals"),
            )
        except ImportError:
            continue
    raise MissingExtraError("django", "django-tasks")


framework, backends_base, exceptions, signals = _load()

BaseTaskBackend: Any = backends_base.BaseTaskBackend
Task: Any = framework.Task
TaskContext: Any = framework.TaskContext
TaskError: Any = framework.TaskError
TaskResult: Any = framework.TaskResult
TaskResultStatus: Any = framework.TaskResultStatus
DEFAULT_TASK_QUEUE_NAME: str = framework.DEFAULT_TASK_QUEUE_NAME
TaskResultDoesNotExist: Any = exceptions.TaskResultDoesNotExist
InvalidTaskError: Any = exceptions.InvalidTaskError
task_enqueued: Any = signals.task_enqueued
task_started: Any = signals.task_started
task_finished: Any = signals.task_finished
