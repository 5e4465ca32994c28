"""The registry of remote-control commands, filled by ``@command``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: command name -> function(handler, **arguments) run by the worker's handler
COMMANDS: dict[str, Callable[..., Any]] = {}
#: command name -> function(app, hostname, **arguments) run in every process that runs tasks
LOCAL_COMMANDS: dict[str, Callable[..., Any]] = {}


def command(name: str, local: bool = False) -> Callable[[F], F]:
    """Register a command (``local=True``: its per-process part) under ``name``."""

    def register(function: F) -> F:
        (LOCAL_COMMANDS if local else COMMANDS)[name] = function
        return function

    return register
