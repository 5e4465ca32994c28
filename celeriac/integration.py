"""What a web framework's integration lends the core: its transactions and its tasks modules.

The core imports no framework. An integration registers its hooks here when it
is imported (``celeriac.contrib.django`` does, when Django loads it as an
installed app or when it is named below), and the core asks the app
(:attr:`celeriac.app.Celeriac.integration`), never the framework:

* ``task.delay_on_commit(...)`` hands its send to :attr:`Integration.on_commit`,
  or sends at once when no integration is loaded;
* ``app.autodiscover_tasks()`` with no packages means the framework's
  installed apps, as in Celery. When no integration is registered yet, that call
  imports the one :data:`DEFAULT_INTEGRATION` names, by dotted path, as the URL
  registries import an engine: a process without Django never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .exceptions import ConfigurationError
from .urls import load_object

if TYPE_CHECKING:
    from .app import Celeriac

#: Calls ``send`` once the current transaction on database ``using`` (``None``: the
#: default) commits, at once outside a transaction, never after a rollback.
OnCommit = Callable[[Callable[[], None], "str | None"], None]
#: Imports the ``<related_name>`` module of every package the framework knows, now or
#: once the framework is ready, for an app; returns the modules imported now.
DiscoverTasks = Callable[["Celeriac", str], list[str]]

#: The integration ``autodiscover_tasks()`` with no packages loads (it registers itself).
DEFAULT_INTEGRATION = "celeriac.contrib.django"


@dataclass(frozen=True)
class Integration:
    """A web framework's hooks, registered by its integration."""

    name: str
    on_commit: OnCommit
    discover_tasks: DiscoverTasks


_registered: Integration | None = None


def register_integration(integration: Integration) -> None:
    """Make ``integration`` the one every app of this process asks (the last one wins)."""
    global _registered
    _registered = integration


def registered_integration() -> Integration | None:
    """The integration registered in this process, if one is."""
    return _registered


def default_integration() -> Integration:
    """The registered integration, after importing :data:`DEFAULT_INTEGRATION` if none is."""
    if _registered is None:
        load_object(DEFAULT_INTEGRATION)
    if _registered is None:
        raise ConfigurationError(
            f"{DEFAULT_INTEGRATION} registered no integration: autodiscover_tasks() needs "
            "packages to search without it"
        )
    return _registered


__all__ = [
    "DEFAULT_INTEGRATION",
    "DiscoverTasks",
    "Integration",
    "OnCommit",
    "default_integration",
    "register_integration",
    "registered_integration",
]
