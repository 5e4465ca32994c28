"""What ``status``, ``inspect`` and ``control`` share: options, output, and the no-answer error."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import orjson

from ..urls import redact

F = TypeVar("F", bound=Callable[..., Any])

EXIT_NO_ANSWER = 69  # EX_UNAVAILABLE, as Celery's inspect exits when no node replies


def remote_options(function: F) -> F:
    """``-d/--destination``, ``--timeout`` and ``--json`` for a command that asks workers."""
    function = click.option("--json", "as_json", is_flag=True, help="print JSON")(function)
    function = click.option(
        "--timeout",
        "-t",
        type=float,
        default=1.0,
        show_default=True,
        help="seconds to wait for replies",
    )(function)
    return click.option(
        "--destination",
        "-d",
        default=None,
        help="comma-separated worker names (name@host); default: every worker",
    )(function)


def destinations(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("give at least one worker name", param_hint="--destination")
    return names


def no_answer(app: Any, timeout: float, destination: list[str] | None) -> NoReturn:
    """Exit with an error that says where we looked and for how long."""
    who = ", ".join(destination) if destination else "no worker"
    verb = "did not answer" if destination else "answered"
    click.echo(
        f"error: {who} {verb} within {timeout:g}s on broker {redact(app.broker_url)}; "
        "is a worker running there? (celeriac status lists the live ones; "
        "--timeout waits longer)",
        err=True,
    )
    sys.exit(EXIT_NO_ANSWER)


def dump_json(value: Any) -> str:
    return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def pretty(value: Any) -> str:
    return orjson.dumps(
        value, default=repr, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


def ago(timestamp: float | None) -> str:
    """``3.2s ago``, ``5m ago``, ``2h ago``."""
    if not timestamp:
        return "-"
    seconds = max(0.0, time.time() - float(timestamp))
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def age(seconds: float | None) -> str:
    """A duration, short: ``-``, ``4.1s``, ``12m``, ``3.0h``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
