"""Wiring celeriac apps to Django: task discovery once the apps are ready, middleware.

Nothing here runs at import time. ``app.autodiscover_tasks()`` with no packages
lands in :func:`autodiscover`: when Django's models are loaded it imports every
installed app's ``tasks`` module at once; before that (the usual case: the app
is created in ``proj/celeriac.py`` while Django reads its settings) it waits for
:class:`~celeriac.contrib.django.apps.CeleriacConfig.ready`, or for the worker's
``import_modules()``, which sets Django up first when nobody has.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from ...exceptions import ConfigurationError
from .middleware import DjangoConnections, register_fork_hook

if TYPE_CHECKING:
    from ...app import Celeriac

_lock = threading.Lock()
#: apps waiting for Django's apps, with the module names (``related_name``) to import
_waiting: weakref.WeakKeyDictionary[Celeriac, list[str]] = weakref.WeakKeyDictionary()


def ensure_setup() -> None:
    """Run ``django.setup()`` unless it ran; explain what is missing when it cannot."""
    from django.apps import apps
    from django.conf import settings

    if apps.ready:
        return
    if apps.loading:
        raise ConfigurationError(
            "Django is still loading its apps: use celeriac's Django features from "
            "AppConfig.ready() or later, not while an app's module is being imported"
        )
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError(
            "Django is not configured: set DJANGO_SETTINGS_MODULE (proj/celeriac.py usually "
            "does os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')) or call "
            "django.conf.settings.configure()"
        )
    import django

    django.setup()


def installed_packages() -> list[str]:
    """The packages of Django's installed apps, in ``INSTALLED_APPS`` order."""
    from django.apps import apps

    return [config.name for config in apps.get_app_configs()]


def autodiscover(app: Celeriac, related_name: str = "tasks") -> list[str]:
    """Import ``<app>.<related_name>`` for every installed app, now or once Django is ready.

    Returns the modules imported now; ``[]`` when discovery waits for Django.
    """
    from django.apps import apps

    install(app)
    if apps.models_ready:  # every model is importable: safe to import tasks modules
        return app.autodiscover_tasks(installed_packages(), related_name)
    with _lock:
        _waiting.setdefault(app, []).append(related_name)
    app.defer_until_import(_setup_and_discover)
    return []


def _setup_and_discover() -> None:
    ensure_setup()  # its ready() discovers; this catches an app created after ready()
    discover_waiting()


def discover_waiting() -> list[str]:
    """Run the discoveries that waited for Django's apps; returns the modules imported."""
    with _lock:
        waiting = list(_waiting.items())
        _waiting.clear()
    found: list[str] = []
    if waiting:
        packages = installed_packages()
        for app, names in waiting:
            for related_name in names:
                found += app.autodiscover_tasks(packages, related_name)
    return found


def install(app: Celeriac) -> None:
    """Give an app the Django integration: connection hygiene around tasks, fork safety.

    ``app.autodiscover_tasks()`` calls this; call it yourself for an app that
    does not discover tasks from ``INSTALLED_APPS``. Idempotent.
    """
    if not any(isinstance(m, DjangoConnections) for m in app.middleware):
        first = next(iter(app.middleware), None)
        # First in line: the connection is checked before any middleware or the task uses it.
        app.middleware.add(DjangoConnections(), before=type(first) if first else None)
    register_fork_hook()
