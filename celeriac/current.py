"""The current app, and the shared tasks every app gets.

Results, signatures and shared tasks made without an app use the current one:
the app most recently created or set current, else a default app made on first
use. This module sits below :mod:`celeriac.app` so that they can ask for it;
the app module gives it the way to make the default app
(:func:`use_default_app`), as it is imported with the package.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from .app import Celeriac
    from .task import AsyncTask, BoundTaskDecorator, Task, TaskDecorator

P = ParamSpec("P")
R = TypeVar("R")

_current: Celeriac | None = None
_make_default_app: Callable[[], Celeriac] | None = None
#: every ``shared_task``: (function, options), registered with each app as it is made
_shared_tasks: list[tuple[Callable[..., Any], dict[str, Any]]] = []


def use_default_app(make: Callable[[], Celeriac]) -> None:
    """How :func:`current_app` makes an app when none was created or set current."""
    global _make_default_app
    _make_default_app = make


def current_app() -> Celeriac:
    """The app most recently created or set current; a default one if there is none."""
    global _current
    if _current is None:
        assert _make_default_app is not None, "celeriac.app gives the default app on import"
        _current = _make_default_app()
    return _current


def set_current_app(app: Celeriac) -> None:
    """Make ``app`` the current app."""
    global _current
    _current = app


def shared_tasks() -> list[tuple[Callable[..., Any], dict[str, Any]]]:
    """Every shared task so far, as (function, options), in the order they were made."""
    return list(_shared_tasks)


class SharedTask:
    """Stands for a shared task: resolves to the current app's copy at each use."""

    def __init__(self, fun: Callable[..., Any], options: dict[str, Any]) -> None:
        self._fun, self._options = fun, options
        self.name: str = options.get("name") or f"{fun.__module__}.{fun.__name__}"
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__

    def _task(self) -> Task[Any, Any]:
        app = current_app()
        task = app.tasks.get(self.name)
        return task if task is not None else app.task(self._fun, **self._options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task(), name)

    def __repr__(self) -> str:
        return f"<shared task {self.name}>"


@overload
def shared_task(fun: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...
@overload
def shared_task(fun: Callable[P, R], /) -> Task[P, R]: ...
@overload
def shared_task(*, bind: Literal[True], **options: Any) -> BoundTaskDecorator: ...
@overload
def shared_task(*, bind: Literal[False] = False, **options: Any) -> TaskDecorator: ...
@overload
def shared_task(fun: Callable[..., Any], /, **options: Any) -> Task[..., Any]: ...
def shared_task(fun: Any = None, /, **options: Any) -> Any:
    """A task that belongs to every app: registered with each app, now and later.

    It returns a :class:`SharedTask` standing for the current app's copy of the
    task; type checkers see it as that task (same parameters and result type).
    """

    def register(f: Callable[..., Any]) -> Any:
        _shared_tasks.append((f, options))
        if _current is not None:
            _current.task(f, **options)
        return SharedTask(f, options)

    if fun is not None and callable(fun):
        return register(fun)
    return register


__all__ = [
    "SharedTask",
    "current_app",
    "set_current_app",
    "shared_task",
    "shared_tasks",
    "use_default_app",
]
