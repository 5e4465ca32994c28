"""``celeriac shell`` and ``celeriac report``: Celery's two commands for a person at a terminal."""

from __future__ import annotations

import code
import platform
import sys
from importlib import metadata
from typing import Any

import click

from .. import chain, chord, group, signature
from ..config import SETTINGS
from ..task import Task
from ..urls import redact
from ..version import __version__
from .main import app_from

#: Setting names whose values are not shown by ``report``.
_SECRET_WORDS = ("password", "secret", "key", "token", "credential")


@click.command()
@click.pass_context
def shell(ctx: click.Context) -> None:
    """A Python shell with the app, its tasks, and the canvas names ready to use."""
    app = app_from(ctx)
    names: dict[str, Any] = {
        "app": app,
        "celeriac": app,
        "Task": Task,
        "chain": chain,
        "chord": chord,
        "group": group,
        "signature": signature,
    }
    for name, task in app.tasks.items():  # each task by its short name, as Celery's shell
        names.setdefault(name.rsplit(".", 1)[-1], task)
    banner = f"celeriac {__version__} shell, app {app.main}: {', '.join(sorted(names))}"
    code.interact(banner=banner, local=names, exitmsg="")


@click.command()
@click.pass_context
def report(ctx: click.Context) -> None:
    """Versions, platform and settings, for bug reports (passwords removed)."""
    app = app_from(ctx)
    click.echo(app_report(app))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _shown(name: str, value: Any) -> str:
    if isinstance(value, str) and "://" in value:
        return repr(redact(value))
    if value and any(word in name for word in _SECRET_WORDS):
        return "'********'"
    return repr(value)


def app_report(app: Any) -> str:
    """The text of ``celeriac report``."""
    clients = ", ".join(
        f"{package}:{_version(package)}"
        for package in ("redis", "pika", "sqlalchemy", "django", "pydantic")
    )
    lines = [
        f"software -> celeriac:{__version__} py:{platform.python_version()} {clients}",
        f"platform -> system:{platform.system()} arch:{platform.machine()} "
        f"imp:{platform.python_implementation()} executable:{sys.executable}",
        f"app -> {app.main} ({app.describe()})",
        "",
    ]
    lines += [f"{name}: {_shown(name, app.conf[name])}" for name in sorted(SETTINGS)]
    return "\n".join(lines)
