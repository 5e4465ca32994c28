"""The Django app: ``INSTALLED_APPS = [..., "celeriac.contrib.django"]``."""

from __future__ import annotations

from django.apps import AppConfig

from .bootstrap import discover_waiting
from .middleware import register_fork_hook


class CeleriacConfig(AppConfig):  # type: ignore[misc]
    """Configures celeriac when Django's apps are ready, never at import time."""

    name = "celeriac.contrib.django"
    label = "celeriac"
    verbose_name = "Celeriac"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        register_fork_hook()
        discover_waiting()
        from .beat import connect_signals  # models load only once the apps are ready

        connect_signals()
