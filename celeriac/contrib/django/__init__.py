"""celeriac with Django: ``INSTALLED_APPS += ["celeriac.contrib.django"]``.

What the integration gives (see docs/django.md):

* settings read from ``django.conf:settings`` under a namespace, and
  ``app.autodiscover_tasks()`` importing ``tasks.py`` of every installed app,
  as soon as Django's apps are ready (never at import time);
* database connection hygiene around every task and after a fork
  (:class:`~celeriac.contrib.django.middleware.DjangoConnections`);
* ``task.delay_on_commit(...)``: sent only once the surrounding transaction commits;
* a ``django-db://`` result backend, with an admin;
* a backend for Django's Tasks framework
  (``celeriac.contrib.django.tasks.CeleriacBackend``).
"""

from __future__ import annotations

from ...exceptions import MissingExtraError

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("django", "django") from exc

from .bootstrap import install

__all__ = ["install"]
