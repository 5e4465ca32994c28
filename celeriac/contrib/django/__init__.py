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

Importing this package registers Django's transactions and installed apps
with the core (:mod:`celeriac.integration`); the core never imports Django.
"""

from __future__ import annotations

from ...exceptions import MissingExtraError

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("django", "django") from exc

from ...integration import Integration, register_integration
from .bootstrap import autodiscover, install
from .transaction import on_commit

#: Django's hooks, registered with the core when this package is imported.
DJANGO = Integration("django", on_commit=on_commit, discover_tasks=autodiscover)
register_integration(DJANGO)

__all__ = ["DJANGO", "install"]
